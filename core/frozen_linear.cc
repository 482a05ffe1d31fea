#include "core/frozen_linear.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include <utility>

#include "core/error.h"
#include "core/grad_checkpoint.h"
#include "core/materialized_weights.h"

namespace hpsearch::core {
namespace {

// Carries the shared_ptr through AutogradContext::saved_data, which holds IValues.
struct WeightHolder : torch::CustomClassHolder {
  explicit WeightHolder(std::shared_ptr<const FrozenWeight> w) : weight(std::move(w)) {}
  std::shared_ptr<const FrozenWeight> weight;
};

constexpr const char* kDtypeKey = "frozen_linear/dtype";
constexpr const char* kHandleKey = "frozen_linear/weight";
constexpr const char* kDenseKey = "frozen_linear/dense";

class FrozenLinearFunction : public torch::autograd::Function<FrozenLinearFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const at::Tensor& bias, std::shared_ptr<const FrozenWeight> weight) {
    return FrozenLinearForward(ctx, x, std::move(weight), bias);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    at::Tensor grad_x;
    if (ctx->needs_input_grad(0)) grad_x = FrozenLinearInputGradient(ctx, grad_outputs[0]);
    return {grad_x, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor FrozenLinearForward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                               std::shared_ptr<const FrozenWeight> weight, const at::Tensor& bias) {
  // A block's bases come from its MaterializedWeightsScope when it holds them (one dequantisation
  // launch for all of them).
  at::Tensor w = ScopedMaterializedWeight(*weight, x.scalar_type());
  if (!w.defined()) w = weight->Materialize(x.scalar_type());
  // The handle, not the dense matrix, is what backward keeps; inside a checkpointed block's
  // recomputation the graph is freed right after the block's backward, so the dense matrix is
  // kept there (one block's weights at a time) and not materialised again.
  ctx->saved_data[kDtypeKey] = static_cast<int64_t>(x.scalar_type());
  if (InCheckpointRecompute()) {
    ctx->saved_data[kDenseKey] = w;
  } else {
    ctx->saved_data[kHandleKey] =
        c10::IValue::make_capsule(c10::make_intrusive<WeightHolder>(std::move(weight)));
  }
  return at::linear(x, w, bias);
}

at::Tensor FrozenLinearInputGradient(torch::autograd::AutogradContext* ctx,
                                     const at::Tensor& grad_y) {
  const auto dtype = static_cast<c10::ScalarType>(ctx->saved_data[kDtypeKey].toInt());
  at::Tensor w;
  if (ctx->saved_data.count(kHandleKey) > 0) {
    const c10::intrusive_ptr<torch::CustomClassHolder> capsule =
        ctx->saved_data[kHandleKey].toCapsule();
    w = static_cast<const WeightHolder*>(capsule.get())->weight->Materialize(dtype);
  } else {
    w = ctx->saved_data[kDenseKey].toTensor();
  }
  return at::matmul(grad_y.to(dtype), w);
}

at::Tensor FrozenLinear(const at::Tensor& x, std::shared_ptr<const FrozenWeight> weight,
                        const at::Tensor& bias) {
  if (!weight) Fail(ErrorCode::kInvalidArgument, "FrozenLinear: null FrozenWeight");
  if (bias.defined() && bias.requires_grad()) {
    Fail(ErrorCode::kInvalidArgument,
         "FrozenLinear: the bias requires grad, but a frozen base has a frozen bias; use "
         "at::linear on a dense base for full fine-tuning");
  }
  return FrozenLinearFunction::apply(x, bias, std::move(weight));
}

}  // namespace hpsearch::core
