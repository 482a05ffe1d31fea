#!/usr/bin/env python3
"""The first phase of scripts/gpu-check.sh: which NVIDIA driver, CUDA toolkit (nvcc and its runtime) and
LibTorch CUDA this machine would build and run hpsearch with, and whether they can work together.

    gpu_versions.py --nvcc PATH --json OUT [--fake] [--toolkits GLOB]

Records the versions in OUT (JSON) and prints one line per finding. The rules it checks:
  - LibTorch must be a CUDA build (torch.version.cuda set);
  - nvcc's major version must be LibTorch's: the kernels and LibTorch share one process and one CUDA
    runtime, and find_package(Torch) looks for the toolkit of its own major version. When the given nvcc
    does not match, a matching /usr/local/cuda-X.Y/bin/nvcc is used instead if there is one (the line
    `use-nvcc PATH` says so);
  - the driver must support the CUDA major version of both (nvidia-smi's "CUDA Version"); a lower minor
    version only gets a note (CUDA's minor version compatibility: PTX would not JIT).
Exit 0: they fit; 77: nothing to check (--fake without a driver); 4: they cannot work together, with the
reason on the last line of stderr (the phase's note) and what to change.

HPSEARCH_GPU_CHECK_VERSIONS="driver=535.104,driver_cuda=12.2,toolkit=12.4,torch_cuda=12.4" replaces
what was found, key by key, to rehearse the rules on a machine without a GPU.
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys


def run(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def major_minor(version):
    match = re.match(r"(\d+)\.(\d+)", version or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def nvcc_release(nvcc):
    match = re.search(r"release (\d+\.\d+)", run([nvcc, "--version"]))
    return match.group(1) if match else None


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nvcc", required=True)
    p.add_argument("--json", required=True)
    p.add_argument("--fake", action="store_true")
    p.add_argument("--toolkits", default="/usr/local/cuda-{major}.*/bin/nvcc",
                   help="where other toolkits' nvcc are looked for ({major}: LibTorch's CUDA major)")
    args = p.parse_args()

    found = {"nvcc": args.nvcc}
    smi = run(["nvidia-smi"])
    match = re.search(r"Driver Version:\s*([\d.]+)", smi)
    found["driver"] = match.group(1) if match else None
    match = re.search(r"CUDA Version:\s*([\d.]+)", smi)
    found["driver_cuda"] = match.group(1) if match else None
    found["gpus"] = [line.strip() for line in run(
        ["nvidia-smi", "--query-gpu=name,compute_cap,memory.total", "--format=csv,noheader"]
    ).splitlines() if line.strip()]
    found["toolkit"] = nvcc_release(args.nvcc)
    cuda_home = os.path.dirname(os.path.dirname(os.path.realpath(args.nvcc)))
    try:
        with open(os.path.join(cuda_home, "version.json")) as f:
            found["toolkit_cudart"] = json.load(f).get("cuda_cudart", {}).get("version")
    except (OSError, ValueError):
        found["toolkit_cudart"] = None
    if not found["toolkit_cudart"]:  # no version.json: a pip-style install's record, or the library
        records = glob.glob(os.path.join(cuda_home, "dist-info", "nvidia_cuda_runtime-*.dist-info"))
        names = glob.glob(os.path.join(cuda_home, "lib*", "libcudart.so.*")) + glob.glob(
            os.path.join(cuda_home, "targets", "*", "lib", "libcudart.so.*"))
        if records:
            found["toolkit_cudart"] = os.path.basename(records[0])[len("nvidia_cuda_runtime-"):
                                                                   -len(".dist-info")]
        elif names:
            found["toolkit_cudart"] = max(os.path.basename(n) for n in names)[len("libcudart.so."):]
    try:
        import torch  # the LibTorch the build links (the PyTorch's own, torch.utils.cmake_prefix_path)
        found["torch"] = torch.__version__
        found["torch_cuda"] = torch.version.cuda
        found["torch_cudnn"] = torch.backends.cudnn.version() if torch.version.cuda else None
        found["torch_sees_gpu"] = torch.cuda.is_available()
    except ImportError:
        found["torch"] = None
        found["torch_cuda"] = None
    if not found["torch"]:
        # The rehearsal builds against Debian's LibTorch, which this python may not import.
        header = "/usr/include/torch/csrc/api/include/torch/version.h"
        try:
            with open(header) as f:
                match = re.search(r'TORCH_VERSION\s*\\?\s*"([^"]+)"', f.read())
            found["torch"] = f"{match.group(1)} (Debian's LibTorch)" if match else None
        except OSError:
            pass
    for item in filter(None, os.environ.get("HPSEARCH_GPU_CHECK_VERSIONS", "").split(",")):
        key, _, value = item.partition("=")
        found[key.strip()] = value.strip() or None
        found.setdefault("overridden", []).append(key.strip())

    notes, problems = [], []
    use_nvcc = None
    driver, toolkit, torch_cuda = (major_minor(found.get(k)) for k in ("driver_cuda", "toolkit",
                                                                        "torch_cuda"))
    if driver is None and args.fake and "overridden" not in found:
        status = "skipped"
        notes.append("no NVIDIA driver here (HPSEARCH_GPU_CHECK_FAKE=1): versions recorded, not checked")
    else:
        if driver is None:
            problems.append("no NVIDIA driver answers (nvidia-smi is missing or failed): "
                            "this machine cannot run CUDA")
        if torch_cuda is None:
            problems.append(f"LibTorch {found.get('torch')} is not a CUDA build (torch.version.cuda "
                            "is None): install a CUDA PyTorch")
        if toolkit is None:
            problems.append(f"no CUDA toolkit: {args.nvcc} does not run; set CUDACXX to nvcc")
        if toolkit and torch_cuda and toolkit[0] != torch_cuda[0]:
            # Another installed toolkit of LibTorch's major version, the newest first.
            for candidate in sorted(glob.glob(args.toolkits.format(major=torch_cuda[0])),
                                    key=lambda path: major_minor(nvcc_release(path)) or (0, 0),
                                    reverse=True):
                release = major_minor(nvcc_release(candidate))
                if release and release[0] == torch_cuda[0]:
                    use_nvcc = candidate
                    break
            if use_nvcc:
                notes.append(f"nvcc {found['toolkit']} does not match LibTorch's CUDA "
                             f"{found['torch_cuda']}: using {use_nvcc}")
                found["nvcc"], found["toolkit"] = use_nvcc, nvcc_release(use_nvcc)
                toolkit = major_minor(found["toolkit"])
            else:
                problems.append(
                    f"nvcc {found['toolkit']} ({args.nvcc}) and LibTorch's CUDA {found['torch_cuda']} "
                    f"differ in major version; the kernels and LibTorch must share one CUDA runtime: "
                    f"install CUDA toolkit {torch_cuda[0]}.x and set CUDACXX to its nvcc, or use a "
                    f"PyTorch built for CUDA {toolkit[0]}")
        for name, needed in (("LibTorch", torch_cuda), ("nvcc", toolkit)):
            if driver and needed and driver[0] < needed[0]:
                problems.append(
                    f"driver {found.get('driver')} supports CUDA {found['driver_cuda']}, older than "
                    f"{name}'s CUDA {needed[0]}.{needed[1]}: use a PyTorch and toolkit of CUDA "
                    f"{driver[0]}.x, or a newer driver")
            elif driver and needed and driver < needed:
                notes.append(f"driver CUDA {found['driver_cuda']} < {name}'s {needed[0]}.{needed[1]}: "
                             "runs under CUDA minor version compatibility (no PTX JIT)")
        status = "failed" if problems else "ok"

    found["status"], found["notes"], found["problems"] = status, notes, problems
    with open(args.json, "w") as f:
        json.dump(found, f, indent=2)
    for key in ("driver", "driver_cuda", "toolkit", "toolkit_cudart", "torch", "torch_cuda", "nvcc"):
        print(f"gpu-versions: {key:<15} {found.get(key)}")
    for gpu in found["gpus"]:
        print(f"gpu-versions: gpu             {gpu}")
    for note in notes:
        print(f"gpu-versions: note: {note}")
    if use_nvcc:
        print(f"use-nvcc {use_nvcc}")
    if problems:
        print("gpu-versions: STOP: " + " | ".join(problems), file=sys.stderr)
        return 4
    return 77 if status == "skipped" else 0


if __name__ == "__main__":
    sys.exit(main())
