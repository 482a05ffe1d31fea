// The few LibTorch calls whose spelling differs between the LibTorch versions hpsearch builds
// against (Debian's 1.13 CPU build in CI, 2.x with CUDA on GPU machines). Everything
// version-dependent lives here, behind TORCH_VERSION_MAJOR / TORCH_VERSION_MINOR, so the rest of
// core/ is written once. Header-only; the functions are as thread-safe as the LibTorch calls they
// wrap (generator access takes the generator's own mutex).
#pragma once

#include <ATen/Context.h>
#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <torch/version.h>

#include <mutex>

// True when the LibTorch being compiled against is at least major.minor.
#define HPSEARCH_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||           \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace hpsearch::core::compat {

// at::scaled_dot_product_attention (fused attention kernels) appeared in LibTorch 2.0.
inline constexpr bool kHasScaledDotProductAttention = HPSEARCH_TORCH_AT_LEAST(2, 0);

// The process-wide default generator that dropout and other random ops on `device` draw from. 1.13
// and 2.x both expose it through the device-generic Context::defaultGenerator, which keeps CUDA
// headers out of core/ (Debian's CPU build lacks them); an unindexed CUDA device means the current
// one.
inline at::Generator DefaultGenerator(const c10::Device& device) {
  return at::globalContext().defaultGenerator(device);
}

// A copy of the generator's state (a uint8 CPU tensor), to be handed to SetRngState later.
inline at::Tensor GetRngState(const c10::Device& device) {
  at::Generator generator = DefaultGenerator(device);
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

// Restores a state returned by GetRngState for the same device.
inline void SetRngState(const c10::Device& device, const at::Tensor& state) {
  at::Generator generator = DefaultGenerator(device);
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

}  // namespace hpsearch::core::compat
