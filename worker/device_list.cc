#include "worker/device_list.h"

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace hpsearch::worker {
namespace {

// Lines of `nvidia-smi -L` that name a GPU ("GPU 0: NVIDIA H200 (UUID: ...)"); -1 when the program
// could not run.
int CountNvidiaSmiGpus(const std::string& program) {
  std::string command = absl::StrCat(program, " -L 2>/dev/null");
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return -1;
  int gpus = 0;
  char line[512];
  while (std::fgets(line, sizeof(line), pipe) != nullptr) {
    if (std::string_view(line).rfind("GPU ", 0) == 0) ++gpus;
  }
  int status = ::pclose(pipe);
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
  return gpus;
}

// The GPUs a CUDA_VISIBLE_DEVICES value names, in CUDA's order. CUDA stops at the first invalid
// entry; "-1" or "NoDevFiles" hide every GPU.
std::vector<std::string> VisibleEntries(const std::string& value) {
  std::vector<std::string> entries;
  for (absl::string_view entry : absl::StrSplit(value, ',')) {
    entry = absl::StripAsciiWhitespace(entry);
    if (entry.empty() || entry == "-1" || entry == "NoDevFiles") break;
    entries.emplace_back(entry);
  }
  return entries;
}

}  // namespace

GpuDiscoveryOptions GpuDiscoveryFromEnvironment() {
  GpuDiscoveryOptions options;
  if (const char* visible = std::getenv("CUDA_VISIBLE_DEVICES"); visible != nullptr) {
    options.cuda_visible_devices = visible;
  }
  return options;
}

absl::StatusOr<int> CountGpus(const GpuDiscoveryOptions& options) {
  if (options.cuda_visible_devices.has_value()) {
    const int count = static_cast<int>(VisibleEntries(*options.cuda_visible_devices).size());
    if (count == 0) {
      return absl::NotFoundError(
          absl::StrCat("--devices all: CUDA_VISIBLE_DEVICES='", *options.cuda_visible_devices,
                       "' makes no GPU visible; unset it, or list the devices (--devices 0,1)"));
    }
    return count;
  }
  std::error_code error;
  if (std::filesystem::is_directory(options.proc_gpus_dir, error)) {
    int count = 0;
    for (const auto& entry : std::filesystem::directory_iterator(options.proc_gpus_dir, error)) {
      if (entry.is_directory(error)) ++count;
    }
    if (count > 0) return count;
  }
  int from_smi = options.nvidia_smi.empty() ? -1 : CountNvidiaSmiGpus(options.nvidia_smi);
  if (from_smi > 0) return from_smi;
  return absl::NotFoundError(absl::StrCat(
      "--devices all found no GPU: ", options.proc_gpus_dir, " is absent or empty and `",
      options.nvidia_smi.empty() ? std::string("nvidia-smi") : options.nvidia_smi, " -L` ",
      from_smi < 0 ? "could not run" : "listed none",
      "; on a machine without GPUs use --device cpu (or --devices cpu,cpu)"));
}

absl::StatusOr<std::vector<std::string>> ParseDeviceList(const std::string& devices,
                                                         const GpuDiscoveryOptions& discovery) {
  std::vector<std::string> result;
  std::string trimmed(absl::StripAsciiWhitespace(devices));
  if (trimmed == "all") {
    absl::StatusOr<int> count = CountGpus(discovery);
    if (!count.ok()) return count.status();
    for (int k = 0; k < *count; ++k) result.push_back(absl::StrCat("cuda:", k));
    return result;
  }
  for (absl::string_view entry : absl::StrSplit(trimmed, ',')) {
    entry = absl::StripAsciiWhitespace(entry);
    absl::string_view ordinal = entry;
    if (entry == "cpu") {
      result.push_back("cpu");
      continue;
    }
    if (absl::StartsWith(entry, "cuda:")) ordinal.remove_prefix(5);
    int k = -1;
    if (ordinal.empty() || !absl::SimpleAtoi(ordinal, &k) || k < 0 ||
        ordinal.find_first_not_of("0123456789") != absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("--devices: '", entry,
                       "' is not a device; use all, GPU numbers (0,1), cuda:K or cpu entries"));
    }
    result.push_back(absl::StrCat("cuda:", k));
  }
  if (result.empty()) {
    return absl::InvalidArgumentError("--devices is empty; use all, 0,1,..., or cpu,cpu");
  }
  return result;
}

absl::StatusOr<std::map<std::string, std::string>> CommandDeviceEnvironment(
    const std::string& device, int threads,
    const std::optional<std::string>& inherited_cuda_visible_devices) {
  std::map<std::string, std::string> env;
  if (threads > 0) {
    for (const char* name : {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"}) {
      env[name] = absl::StrCat(threads);
    }
  }
  if (device == "cpu") {
    env["HPSEARCH_DEVICE"] = "cpu";
    return env;
  }
  absl::string_view ordinal = device;
  int k = -1;
  if (!absl::ConsumePrefix(&ordinal, "cuda:") || ordinal.empty() ||
      ordinal.find_first_not_of("0123456789") != absl::string_view::npos ||
      !absl::SimpleAtoi(ordinal, &k)) {
    return absl::InvalidArgumentError(absl::StrCat("device '", device, "' is not cpu or cuda:K"));
  }
  if (inherited_cuda_visible_devices.has_value()) {
    std::vector<std::string> visible = VisibleEntries(*inherited_cuda_visible_devices);
    if (k >= static_cast<int>(visible.size())) {
      return absl::FailedPreconditionError(
          absl::StrCat("device ", device, ": this worker's CUDA_VISIBLE_DEVICES='",
                       *inherited_cuda_visible_devices, "' names ", visible.size(),
                       " GPU(s), so cuda:K must be below ", visible.size(),
                       " (cuda:K is the K-th GPU of that list, as CUDA numbers them)"));
    }
    env["CUDA_VISIBLE_DEVICES"] = visible[static_cast<size_t>(k)];
  } else {
    env["CUDA_VISIBLE_DEVICES"] = absl::StrCat(k);
  }
  env["HPSEARCH_DEVICE"] = "cuda:0";
  return env;
}

}  // namespace hpsearch::worker
