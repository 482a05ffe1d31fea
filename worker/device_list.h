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

}  // namespace hpsearch::worker
