#include "core/lora_linear.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/utils.h>

#include <cmath>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

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

// parameter.grad += scale * gradient (gradient in the compute dtype, widened by the add), as
// AccumulateGrad would add the scaled, widened gradient; sets it when the parameter has none.
void AccumulateGradient(const at::Tensor& parameter, const at::Tensor& gradient, double scale) {
  at::Tensor& grad = parameter.mutable_grad();
  if (grad.defined()) {
    grad.add_(gradient, scale);
  } else {
    grad = gradient.to(parameter.scalar_type()).mul_(scale);
  }
}

// The adapter path of a layer computing in a narrower dtype than its float32 adapters (QLoRA's
// bf16), as one autograd node, with the frozen base product inside it when the base is a
// FrozenWeight (QLoRA's NF4):
//
//   out = y + scale * dropout(x) A^T B^T,    y = x W^T + b (FrozenLinearForward) or given
//
// Forward: the adapters are cast to the compute dtype (inside a checkpointed block once for its
// first run and its recomputation: CheckpointStash), dropout is native_dropout (mask and scale in
// one kernel on CUDA), then x_d A^T (mm) and y + scale * h B^T (addmm, the scale and the sum inside
// the GEMM). Backward: g B (mm); the input gradient (g B) A (mm) with the dropout mask and both
// scales applied by one kernel: added into the base's dL/dx = g W by addcmul_ when the base is
// inside (autograd would otherwise add the two gradients of x: one more kernel), else
// native_dropout_backward; and the adapters' gradients g^T h and (g B)^T x_d (mm) accumulated
// straight into lora_A.grad and lora_B.grad, scaled and widened to float32 by one add_ each: the
// fusion Megatron-LM calls gradient-accumulation fusion. Autograd would otherwise scale
// (AddmmBackward's mul), cast back (ToCopyBackward) and then accumulate (AccumulateGrad): six
// kernels per layer where this takes two.
//
// The price: the adapters' gradients never travel as autograd values, so
// torch::autograd::grad(..., {lora_A}) does not see them (they land in .grad, as loss.backward()
// puts them) and neither do hooks on the parameters' AccumulateGrad nodes; CheckpointedCall asks
// for its parameters' gradients with allow_unused and passes the absence on. The float32 path does
// not come here (LoraLinearImpl::forward): it stays the plain autograd graph.
//
// Two nodes share the adapter halves below: LoraAdapterFunction (a dense base: y is an input) and
// QLoraLinearFunction (a FrozenWeight base: y is computed inside).

// Forward of the adapter path: casts, dropout, x_d A^T, y + scale * h B^T; saves what
// AdapterBackward needs. x: [N, in], y: [N, out] in the compute dtype; lora_A [r, in] and lora_B
// [out, r] float32.
at::Tensor AdapterForward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                          const at::Tensor& y, const at::Tensor& lora_A, const at::Tensor& lora_B,
                          double scale, double dropout, c10::ScalarType dtype) {
  const at::Tensor a =
      CheckpointStash(lora_A.unsafeGetTensorImpl(), [&] { return lora_A.detach().to(dtype); });
  const at::Tensor b =
      CheckpointStash(lora_B.unsafeGetTensorImpl(), [&] { return lora_B.detach().to(dtype); });
  at::Tensor x_dropped = x;
  at::Tensor keep;
  if (dropout > 0.0) std::tie(x_dropped, keep) = at::native_dropout(x, dropout, true);
  const at::Tensor hidden = at::mm(x_dropped, a.t());
  ctx->save_for_backward({x_dropped, keep, hidden, a, b});
  // The parameters themselves (the same TensorImpl, not a saved copy that saved-tensor hooks could
  // repack): AdapterBackward writes their .grad.
  ctx->saved_data["lora_A"] = lora_A;
  ctx->saved_data["lora_B"] = lora_B;
  ctx->saved_data["scale"] = scale;
  ctx->saved_data["dropout"] = dropout;
  return at::addmm(y, hidden, b.t(), /*beta=*/1, /*alpha=*/scale);
}

// Backward of the adapter path: accumulates the adapters' gradients into their .grad (when
// `adapters` says they need one) and returns the adapter path's dL/dx, added into `grad_x_base`
// in place when that is defined (one kernel: the mask and the scales applied in the add), else as
// a new tensor; undefined when !needs_input_grad.
at::Tensor AdapterBackward(torch::autograd::AutogradContext* ctx, const at::Tensor& grad_out,
                           at::Tensor grad_x_base, bool needs_input_grad, bool needs_a_grad,
                           bool needs_b_grad) {
  const torch::autograd::variable_list saved = ctx->get_saved_variables();
  const at::Tensor& x_dropped = saved[0];
  const at::Tensor& keep = saved[1];
  const at::Tensor& hidden = saved[2];
  const at::Tensor& a = saved[3];
  const at::Tensor& b = saved[4];
  const double scale = ctx->saved_data["scale"].toDouble();
  const double dropout = ctx->saved_data["dropout"].toDouble();

  const at::Tensor grad_hidden = at::mm(grad_out, b);  // without the scale: [N, r]
  at::Tensor grad_x;
  if (needs_input_grad) {
    const at::Tensor grad_x_dropped = at::mm(grad_hidden, a);
    const double input_scale = keep.defined() ? scale / (1.0 - dropout) : scale;
    if (grad_x_base.defined()) {
      grad_x = std::move(grad_x_base);
      if (keep.defined()) {
        grad_x.addcmul_(grad_x_dropped, keep, input_scale);
      } else {
        grad_x.add_(grad_x_dropped, input_scale);
      }
    } else {
      grad_x = keep.defined() ? at::native_dropout_backward(grad_x_dropped, keep, input_scale)
                              : grad_x_dropped.mul(input_scale);
    }
  }
  if (needs_a_grad) {
    AccumulateGradient(ctx->saved_data["lora_A"].toTensor(), at::mm(grad_hidden.t(), x_dropped),
                       scale);
  }
  if (needs_b_grad) {
    AccumulateGradient(ctx->saved_data["lora_B"].toTensor(), at::mm(grad_out.t(), hidden), scale);
  }
  return grad_x;
}

// A dense base's layer: out = y + adapter path, y given (and its gradient passed through).
class LoraAdapterFunction : public torch::autograd::Function<LoraAdapterFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const at::Tensor& y, const at::Tensor& lora_A, const at::Tensor& lora_B,
                            double scale, double dropout, int64_t compute_dtype) {
    return AdapterForward(ctx, x, y, lora_A, lora_B, scale, dropout,
                          static_cast<c10::ScalarType>(compute_dtype));
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const at::Tensor grad_x =
        AdapterBackward(ctx, grad_outputs[0], at::Tensor(), ctx->needs_input_grad(0),
                        ctx->needs_input_grad(2), ctx->needs_input_grad(3));
    return {grad_x,       ctx->needs_input_grad(1) ? grad_outputs[0] : at::Tensor(),
            at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(),
            at::Tensor()};
  }
};

// The frozen bias, carried as a non-tensor argument: autograd tracks nothing of it (it is frozen)
// and it may be undefined, which a tensor argument of a custom node may not be.
struct FrozenBias {
  at::Tensor tensor;
};

// A FrozenWeight base's layer (QLoRA): y = x W^T + b inside the node (FrozenLinearForward), so
// backward adds the adapter path's dL/dx into the base's in place.
class QLoraLinearFunction : public torch::autograd::Function<QLoraLinearFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const at::Tensor& lora_A, const at::Tensor& lora_B, FrozenBias bias,
                            std::shared_ptr<const FrozenWeight> base, double scale, double dropout,
                            int64_t compute_dtype) {
    const at::Tensor y = FrozenLinearForward(ctx, x, std::move(base), bias.tensor);
    return AdapterForward(ctx, x, y, lora_A, lora_B, scale, dropout,
                          static_cast<c10::ScalarType>(compute_dtype));
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const at::Tensor& grad_out = grad_outputs[0];
    at::Tensor grad_x_base;
    if (ctx->needs_input_grad(0)) grad_x_base = FrozenLinearInputGradient(ctx, grad_out);
    const at::Tensor grad_x =
        AdapterBackward(ctx, grad_out, std::move(grad_x_base), ctx->needs_input_grad(0),
                        ctx->needs_input_grad(1), ctx->needs_input_grad(2));
    return {grad_x,       at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

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
  const int64_t in = options_.in_features();
  const int64_t out = options_.out_features();
  const double dropout = is_training() ? options_.lora_dropout() : 0.0;
  const bool adapter_node = has_lora() && dtype != lora_A.scalar_type();
  if (adapter_node && frozen_) {
    std::vector<int64_t> out_sizes = input.sizes().vec();
    out_sizes.back() = out;
    return QLoraLinearFunction::apply(input.reshape({-1, in}), lora_A, lora_B,
                                      FrozenBias{BiasIn(dtype)}, frozen_, lora_scale(), dropout,
                                      static_cast<int64_t>(dtype))
        .view(out_sizes);
  }
  torch::Tensor y =
      frozen_ ? FrozenLinear(input, frozen_, BiasIn(dtype))
              : at::linear(input, weight.to(dtype),
                           bias.defined() && bias.requires_grad() ? bias.to(dtype) : BiasIn(dtype));
  if (!has_lora()) return y;
  const int64_t r = options_.lora_r();
  if (adapter_node) {
    return LoraAdapterFunction::apply(input.reshape({-1, in}), y.reshape({-1, out}), lora_A, lora_B,
                                      lora_scale(), dropout, static_cast<int64_t>(dtype))
        .view(y.sizes());
  }
  // The plain path (the adapters' own dtype): y + scale * (adapter_in A^T) B^T with the scale and
  // the sum inside one GEMM (addmm's alpha and beta): two kernels fewer per layer forward and one
  // fewer backward than matmul, mul and add.
  const torch::Tensor adapter_in =
      dropout > 0.0 ? at::dropout(input, dropout, /*train=*/true) : input;
  const torch::Tensor hidden = at::linear(adapter_in, lora_A);
  return at::addmm(y.reshape({-1, out}), hidden.reshape({-1, r}), lora_B.t(), /*beta=*/1,
                   /*alpha=*/lora_scale())
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
