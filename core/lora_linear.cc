#include "core/lora_linear.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/utils.h>

#include <cmath>
#include <string>
#include <utility>

#include "core/error.h"
#include "core/frozen_linear.h"
#include "core/grad_checkpoint.h"

namespace hpsearch::core {
namespace {

void ValidateOptions(const LoraLinearOptions& options) {
  if (options.in_features() <= 0 || options.out_features() <= 0) {
    Fail(ErrorCode::kInvalidArgument,
         "LoraLinearOptions: in_features (" + std::to_string(options.in_features()) +
             ") and out_features (" + std::to_string(options.out_features()) +
             ") must be positive");
  }
  if (options.lora_r() < 0) {
    Fail(ErrorCode::kInvalidArgument, "LoraLinearOptions.lora_r is " +
                                          std::to_string(options.lora_r()) +
                                          "; use 0 for no adapter or a positive rank");
  }
  if (!(options.lora_dropout() >= 0.0 && options.lora_dropout() < 1.0)) {
    Fail(ErrorCode::kInvalidArgument, "LoraLinearOptions.lora_dropout is " +
                                          std::to_string(options.lora_dropout()) +
                                          "; it must lie in [0, 1)");
  }
  if (!(options.init_std() > 0.0)) {
    Fail(ErrorCode::kInvalidArgument, "LoraLinearOptions.init_std must be positive");
  }
}

// weight.to(dtype) for an adapter weight, as one autograd node whose value a checkpointed block's
// recomputation takes from the block's first run (CheckpointStash) instead of casting again; the
// gradient is cast back as Tensor::to's backward does.
class AdapterCastFunction : public torch::autograd::Function<AdapterCastFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& weight,
                            int64_t dtype) {
    ctx->saved_data["dtype"] = static_cast<int64_t>(weight.scalar_type());
    const at::Tensor cast = CheckpointStash(weight.unsafeGetTensorImpl(), [&] {
      return weight.detach().to(static_cast<c10::ScalarType>(dtype));
    });
    // A new tensor object over the kept storage: autograd attaches this node to it, not to the
    // kept tensor.
    return cast.variable_data();
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto dtype = static_cast<c10::ScalarType>(ctx->saved_data["dtype"].toInt());
    return {grad_outputs[0].to(dtype), at::Tensor()};
  }
};

// An adapter weight in the compute dtype (itself when it already is).
at::Tensor AdapterIn(const at::Tensor& weight, c10::ScalarType dtype) {
  if (weight.scalar_type() == dtype) return weight;
  return AdapterCastFunction::apply(weight, static_cast<int64_t>(dtype));
}

}  // namespace

double KaimingUniformBound(int64_t fan_in, double a) {
  const double gain = std::sqrt(2.0 / (1.0 + a * a));
  return gain * std::sqrt(3.0 / static_cast<double>(fan_in));
}

LoraLinearOptions LinearLayerOptions(const FineTuningOptions& fine_tuning,
                                     const std::string& module_path, int64_t in_features,
                                     int64_t out_features, double init_std) {
  LoraLinearOptions options(in_features, out_features);
  options.init_std(init_std).base_trainable(fine_tuning.method == FineTuningMethod::kFull);
  if (IsLoraTarget(fine_tuning, module_path)) {
    options.lora_r(fine_tuning.lora_r)
        .lora_alpha(fine_tuning.lora_alpha)
        .lora_dropout(fine_tuning.lora_dropout);
  }
  return options;
}

LoraLinearImpl::LoraLinearImpl(const LoraLinearOptions& options, at::Generator generator)
    : options_(options) {
  ValidateOptions(options_);
  const int64_t in = options_.in_features();
  const int64_t out = options_.out_features();
  torch::NoGradGuard no_grad;
  weight = register_parameter("weight",
                              at::empty({out, in}).normal_(0.0, options_.init_std(), generator),
                              options_.base_trainable());
  if (options_.bias()) {
    bias = register_parameter("bias", at::zeros({out}), options_.base_trainable());
  }
  if (has_lora()) {
    const double bound = KaimingUniformBound(in, std::sqrt(5.0));
    lora_A = register_parameter(
        "lora_A", at::empty({options_.lora_r(), in}).uniform_(-bound, bound, generator));
    lora_B = register_parameter("lora_B", at::zeros({out, options_.lora_r()}));
  }
}

torch::Tensor LoraLinearImpl::forward(const torch::Tensor& x) {
  const c10::ScalarType dtype = options_.compute_dtype() == c10::ScalarType::Undefined
                                    ? x.scalar_type()
                                    : options_.compute_dtype();
  // Tensor::to returns the tensor itself when the dtype already matches: the float32 path is the
  // plain one, op for op.
  const torch::Tensor input = x.to(dtype);
  torch::Tensor y =
      frozen_ ? FrozenLinear(input, frozen_, BiasIn(dtype))
              : at::linear(input, weight.to(dtype),
                           bias.defined() && bias.requires_grad() ? bias.to(dtype) : BiasIn(dtype));
  if (!has_lora()) return y;
  torch::Tensor adapter_in = input;
  if (options_.lora_dropout() > 0.0 && is_training()) {
    adapter_in = at::dropout(input, options_.lora_dropout(), /*train=*/true);
  }
  // y + scale * (adapter_in A^T) B^T with the scale and the sum inside one GEMM (addmm's alpha and
  // beta): two kernels fewer per layer forward and one fewer backward than matmul, mul and add.
  const torch::Tensor hidden = at::linear(adapter_in, AdapterIn(lora_A, dtype));
  const int64_t out = options_.out_features();
  return at::addmm(y.reshape({-1, out}), hidden.reshape({-1, options_.lora_r()}),
                   AdapterIn(lora_B, dtype).t(), /*beta=*/1, /*alpha=*/lora_scale())
      .view(y.sizes());
}

torch::Tensor LoraLinearImpl::BiasIn(c10::ScalarType dtype) {
  if (!bias.defined() || bias.scalar_type() == dtype) return bias;
  const int64_t version = bias._version();
  if (!bias_cast_.defined() || bias_cast_.scalar_type() != dtype ||
      bias_cast_.device() != bias.device() || bias_cast_source_ != bias.data_ptr() ||
      bias_cast_version_ != version) {
    torch::NoGradGuard no_grad;
    bias_cast_ = bias.detach().to(dtype);
    bias_cast_source_ = bias.data_ptr();
    bias_cast_version_ = version;
  }
  return bias_cast_;
}

void LoraLinearImpl::SetBaseTrainable(bool trainable) {
  if (frozen_ && trainable) {
    Fail(ErrorCode::kInvalidArgument,
         "LoraLinear: the base weight is a FrozenWeight (" + frozen_->Describe() +
             ") and cannot be trained; full fine-tuning needs the dense base");
  }
  if (weight.defined()) weight.set_requires_grad(trainable);
  if (bias.defined()) bias.set_requires_grad(trainable);
  options_.base_trainable(trainable);
}

void LoraLinearImpl::ReplaceBaseWeight(std::shared_ptr<const FrozenWeight> frozen) {
  if (!frozen) {
    Fail(ErrorCode::kInvalidArgument, "LoraLinear::ReplaceBaseWeight: null FrozenWeight");
  }
  if (frozen->out_features() != options_.out_features() ||
      frozen->in_features() != options_.in_features()) {
    Fail(ErrorCode::kInvalidArgument,
         "LoraLinear::ReplaceBaseWeight: " + frozen->Describe() + " does not fit this layer's [" +
             std::to_string(options_.out_features()) + ", " +
             std::to_string(options_.in_features()) + "] ([out, in]) weight");
  }
  if (frozen_) {
    Fail(ErrorCode::kInvalidArgument, "LoraLinear::ReplaceBaseWeight: the base is already " +
                                          frozen_->Describe() + "; a base weight is replaced once");
  }
  parameters_.erase("weight");
  weight = torch::Tensor();
  frozen_ = std::move(frozen);
  for (const auto& item : frozen_->Tensors()) register_buffer("base_" + item.first, item.second);
  SetBaseTrainable(false);
}

FrozenWeightUse LoraLinearImpl::FrozenBaseUse(c10::ScalarType input_dtype) const {
  const c10::ScalarType dtype = options_.compute_dtype() == c10::ScalarType::Undefined
                                    ? input_dtype
                                    : options_.compute_dtype();
  return FrozenWeightUse{frozen_.get(), dtype};
}

torch::Tensor LoraLinearImpl::BaseWeight(c10::ScalarType dtype) const {
  if (frozen_) return frozen_->Materialize(dtype);
  return weight.detach().to(dtype);
}

double LoraLinearImpl::lora_scale() const {
  return has_lora() ? options_.lora_alpha() / static_cast<double>(options_.lora_r()) : 0.0;
}

}  // namespace hpsearch::core
