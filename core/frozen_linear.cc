#include "core/frozen_linear.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include <utility>

#include "core/error.h"
#include "core/grad_checkpoint.h"
#include "core/materialized_weights.h"

namespace hpsearch::core {
namespace {

class FrozenLinearFunction : public torch::autograd::Function<FrozenLinearFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const at::Tensor& bias, std::shared_ptr<const FrozenWeight> weight) {
    // A block's bases come from its MaterializedWeightsScope when it holds them (one dequantisation
    // launch for all of them).
    at::Tensor w = ScopedMaterializedWeight(*weight, x.scalar_type());
    if (!w.defined()) w = weight->Materialize(x.scalar_type());
    // The handle, not the dense matrix, is what backward keeps; inside a checkpointed block's
    // recomputation the graph is freed right after the block's backward, so the dense matrix is
    // kept there (one block's weights at a time) and not materialised again.
    ctx->saved_data["dtype"] = static_cast<int64_t>(x.scalar_type());
    if (InCheckpointRecompute()) {
      ctx->save_for_backward({w});
    } else {
      ctx->saved_data["weight"] =
          c10::IValue::make_capsule(c10::make_intrusive<WeightHolder>(std::move(weight)));
    }
    return at::linear(x, w, bias);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto dtype = static_cast<c10::ScalarType>(ctx->saved_data["dtype"].toInt());
    const at::Tensor& grad_y = grad_outputs[0];
    at::Tensor grad_x;
    if (ctx->needs_input_grad(0)) {
      at::Tensor w;
      if (ctx->saved_data.count("weight") > 0) {
        const c10::intrusive_ptr<torch::CustomClassHolder> capsule =
            ctx->saved_data["weight"].toCapsule();
        w = static_cast<const WeightHolder*>(capsule.get())->weight->Materialize(dtype);
      } else {
        w = ctx->get_saved_variables()[0];
      }
      grad_x = at::matmul(grad_y.to(dtype), w);
    }
    return {grad_x, at::Tensor(), at::Tensor()};
  }

  // Carries the shared_ptr through AutogradContext::saved_data, which holds IValues.
  struct WeightHolder : torch::CustomClassHolder {
    explicit WeightHolder(std::shared_ptr<const FrozenWeight> w) : weight(std::move(w)) {}
    std::shared_ptr<const FrozenWeight> weight;
  };
};

}  // namespace

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
