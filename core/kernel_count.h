// Kernel-launch counting on the CPU: how many of a piece of work's operations would each launch a
// GPU kernel, read from LibTorch's RecordFunction events, so that the host cost of a training step
// (microseconds of dispatch per launch, whatever the launch's size) can be budgeted on a machine
// without a GPU. The rule, stated once here and in docs/gpu-kernels.md:
//
//   1. An ATen operator call counts when it is a leaf: no operator call nested under it counted.
//      A composite op (linear, matmul) is the sum of what it calls.
//   2. Operators that never launch a kernel themselves count 0: views and metadata-only ops
//      (view, reshape, transpose, expand, slice, detach, ...), allocation (empty*), and wrappers
//      that may be no-ops (to, contiguous); when they do work, it shows up as a nested op that
//      counts by rule 1. The list is LaunchesNoKernel's, in kernel_count.cc.
//   3. A fused op — a FusedOpScope whose name starts with "hpsearch::" — counts 1, and nothing
//      inside it counts: the attention core (one scaled_dot_product_attention kernel on CUDA) and
//      custom kernels that are no ATen op (NF4 dequantisation, the residual stream's LayerNorm).
//      The backward of the autograd nodes created inside one such scope counts 1 more (the fused
//      backward kernel), once per scope.
//   4. Autograd nodes, the autograd engine's records around them and user scopes of other names
//      are transparent: the ops inside them count.
//   5. An op that CUDA runs as one kernel while the CPU decomposes it (dropout: native_dropout on
//      CUDA; bernoulli_, div_ and mul on the CPU) counts 1 when anything below it counts, 0 when it
//      is a no-op (eval, p = 0).
//
// Counting is for CPU runs (the work in the compute dtype the GPU would use, bfloat16, so that
// casts count): on the CPU, autograd runs on the calling thread, which keeps the nesting exact.
// Known differences from CUDA are listed in docs/gpu-kernels.md.
//
// Thread-safety: at most one KernelLaunchCounter may exist at a time (it installs a process-wide
// RecordFunction callback); it counts events of every thread, each with its own nesting.
#pragma once

#include <ATen/record_function.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace hpsearch::core {

// Names of the fused ops the model marks (rule 3).
inline constexpr char kAttentionCoreOp[] = "hpsearch::attention_core";
inline constexpr char kNf4DequantizeOp[] = "hpsearch::nf4_dequantize";
inline constexpr char kResidualLayerNormOp[] = "hpsearch::residual_layer_norm";

// Marks the work of its lifetime as one fused op named `name` (a string literal starting with
// "hpsearch::"). Costs one check of an atomic flag when nothing records.
class FusedOpScope {
 public:
  explicit FusedOpScope(const char* name);
  FusedOpScope(const FusedOpScope&) = delete;
  FusedOpScope& operator=(const FusedOpScope&) = delete;

 private:
  at::RecordFunction guard_;
};

struct KernelCount {
  // Operations that would launch a kernel, by the rule above.
  int64_t launches = 0;
  // The same by name ("aten::addmm", "hpsearch::attention_core", "hpsearch::attention_core
  // (backward)").
  std::map<std::string, int64_t> launches_by_name;
  // The same by "caller > name", the caller being the outermost ATen op ("aten::to > aten::copy_")
  // or, in backward, the autograd node ("backward of ToCopyBackward0 > aten::copy_"): where the
  // launches come from.
  std::map<std::string, int64_t> launches_by_caller;
  // Every ATen operator call, nested ones included (an upper bound on launches).
  int64_t aten_calls = 0;
  // Autograd nodes run.
  int64_t autograd_nodes = 0;
};

// `a` - `b`, field by field (names whose difference is 0 are dropped): one step's count as the
// difference of two runs that differ by one step.
KernelCount Subtract(const KernelCount& a, const KernelCount& b);

// Counts while it lives. REQUIRES: no other KernelLaunchCounter alive; created and destroyed
// outside any ATen operator call (at the top of a thread's stack).
class KernelLaunchCounter {
 public:
  KernelLaunchCounter();
  ~KernelLaunchCounter();
  KernelLaunchCounter(const KernelLaunchCounter&) = delete;
  KernelLaunchCounter& operator=(const KernelLaunchCounter&) = delete;

  // What was counted so far.
  KernelCount Count() const;

 private:
  at::CallbackHandle handle_;
};

// Runs `work` under a KernelLaunchCounter and returns its count.
KernelCount CountKernelLaunches(const std::function<void()>& work);

// Rule 2: whether the ATen operator `name` ("aten::view") launches no kernel of its own.
bool LaunchesNoKernel(std::string_view name);

}  // namespace hpsearch::core
