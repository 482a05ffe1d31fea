// Gradient checkpointing for LibTorch C++, which has no torch.utils.checkpoint: CheckpointedCall
// runs a block without keeping its activations and recomputes it during backward.
//
// Forward runs `block` under no-grad, saving only its inputs and the default generator's state of
// the input's device (dropout draws from it). Backward restores that generator state, re-runs
// `block` with grad enabled on detached inputs, back-propagates the incoming gradient through the
// recomputed graph with torch::autograd::grad, and restores the generator to where it was. The
// recomputation therefore draws the same dropout masks, and gradients equal those of an
// uncheckpointed call.
//
// `params` are passed as inputs of the autograd node, so their gradients flow out of the node as
// ordinary edges: they accumulate into .grad under loss.backward() and are returned by
// torch::autograd::grad, and a block whose input needs no gradient (LoRA on frozen embeddings)
// still trains its own parameters. Pass every tensor inside `block` that may require grad; those
// that do not are skipped.
//
// Limits: single tensor output; autocast state is not re-entered during recomputation; double
// backward is not supported. Thread-safety: the generator swap takes the generator's mutex per
// call, but another thread drawing from the same generator between the swap and the restore would
// see the replayed state — do not run backward concurrently with random ops on the same device.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <vector>

namespace hpsearch::core {

// hidden + attention bias → hidden, e.g. a Gpt2Block's forward.
using CheckpointedBlockFn =
    std::function<at::Tensor(const at::Tensor& hidden, const at::Tensor& attn_bias)>;

// Returns block(hidden, attn_bias) with the memory profile described above. `block` is copied into
// the autograd graph and must stay callable (keep the modules it references alive) until backward
// has run. REQUIRES: hidden is defined; attn_bias does not require grad.
at::Tensor CheckpointedCall(const CheckpointedBlockFn& block, const at::Tensor& hidden,
                            const at::Tensor& attn_bias, const std::vector<at::Tensor>& params);

// Whether the calling thread is inside a checkpointed block's recomputation (backward re-running
// `block`). The recomputed graph lives only until that block's gradients are computed, so what it
// saves costs memory for one block at a time: FrozenLinear keeps the dense weight it materialised
// there instead of materialising it again in backward (core/frozen_linear.h).
bool InCheckpointRecompute();

// Inside a checkpointed block (its first run or its recomputation): the tensor that `make` returned
// for `key` on the block's first run, made then and kept in the block's autograd node until its
// backward has run, so the recomputation reuses it instead of making it again (a weight cast to the
// compute dtype: one kernel launch per weight and step). Outside a checkpointed block: make().
// REQUIRES: make() yields the same value on both runs (it reads weights, which do not change
// between a forward and its backward, not activations) and no autograd history; keys are unique
// within a block (e.g. the weight's TensorImpl).
at::Tensor CheckpointStash(const void* key, const std::function<at::Tensor()>& make);

}  // namespace hpsearch::core
