// The devices of `hpsearch-worker --devices`: which worker processes one node runs, one per entry.
//
//   all            every GPU this process may use (below)
//   0,1,3          cuda:0, cuda:1, cuda:3
//   cuda:0,cuda:1  the same, spelled out
//   cpu,cpu        two CPU workers (a node without GPUs, or a test)
//
// "all" counts the GPUs without CUDA: when CUDA_VISIBLE_DEVICES is set (Slurm's --gres, a container
// runtime) its entries are the GPUs, numbered cuda:0..N-1 as CUDA numbers them; otherwise the
// entries of /proc/driver/nvidia/gpus (the NVIDIA driver's own list), else the lines of
// `nvidia-smi -L`. None found is an error that says what was looked at.
//
// Pure functions over injected inputs (the environment value, the /proc folder, the nvidia-smi
// program), so tests give them a fake machine.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace hpsearch::worker {

struct GpuDiscoveryOptions {
  // The value of CUDA_VISIBLE_DEVICES; nullopt when it is not set.
  std::optional<std::string> cuda_visible_devices;
  // The NVIDIA driver's folder of GPUs (one subfolder per GPU).
  std::string proc_gpus_dir = "/proc/driver/nvidia/gpus";
  // Run with -L when the folder is absent; empty: not tried.
  std::string nvidia_smi = "nvidia-smi";
};

// The options of this machine: CUDA_VISIBLE_DEVICES from the environment, the defaults otherwise.
GpuDiscoveryOptions GpuDiscoveryFromEnvironment();

// How many GPUs "all" means. NOT_FOUND when there are none, saying where it looked.
absl::StatusOr<int> CountGpus(const GpuDiscoveryOptions& options);

// Expands a --devices value into one device per worker ("cpu" or "cuda:K"). INVALID_ARGUMENT names
// the bad entry; `discovery` is used only for "all".
absl::StatusOr<std::vector<std::string>> ParseDeviceList(const std::string& devices,
                                                         const GpuDiscoveryOptions& discovery);

// The variables a command trial of the worker of `device` ("cpu" or "cuda:K") and `threads` gets,
// beneath the study's runner.env (which wins where it names the same variable):
//
//   CUDA_VISIBLE_DEVICES  cuda:K only: the trial's one GPU. Entry K of the worker's own
//                         `inherited_cuda_visible_devices` when it has one (Slurm and container
//                         runtimes set it; entries may be numbers, GPU-<uuid> or MIG-<uuid>), else
//                         K. A cpu worker leaves the variable as it found it.
//   HPSEARCH_DEVICE       the device as the trial sees it: cuda:0 (its only GPU), or cpu.
//   OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS
//                         `threads`, when it is positive, so trials do not oversubscribe the CPUs.
//
// A device is trusted as given (nothing probes the GPU), but cuda:K beyond the inherited list is
// FAILED_PRECONDITION naming both; a malformed device is INVALID_ARGUMENT.
absl::StatusOr<std::map<std::string, std::string>> CommandDeviceEnvironment(
    const std::string& device, int threads,
    const std::optional<std::string>& inherited_cuda_visible_devices);

}  // namespace hpsearch::worker
