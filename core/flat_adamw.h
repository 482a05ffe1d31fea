// FlatAdamW: torch's AdamW (decoupled weight decay, Hugging Face's defaults) over parameters that
// live in one contiguous float32 buffer, with their gradients in a second one, so that a step is a
// handful of whole-buffer kernels instead of about ten per parameter. QLoRA on the seed shape has
// 193 trainable tensors: LibTorch's AdamW launches ~1,900 kernels per step, plus ~400 for
// clip_grad_norm_ and ~190 for zero_grad; here the three take ~15. On a GPU that is the difference
// between a step bounded by kernel launches and one that is not. Nothing here reads a value back to
// the host: ClipGradNorm returns the norm as a device tensor, and the step count and bias
// corrections are host numbers.
//
// What the constructor does to the parameters: each group's parameters are copied into a slice of
// one flat buffer and re-pointed at it (set_data: the parameter tensors stay the same objects, so
// modules, names and requires_grad are untouched), and each gets a gradient that is a view of the
// flat gradient buffer; autograd accumulates into it in place. From then on: do not move the
// module to another device or replace a parameter's data (load weights with copy_), and do not
// call Optimizer::zero_grad (it may drop the gradient views); call ZeroGrad.
//
// The update is per element exactly LibTorch's AdamW::step (same operations in the same order):
//   p *= 1 - lr * weight_decay                   (skipped when weight_decay == 0)
//   m = beta1 m + (1 - beta1) g;   v = beta2 v + (1 - beta2) g^2
//   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// with one step count t for all parameters (they all step together; a parameter that got no
// gradient sees zeros rather than being skipped). amsgrad is refused.
//
// State (the moments and t) is float32 on the parameters' device; save/load write it as
// "flat_adamw/exp_avg", "flat_adamw/exp_avg_sq" and "flat_adamw/step" and check the sizes.
//
// Thread-compatible: one thread at a time.
#pragma once

#include <torch/optim/adamw.h>
#include <torch/optim/optimizer.h>

#include <cstdint>
#include <vector>

namespace hpsearch::core {

class FlatAdamW : public torch::optim::Optimizer {
 public:
  // REQUIRES: every parameter is a float32 leaf that requires grad, all on one device, none twice;
  // each group's options are AdamWOptions (the defaults fill missing ones) with amsgrad false.
  // Throws core::Error(kInvalidArgument) otherwise.
  FlatAdamW(std::vector<torch::optim::OptimizerParamGroup> groups,
            const torch::optim::AdamWOptions& defaults);

  // One AdamW step with the groups' current options (the trainer sets lr per step). The closure,
  // if any, is called first with grad enabled and its loss returned.
  at::Tensor step(LossClosure closure = nullptr) override;

  // Sets every gradient to zero (one kernel).
  void ZeroGrad();

  // Scales the gradients so their global L2 norm is at most max_norm, as
  // torch::nn::utils::clip_grad_norm_ does (coefficient max_norm / (norm + 1e-6), clamped to 1),
  // and returns the norm before clipping as a 0-dim tensor on the device, without synchronising.
  // REQUIRES: max_norm > 0.
  at::Tensor ClipGradNorm(double max_norm);

  void save(torch::serialize::OutputArchive& archive) const override;
  // Throws core::Error(kDataLoss) when the archive's state does not fit these parameters.
  void load(torch::serialize::InputArchive& archive) override;

  int64_t numel() const { return flat_params_.numel(); }
  int64_t step_count() const { return step_; }
  const at::Tensor& flat_params() const { return flat_params_; }
  const at::Tensor& flat_grads() const { return flat_grads_; }
  const at::Tensor& exp_avg() const { return exp_avg_; }
  const at::Tensor& exp_avg_sq() const { return exp_avg_sq_; }

 private:
  at::Tensor flat_params_;
  at::Tensor flat_grads_;
  at::Tensor exp_avg_;
  at::Tensor exp_avg_sq_;
  std::vector<int64_t> group_begin_;  // group g covers [group_begin_[g], group_begin_[g + 1])
  int64_t step_ = 0;
};

}  // namespace hpsearch::core
