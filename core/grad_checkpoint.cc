#include "core/grad_checkpoint.h"

#include <ATen/core/ivalue.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

#include <map>
#include <utility>

#include "core/error.h"
#include "core/torch_compat.h"

namespace hpsearch::core {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// What backward needs besides saved tensors, kept alive by the autograd node through an IValue
// capsule (the context's saved_data holds IValues only).
struct RecomputeState : torch::CustomClassHolder {
  CheckpointedBlockFn block;
  at::Tensor rng_state;
  c10::Device device{c10::kCPU};
  std::map<const void*, at::Tensor> stash;  // CheckpointStash's tensors
};

thread_local bool t_in_recompute = false;
thread_local RecomputeState* t_running_block = nullptr;  // the block running on this thread

// Marks the calling thread as running `state`'s block (recomputing it or not) for the scope's
// lifetime, restoring the previous marks so nested checkpoints keep them right.
class RunningBlockMark {
 public:
  RunningBlockMark(RecomputeState* state, bool recompute)
      : previous_state_(t_running_block), previous_recompute_(t_in_recompute) {
    t_running_block = state;
    t_in_recompute = recompute;
  }
  ~RunningBlockMark() {
    t_running_block = previous_state_;
    t_in_recompute = previous_recompute_;
  }
  RunningBlockMark(const RunningBlockMark&) = delete;
  RunningBlockMark& operator=(const RunningBlockMark&) = delete;

 private:
  RecomputeState* previous_state_;
  bool previous_recompute_;
};

// Restores the device's generator on scope exit, so an exception inside the recomputation cannot
// leave dropout replaying old masks.
class RngStateRestorer {
 public:
  RngStateRestorer(c10::Device device, at::Tensor state)
      : device_(device), state_(std::move(state)) {}
  ~RngStateRestorer() { compat::SetRngState(device_, state_); }
  RngStateRestorer(const RngStateRestorer&) = delete;
  RngStateRestorer& operator=(const RngStateRestorer&) = delete;

 private:
  c10::Device device_;
  at::Tensor state_;
};

class CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
 public:
  // Inputs seen by autograd: hidden (0), attn_bias (1), params (2 ..); `block` is not a tensor
  // input.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& hidden,
                            const at::Tensor& attn_bias, at::TensorList params,
                            const CheckpointedBlockFn& block) {
    auto state = c10::make_intrusive<RecomputeState>();
    state->block = block;
    state->device = hidden.device();
    state->rng_state = compat::GetRngState(state->device);
    variable_list saved = {hidden, attn_bias};
    saved.insert(saved.end(), params.begin(), params.end());
    ctx->save_for_backward(saved);
    // Function::apply already runs forward with grad mode off: nothing inside `block` is recorded.
    at::Tensor output;
    {
      const RunningBlockMark mark(state.get(), /*recompute=*/false);
      output = block(hidden, attn_bias);
    }
    ctx->saved_data["state"] = c10::IValue::make_capsule(std::move(state));
    return output;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    const c10::intrusive_ptr<torch::CustomClassHolder> holder =
        ctx->saved_data["state"].toCapsule();
    auto* state = static_cast<RecomputeState*>(holder.get());

    const size_t num_params = saved.size() - 2;
    // One slot per forward argument: hidden, attn_bias, each param, and the non-tensor block.
    variable_list grads(2 + num_params + 1);
    if (!grad_outputs[0].defined()) return grads;

    at::Tensor hidden = saved[0].detach().requires_grad_(ctx->needs_input_grad(0));
    at::Tensor output;
    {
      RngStateRestorer restore(state->device, compat::GetRngState(state->device));
      compat::SetRngState(state->device, state->rng_state);
      at::AutoGradMode grad_on(true);
      const RunningBlockMark mark(state, /*recompute=*/true);
      output = state->block(hidden, saved[1]);
      state->stash.clear();  // its last use
    }

    variable_list inputs;
    std::vector<size_t> slots;
    if (ctx->needs_input_grad(0)) {
      inputs.push_back(hidden);
      slots.push_back(0);
    }
    for (size_t i = 0; i < num_params; ++i) {
      if (ctx->needs_input_grad(2 + i) && saved[2 + i].requires_grad()) {
        inputs.push_back(saved[2 + i]);
        slots.push_back(2 + i);
      }
    }
    if (inputs.empty() || !output.requires_grad()) return grads;
    const variable_list computed =
        torch::autograd::grad({output}, inputs, {grad_outputs[0]}, /*retain_graph=*/false,
                              /*create_graph=*/false, /*allow_unused=*/true);
    for (size_t i = 0; i < slots.size(); ++i) grads[slots[i]] = computed[i];
    return grads;
  }
};

}  // namespace

bool InCheckpointRecompute() { return t_in_recompute; }

at::Tensor CheckpointStash(const void* key, const std::function<at::Tensor()>& make) {
  if (t_running_block == nullptr) return make();
  at::Tensor& kept = t_running_block->stash[key];
  if (!kept.defined()) kept = make();
  return kept;
}

at::Tensor CheckpointedCall(const CheckpointedBlockFn& block, const at::Tensor& hidden,
                            const at::Tensor& attn_bias, const std::vector<at::Tensor>& params) {
  if (!hidden.defined()) {
    Fail(ErrorCode::kInvalidArgument, "CheckpointedCall: the hidden-state input is undefined");
  }
  if (attn_bias.defined() && attn_bias.requires_grad()) {
    Fail(ErrorCode::kInvalidArgument,
         "CheckpointedCall: attn_bias requires grad; the attention bias is a constant mask");
  }
  return CheckpointFunction::apply(hidden, attn_bias, at::TensorList(params), block);
}

}  // namespace hpsearch::core
