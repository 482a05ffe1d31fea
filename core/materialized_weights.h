// MaterializedWeightsScope: the dense matrices of several FrozenWeights made in one go, for the
// FrozenLinear calls of one block run (issue 19: a step's kernel launches). A GPT-2 block's four
// NF4 bases (attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj) are dequantised by one kernel launch
// (DequantizeWeights, core/nf4.h) instead of four; with gradient checkpointing that is once for the
// block's first run and once for its recomputation, 2 launches per layer and step instead of 8.
//
// Gpt2Block::forward opens one for its frozen bases in the compute dtype; FrozenLinear's forward
// takes its dense weight from the innermost open scope of the thread that holds one for (weight,
// dtype) (ScopedMaterializedWeight), and materialises it itself otherwise. What is batched: NF4
// weights (Nf4FrozenWeight) with double quantisation, grouped by device and dtype, for bfloat16 and
// float32 (the batched kernel's outputs). Anything else (dense FrozenWeights, other dtypes) is left
// out, and FrozenLinear materialises it per call as without a scope. Backward outside a
// checkpointed recomputation does not use the scope either: FrozenLinear keeps only the
// FrozenWeight handle and materialises again there (core/frozen_linear.h).
//
// Memory: the scope holds its dense matrices until it closes, so all of a block's bases coexist
// during the block's run where one at a time did before (the seed's width 1,024 in bfloat16: 24
// MiB, c_attn 6 + attn.c_proj 2 + c_fc 8 + mlp.c_proj 8). A checkpointed block's recomputation kept
// all four for its backward already, so the peak of a checkpointed step does not change; see
// docs/gpu-kernels.md's memory budget.
//
// Thread-safety: a scope belongs to the thread that opened it (thread-local; the autograd engine
// runs a checkpointed block's recomputation on one thread, inside the scope it opens). Scopes nest;
// close them in reverse order of opening (RAII does).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>

#include <vector>

#include "core/frozen_weight.h"

namespace hpsearch::core {

// A frozen weight and the dtype its FrozenLinear will ask for.
struct FrozenWeightUse {
  const FrozenWeight* weight = nullptr;  // not owned; nullptr entries are skipped
  c10::ScalarType dtype = c10::ScalarType::Undefined;
};

class MaterializedWeightsScope {
 public:
  // Materialises the batchable uses (see the file comment) now, one DequantizeWeights call per
  // (device, dtype) group; a weight listed twice in one dtype is materialised once. REQUIRES: the
  // weights outlive the scope; they are not changed while it is open.
  explicit MaterializedWeightsScope(const std::vector<FrozenWeightUse>& uses);
  ~MaterializedWeightsScope();
  MaterializedWeightsScope(const MaterializedWeightsScope&) = delete;
  MaterializedWeightsScope& operator=(const MaterializedWeightsScope&) = delete;

  // How many dense matrices the scope holds.
  size_t size() const { return entries_.size(); }

 private:
  friend at::Tensor ScopedMaterializedWeight(const FrozenWeight& weight, c10::ScalarType dtype);

  struct Entry {
    const FrozenWeight* weight;
    c10::ScalarType dtype;
    at::Tensor dense;
  };

  std::vector<Entry> entries_;
  MaterializedWeightsScope* previous_;
};

// The dense [out, in] matrix an open scope of the calling thread holds for (weight, dtype), the
// innermost first, without autograd history; an undefined tensor when none holds one.
at::Tensor ScopedMaterializedWeight(const FrozenWeight& weight, c10::ScalarType dtype);

}  // namespace hpsearch::core
