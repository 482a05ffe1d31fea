// LoraLinear: an affine layer y = x W^T + b over a base weight W that is either a dense parameter
// (trainable for full fine-tuning, frozen for LoRA) or a pluggable FrozenWeight (QLoRA's NF4), plus
// an optional LoRA adapter as PEFT defines it:
//
//   y = x W^T + b + (dropout(x) A^T B^T) * (lora_alpha / lora_r)
//
// with lora_A [r, in] drawn Kaiming-uniform with a = sqrt(5) (bound 1/sqrt(in)) and lora_B [out, r]
// zero, so a fresh adapter leaves the output unchanged.
//
// Orientation: W is stored dense as [out_features, in_features] (torch::nn::Linear's layout, the
// one at::linear consumes and bitsandbytes quantises). Hugging Face's GPT-2 stores these layers as
// Conv1D with [in, out] weights; the loader in core/gpt2_model.h transposes them once at load and
// back on export.
//
// Parameters (names as Module::named_parameters reports them): "weight" [out, in] (absent once the
// base is a FrozenWeight), "bias" [out] (when options.bias), "lora_A" [r, in] and "lora_B" [out, r]
// (when options.lora_r > 0). A FrozenWeight's tensors appear as buffers "base_<name>". PEFT's names
// for these are produced by core/fine_tuning.h.
//
// Mixed precision (options.compute_dtype, e.g. bfloat16 as QLoRA computes): the input is cast to
// the compute dtype, the base weight is materialised in it (NF4 dequantises straight to bf16), the
// frozen bias and the fp32 LoRA weights are cast to it at use (inside a checkpointed block, once
// for the block's first run and its recomputation: CheckpointStash in core/grad_checkpoint.h), and
// the output comes out in it. The trainable tensors stay float32, as autocast and QLoRA keep master
// weights: the adapter path is then one autograd node that accumulates the adapters' gradients,
// scaled and widened to float32, straight into lora_A.grad and lora_B.grad (as loss.backward()
// would; torch::autograd::grad does not see them), which saves six kernel launches per layer and
// step. In the adapters' own dtype (float32) the layer is the plain autograd graph. A frozen
// FrozenWeight base goes through FrozenLinear (core/frozen_linear.h), which keeps no dense copy of
// the weight for backward.
//
// Thread-safety: as any torch::nn::Module — forward may run concurrently in eval mode without grad;
// mutation (SetBaseTrainable, ReplaceBaseWeight, to()) needs exclusive access.
#pragma once

#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <memory>
#include <string>

#include <c10/core/ScalarType.h>

#include "core/fine_tuning.h"
#include "core/frozen_weight.h"
#include "core/materialized_weights.h"

namespace hpsearch::core {

struct LoraLinearOptions {
  LoraLinearOptions(int64_t in_features, int64_t out_features)
      : in_features_(in_features), out_features_(out_features) {}

  // Input width. REQUIRES: > 0.
  TORCH_ARG(int64_t, in_features);
  // Output width. REQUIRES: > 0.
  TORCH_ARG(int64_t, out_features);
  // Whether the layer has a bias (GPT-2's Conv1D layers do). The bias follows the base: trainable
  // with it.
  TORCH_ARG(bool, bias) = true;
  // Standard deviation of the normal init of the base weight (GPT-2: 0.02, output projections
  // scaled down).
  TORCH_ARG(double, init_std) = 0.02;
  // Whether the dense base weight and bias receive gradients (full fine-tuning) or stay frozen
  // (LoRA, QLoRA).
  TORCH_ARG(bool, base_trainable) = true;
  // LoRA rank r; 0 means no adapter (lora_A / lora_B are not registered). PEFT's default is 8.
  TORCH_ARG(int64_t, lora_r) = 0;
  // LoRA alpha: the adapter's output is scaled by lora_alpha / lora_r. PEFT's default is 8.
  TORCH_ARG(double, lora_alpha) = 8.0;
  // Dropout probability on the adapter's input path only (the base path never drops). REQUIRES: in
  // [0, 1).
  TORCH_ARG(double, lora_dropout) = 0.0;
  // Dtype the layer computes in. Undefined (the default): the input's dtype, so nothing is cast.
  TORCH_ARG(c10::ScalarType, compute_dtype) = c10::ScalarType::Undefined;
};

class LoraLinearImpl : public torch::nn::Module {
 public:
  // Registers and initialises everything, drawing the base weight (normal, options.init_std) and
  // lora_A (Kaiming-uniform, a = sqrt(5)) from `generator` in that order; bias and lora_B start at
  // zero. REQUIRES: options valid (throws core::Error(kInvalidArgument) otherwise); generator is a
  // CPU generator.
  LoraLinearImpl(const LoraLinearOptions& options, at::Generator generator);

  // x: [..., in_features] → [..., out_features], in options.compute_dtype (x's dtype when that is
  // undefined).
  torch::Tensor forward(const torch::Tensor& x);

  // Sets options.compute_dtype (Undefined: follow the input). Exclusive access required.
  void set_compute_dtype(c10::ScalarType dtype) { options_.compute_dtype(dtype); }

  // Freezes or unfreezes the dense base weight and bias. Throws kInvalidArgument when trainable is
  // requested while the base is a FrozenWeight (there is no dense parameter to train).
  void SetBaseTrainable(bool trainable);

  // The QLoRA integration point: replaces the dense "weight" parameter by `frozen` (e.g. an NF4
  // weight built from this->weight), which is used from then on. The dense parameter is
  // unregistered and released here; the bias stays a dense parameter, frozen. Call it once, after
  // loading weights and before building the optimizer. REQUIRES: frozen has this layer's shape and
  // the base was not replaced before (throws kInvalidArgument).
  void ReplaceBaseWeight(std::shared_ptr<const FrozenWeight> frozen);

  // The base weight as forward uses it, [out, in] in `dtype`, without autograd history.
  torch::Tensor BaseWeight(c10::ScalarType dtype) const;

  // The frozen base and the dtype forward materialises it in for an input of `input_dtype`
  // (options.compute_dtype, or input_dtype when that is undefined), for a MaterializedWeightsScope
  // (core/materialized_weights.h); weight is nullptr when the base is a dense parameter.
  FrozenWeightUse FrozenBaseUse(c10::ScalarType input_dtype) const;

  bool has_lora() const { return options_.lora_r() > 0; }
  bool has_frozen_weight() const { return frozen_ != nullptr; }
  double lora_scale() const;
  const LoraLinearOptions& options() const { return options_; }

  // Registered tensors; undefined where the options leave them out (see the file comment).
  torch::Tensor weight;
  torch::Tensor bias;
  torch::Tensor lora_A;
  torch::Tensor lora_B;

 private:
  // The frozen bias in `dtype`, converted once and reused while the bias tensor is unchanged
  // (same storage and version counter): a per-forward cast would be one more kernel launch per
  // layer.
  torch::Tensor BiasIn(c10::ScalarType dtype);

  LoraLinearOptions options_;
  std::shared_ptr<const FrozenWeight> frozen_;
  torch::Tensor bias_cast_;
  const void* bias_cast_source_ = nullptr;
  int64_t bias_cast_version_ = 0;
};

TORCH_MODULE(LoraLinear);

// The options of the linear layer at `module_path` (e.g. "transformer.h.0.attn.c_attn") under
// `fine_tuning`: an adapter when IsLoraTarget says so, the base trainable only for full
// fine-tuning.
LoraLinearOptions LinearLayerOptions(const FineTuningOptions& fine_tuning,
                                     const std::string& module_path, int64_t in_features,
                                     int64_t out_features, double init_std);

// The Kaiming-uniform bound sqrt(6 / ((1 + a^2) * fan_in)) that torch.nn.init.kaiming_uniform_ uses
// with mode fan_in and leaky_relu gain; with a = sqrt(5) it is 1 / sqrt(fan_in).
double KaimingUniformBound(int64_t fan_in, double a);

}  // namespace hpsearch::core
