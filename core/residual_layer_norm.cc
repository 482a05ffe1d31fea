#include "core/residual_layer_norm.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/kernel_count.h"
#include "core/shape_string.h"

#if defined(HPSEARCH_TORCH_CUDA)
#include <ATen/cuda/CUDAGeneratorImpl.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <mutex>

#include "kernels/residual_layer_norm.cuh"
#endif

namespace hpsearch::core {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

#if defined(HPSEARCH_TORCH_CUDA)
constexpr bool kHaveKernel = true;
#else
constexpr bool kHaveKernel = false;
#endif

// The dtypes kernels/residual_layer_norm.cuh takes.
bool KernelDtypes(const at::Tensor& residual, const at::Tensor& branch, const at::Tensor& weight,
                  const at::Tensor& bias, c10::ScalarType norm_dtype) {
  return residual.scalar_type() == at::kFloat &&
         (!branch.defined() || branch.scalar_type() == at::kBFloat16) &&
         (!weight.defined() || (weight.scalar_type() == at::kFloat && bias.defined() &&
                                bias.scalar_type() == at::kFloat && norm_dtype == at::kBFloat16));
}

// Whether every tensor the kernel reads lives on residual's device: the kernel takes raw pointers,
// so a host or another GPU's pointer would be an illegal access that poisons the CUDA context; on a
// mismatch the ATen path runs and raises its own clear error.
bool OnResidualDevice(const at::Tensor& residual, const at::Tensor& branch,
                      const at::Tensor& weight, const at::Tensor& bias) {
  const c10::Device device = residual.device();
  return (!branch.defined() || branch.device() == device) &&
         (!weight.defined() || weight.device() == device) &&
         (!bias.defined() || bias.device() == device);
}

// Dropout as at::dropout computes it on `branch`'s device (CUDA: native_dropout, mask and scale in
// one kernel; elsewhere a bernoulli noise tensor scaled by 1 / (1 - p)), keeping what its
// derivative needs: so forward values, generator draws and gradients equal at::dropout's.
// REQUIRES: 0 < p < 1.
std::pair<at::Tensor, at::Tensor> DropoutWithMask(const at::Tensor& branch, double p) {
  if (branch.is_cuda() && branch.numel() > 0) {
    auto [value, mask] = at::native_dropout(branch, p, /*train=*/true);
    return {value, mask};
  }
  at::Tensor noise = at::empty_like(branch).bernoulli_(1 - p);
  noise.div_(1 - p);
  return {branch * noise, noise};
}

at::Tensor DropoutBackward(const at::Tensor& grad, const at::Tensor& mask, double p) {
  if (mask.scalar_type() == at::kBool) {
    return at::native_dropout_backward(grad, mask, 1.0 / (1 - p));
  }
  return grad * mask;
}

#if defined(HPSEARCH_TORCH_CUDA)
// Seed and counter offset for one kernel's dropout draws from `device`'s default generator. The
// kernel keys each value's Philox counter by (offset, index / 4) (kernels/philox.h), so any fresh
// offset gives an independent mask; 4 is the smallest increment the generator hands out. A
// checkpointed block's recomputation restores the generator's state and so gets the same offset.
// Not for CUDA graph capture: philox_engine_inputs refuses to run while capturing, and the seed
// and offset go to the kernel by value, so a replay would repeat the mask; a captured step would
// take philox_cuda_state and read them on the device (nothing captures today).
std::pair<uint64_t, uint64_t> NextPhiloxInputs(const c10::Device& device) {
  at::Generator generator = at::cuda::detail::getDefaultCUDAGenerator(device.index());
  const std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get<at::CUDAGeneratorImpl>()->philox_engine_inputs(4);
}

void CheckLaunch(cudaError_t status, const char* what, const c10::Device& device) {
  if (status != cudaSuccess) {
    Fail(ErrorCode::kInternal, std::string("ResidualLayerNorm: ") + what + " launch failed on " +
                                   device.str() + ": " + cudaGetErrorString(status));
  }
}

const uint16_t* Bf16Bits(const at::Tensor& t) {
  return t.defined() ? reinterpret_cast<const uint16_t*>(t.data_ptr<at::BFloat16>()) : nullptr;
}
#endif

// What ResidualLayerNormFunction takes besides the tensors autograd sees.
struct Settings {
  at::Tensor weight;  // frozen LayerNorm parameters, or undefined: no LayerNorm
  at::Tensor bias;
  double eps = 0.0;
  double dropout_p = 0.0;  // 0: no dropout (eval)
  c10::ScalarType norm_dtype = at::kFloat;
  bool needs_grad = false;  // keep what backward needs
};

// Inputs seen by autograd: {residual} or {residual, branch} (LibTorch 1.13's Function refuses
// undefined tensor inputs), then the settings. Outputs: {sum} or {sum, norm}. Saved: the
// LayerNorm's input (sum), mean, rstd and weight when there is a LayerNorm, and the dropout mask
// when dropout drew one.
class ResidualLayerNormFunction : public torch::autograd::Function<ResidualLayerNormFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, at::TensorList inputs,
                               const Settings& settings) {
    ctx->set_materialize_grads(false);
    const at::Tensor& residual = inputs[0];
    const at::Tensor branch = inputs.size() > 1 ? inputs[1] : at::Tensor();
    const at::Tensor& weight = settings.weight;
    const at::Tensor& bias = settings.bias;
    const double dropout_p = settings.dropout_p;
    const bool needs_grad = settings.needs_grad;
    const c10::ScalarType dtype = settings.norm_dtype;
    // (With neither a branch nor a LayerNorm there is nothing to launch: sum is residual.)
    const bool kernel = kHaveKernel && residual.is_cuda() &&
                        (branch.defined() || weight.defined()) &&
                        KernelDtypes(residual, branch, weight, bias, dtype) &&
                        OnResidualDevice(residual, branch, weight, bias);
    ctx->saved_data["kernel"] = kernel;
    ctx->saved_data["p"] = dropout_p;
    ctx->saved_data["has_branch"] = branch.defined();
    ctx->saved_data["has_norm"] = weight.defined();
    if (branch.defined()) {
      ctx->saved_data["branch_dtype"] = static_cast<int64_t>(branch.scalar_type());
    }
#if defined(HPSEARCH_TORCH_CUDA)
    if (kernel) {
      return KernelForward(ctx, residual, branch, weight, bias, dropout_p, settings.eps,
                           needs_grad);
    }
#endif
    at::Tensor sum = residual;
    at::Tensor mask;
    if (branch.defined()) {
      at::Tensor dropped = branch;
      if (dropout_p > 0) std::tie(dropped, mask) = DropoutWithMask(branch, dropout_p);
      sum = residual + dropped;
    }
    if (!weight.defined()) {
      if (needs_grad) {
        ctx->save_for_backward({at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), mask});
      }
      return {sum};
    }
    auto [norm, mean, rstd] =
        at::native_layer_norm(sum, {sum.size(-1)}, weight, bias, settings.eps);
    if (needs_grad) ctx->save_for_backward({sum, mean, rstd, weight, mask});
    return {sum, norm.to(dtype)};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const at::Tensor grad_sum = grads[0];
    const at::Tensor grad_norm = grads.size() > 1 ? grads[1] : at::Tensor();
    const variable_list saved = ctx->get_saved_variables();
    const double p = ctx->saved_data["p"].toDouble();
    const bool has_branch = ctx->saved_data["has_branch"].toBool();
    const at::Tensor& sum = saved[0];
    const at::Tensor& mean = saved[1];
    const at::Tensor& rstd = saved[2];
    const at::Tensor& weight = saved[3];
    const at::Tensor& mask = saved[4];
    // One gradient per forward input: residual, branch if given, settings (none).
    const auto grads_in = [has_branch](const at::Tensor& grad_residual,
                                       const at::Tensor& grad_branch) {
      variable_list out = {grad_residual};
      if (has_branch) out.push_back(grad_branch);
      out.emplace_back();
      return out;
    };
#if defined(HPSEARCH_TORCH_CUDA)
    if (ctx->saved_data["kernel"].toBool()) {
      const auto [grad_residual, grad_branch] =
          KernelBackward(grad_sum, grad_norm, sum, mean, rstd, weight, mask, p, has_branch);
      return grads_in(grad_residual, grad_branch);
    }
#endif
    // As the autograd engine would: the LayerNorm's input gradient (NativeLayerNormBackward0 after
    // ToCopyBackward0's cast) summed with the gradient of sum's other consumers (two operands: the
    // order does not change a bit), then the add's gradient cast to the branch's dtype and
    // dropout's derivative.
    at::Tensor grad_residual = grad_sum;
    if (ctx->saved_data["has_norm"].toBool() && grad_norm.defined()) {
      const at::Tensor through_norm = std::get<0>(
          at::native_layer_norm_backward(grad_norm.to(sum.scalar_type()), sum, {sum.size(-1)}, mean,
                                         rstd, weight, at::Tensor(), {true, false, false}));
      grad_residual = grad_residual.defined() ? grad_residual + through_norm : through_norm;
    }
    at::Tensor grad_branch;
    if (has_branch && grad_residual.defined()) {
      grad_branch =
          grad_residual.to(static_cast<c10::ScalarType>(ctx->saved_data["branch_dtype"].toInt()));
      if (mask.defined()) grad_branch = DropoutBackward(grad_branch, mask, p);
    }
    return grads_in(grad_residual, grad_branch);
  }

 private:
#if defined(HPSEARCH_TORCH_CUDA)
  static variable_list KernelForward(AutogradContext* ctx, const at::Tensor& residual,
                                     const at::Tensor& branch, const at::Tensor& weight,
                                     const at::Tensor& bias, double dropout_p, double eps,
                                     bool needs_grad) {
    const c10::Device device = residual.device();
    const c10::cuda::CUDAGuard guard(device);
    const at::Tensor residual_c = residual.contiguous();
    const at::Tensor branch_c = branch.defined() ? branch.contiguous() : at::Tensor();
    const int64_t width = residual.size(-1);
    kernels::ResidualLayerNormForwardArgs args;
    args.rows = width == 0 ? 0 : residual.numel() / width;
    args.width = width;
    args.residual = residual_c.data_ptr<float>();
    at::Tensor sum = residual;  // without a branch; the LayerNorm then reads residual_c
    at::Tensor keep;
    if (branch.defined()) {
      sum = at::empty_like(residual_c);
      args.branch = Bf16Bits(branch_c);
      args.sum_out = sum.data_ptr<float>();
      if (dropout_p > 0) {
        args.dropout_p = static_cast<float>(dropout_p);
        std::tie(args.seed, args.offset) = NextPhiloxInputs(device);
        if (needs_grad) {
          keep = at::empty(residual.sizes(), residual.options().dtype(at::kByte));
          args.keep_out = keep.data_ptr<uint8_t>();
        }
      }
    }
    const at::Tensor ln_input = branch.defined() ? sum : residual_c;
    at::Tensor norm, mean, rstd;
    const at::Tensor gamma = weight.defined() ? weight.contiguous() : at::Tensor();
    const at::Tensor beta = bias.defined() ? bias.contiguous() : at::Tensor();
    if (weight.defined()) {
      norm = at::empty(residual.sizes(), residual.options().dtype(at::kBFloat16));
      args.gamma = gamma.data_ptr<float>();
      args.beta = beta.data_ptr<float>();
      args.eps = static_cast<float>(eps);
      args.norm_out = reinterpret_cast<uint16_t*>(norm.data_ptr<at::BFloat16>());
      if (needs_grad) {
        mean = at::empty({args.rows}, residual.options());
        rstd = at::empty({args.rows}, residual.options());
        args.mean_out = mean.data_ptr<float>();
        args.rstd_out = rstd.data_ptr<float>();
      }
    }
    CheckLaunch(kernels::ResidualLayerNormForward(
                    args, c10::cuda::getCurrentCUDAStream(device.index()).stream()),
                "forward", device);
    if (needs_grad) {
      ctx->save_for_backward({weight.defined() ? ln_input : at::Tensor(), mean, rstd, gamma, keep});
    }
    if (!weight.defined()) return {sum};
    return {sum, norm};
  }

  // Returns {grad_residual, grad_branch}.
  static std::pair<at::Tensor, at::Tensor> KernelBackward(
      const at::Tensor& grad_sum, const at::Tensor& grad_norm, const at::Tensor& sum,
      const at::Tensor& mean, const at::Tensor& rstd, const at::Tensor& gamma,
      const at::Tensor& keep, double dropout_p, bool has_branch) {
    const at::Tensor& like = grad_sum.defined() ? grad_sum : grad_norm;
    if (!like.defined()) return {};
    const c10::Device device = like.device();
    const c10::cuda::CUDAGuard guard(device);
    const at::Tensor grad_sum_c = grad_sum.defined() ? grad_sum.contiguous() : at::Tensor();
    const at::Tensor grad_norm_c =
        grad_norm.defined() && gamma.defined() ? grad_norm.contiguous() : at::Tensor();
    const int64_t width = like.size(-1);
    kernels::ResidualLayerNormBackwardArgs args;
    args.rows = width == 0 ? 0 : like.numel() / width;
    args.width = width;
    args.grad_sum = grad_sum_c.defined() ? grad_sum_c.data_ptr<float>() : nullptr;
    if (grad_norm_c.defined()) {
      args.grad_norm = Bf16Bits(grad_norm_c);
      args.sum = sum.data_ptr<float>();
      args.mean = mean.data_ptr<float>();
      args.rstd = rstd.data_ptr<float>();
      args.gamma = gamma.data_ptr<float>();
    }
    args.keep = keep.defined() ? keep.data_ptr<uint8_t>() : nullptr;
    args.dropout_p = keep.defined() ? static_cast<float>(dropout_p) : 0.0f;
    at::Tensor grad_residual = at::empty(like.sizes(), like.options().dtype(at::kFloat));
    args.grad_residual = grad_residual.data_ptr<float>();
    at::Tensor grad_branch;
    if (has_branch) {
      grad_branch = at::empty(like.sizes(), like.options().dtype(at::kBFloat16));
      args.grad_branch = reinterpret_cast<uint16_t*>(grad_branch.data_ptr<at::BFloat16>());
    }
    CheckLaunch(kernels::ResidualLayerNormBackward(
                    args, c10::cuda::getCurrentCUDAStream(device.index()).stream()),
                "backward", device);
    return {grad_residual, grad_branch};
  }
#endif
};

// The expression itself, op by op, for LayerNorm parameters that train (the kernel has no
// parameter gradients).
ResidualLayerNormOutput Unfused(const at::Tensor& residual, const at::Tensor& branch,
                                double dropout_p, bool training,
                                const torch::nn::LayerNormImpl* layer_norm,
                                c10::ScalarType norm_dtype) {
  ResidualLayerNormOutput out;
  out.sum = branch.defined() ? residual + at::dropout(branch, dropout_p, training) : residual;
  if (layer_norm != nullptr) {
    out.norm = at::layer_norm(out.sum, layer_norm->options.normalized_shape(), layer_norm->weight,
                              layer_norm->bias, layer_norm->options.eps())
                   .to(norm_dtype);
  }
  return out;
}

}  // namespace

ResidualLayerNormOutput ResidualLayerNorm(const at::Tensor& residual, const at::Tensor& branch,
                                          double dropout_p, bool training,
                                          const torch::nn::LayerNormImpl* layer_norm,
                                          c10::ScalarType norm_dtype) {
  if (!residual.defined() || residual.dim() == 0) {
    Fail(ErrorCode::kInvalidArgument, "ResidualLayerNorm: residual must be a tensor [..., C]");
  }
  if (branch.defined() && branch.sizes() != residual.sizes()) {
    Fail(ErrorCode::kInvalidArgument, "ResidualLayerNorm: branch " + ShapeString(branch.sizes()) +
                                          " and residual " + ShapeString(residual.sizes()) +
                                          " differ in shape");
  }
  if (!(dropout_p >= 0.0 && dropout_p < 1.0)) {
    Fail(ErrorCode::kInvalidArgument, "ResidualLayerNorm: dropout_p is " +
                                          std::to_string(dropout_p) + "; it must lie in [0, 1)");
  }
  Settings settings;
  if (layer_norm != nullptr) {
    const std::vector<int64_t>& shape = layer_norm->options.normalized_shape();
    if (shape.size() != 1 || shape[0] != residual.size(-1)) {
      Fail(ErrorCode::kInvalidArgument, "ResidualLayerNorm: the LayerNorm normalises " +
                                            ShapeString(shape) + ", not the last dimension of " +
                                            ShapeString(residual.sizes()));
    }
    const at::Tensor& weight = layer_norm->weight;
    const at::Tensor& bias = layer_norm->bias;
    if (!weight.defined() || !bias.defined() || weight.requires_grad() || bias.requires_grad()) {
      return Unfused(residual, branch, dropout_p, training, layer_norm, norm_dtype);
    }
    settings.weight = weight;
    settings.bias = bias;
    settings.eps = layer_norm->options.eps();
  }
  settings.dropout_p = training && branch.defined() ? dropout_p : 0.0;
  settings.norm_dtype = norm_dtype;
  settings.needs_grad = at::GradMode::is_enabled() &&
                        (residual.requires_grad() || (branch.defined() && branch.requires_grad()));
  // Counted as one fused op exactly where the CUDA path is the kernel (or would be, on the CPU);
  // with neither a branch nor a LayerNorm it launches nothing.
  std::optional<FusedOpScope> scope;
  if ((branch.defined() || layer_norm != nullptr) &&
      KernelDtypes(residual, branch, settings.weight, settings.bias, norm_dtype) &&
      (kHaveKernel || !residual.is_cuda())) {
    scope.emplace(kResidualLayerNormOp);
  }
  std::vector<at::Tensor> inputs = {residual};
  if (branch.defined()) inputs.push_back(branch);
  const variable_list out = ResidualLayerNormFunction::apply(at::TensorList(inputs), settings);
  return {out[0], out.size() > 1 ? out[1] : at::Tensor()};
}

}  // namespace hpsearch::core
