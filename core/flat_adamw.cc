#include "core/flat_adamw.h"

#include <ATen/ATen.h>
#include <torch/serialize/archive.h>
#include <torch/utils.h>

#include <cmath>
#include <set>
#include <string>

#include "core/error.h"

namespace hpsearch::core {
namespace {

const torch::optim::AdamWOptions& OptionsOf(const torch::optim::OptimizerParamGroup& group) {
  return static_cast<const torch::optim::AdamWOptions&>(group.options());
}

}  // namespace

FlatAdamW::FlatAdamW(std::vector<torch::optim::OptimizerParamGroup> groups,
                     const torch::optim::AdamWOptions& defaults)
    : torch::optim::Optimizer(std::move(groups),
                              std::make_unique<torch::optim::AdamWOptions>(defaults)) {
  int64_t total = 0;
  std::set<const void*> seen;
  c10::optional<at::Device> device;
  group_begin_.push_back(0);
  for (const auto& group : param_groups()) {
    if (OptionsOf(group).amsgrad()) {
      Fail(ErrorCode::kInvalidArgument, "FlatAdamW: amsgrad is not supported");
    }
    for (const at::Tensor& p : group.params()) {
      if (!p.defined() || p.scalar_type() != at::kFloat || !p.requires_grad() || !p.is_leaf()) {
        Fail(ErrorCode::kInvalidArgument,
             "FlatAdamW: every parameter must be a float32 leaf that requires grad (master "
             "weights stay float32 under mixed precision)");
      }
      if (!seen.insert(p.unsafeGetTensorImpl()).second) {
        Fail(ErrorCode::kInvalidArgument, "FlatAdamW: a parameter appears twice");
      }
      if (device && *device != p.device()) {
        Fail(ErrorCode::kInvalidArgument, "FlatAdamW: parameters on " + device->str() + " and " +
                                              p.device().str() + "; move the model to one device");
      }
      device = p.device();
      total += p.numel();
    }
    group_begin_.push_back(total);
  }
  if (total == 0) Fail(ErrorCode::kInvalidArgument, "FlatAdamW: no parameters to optimise");
  const at::TensorOptions options = at::TensorOptions().dtype(at::kFloat).device(*device);
  flat_params_ = at::empty({total}, options);
  flat_grads_ = at::zeros({total}, options);
  exp_avg_ = at::zeros({total}, options);
  exp_avg_sq_ = at::zeros({total}, options);
  torch::NoGradGuard no_grad;
  int64_t offset = 0;
  for (auto& group : param_groups()) {
    for (at::Tensor& p : group.params()) {
      const int64_t n = p.numel();
      at::Tensor slot = flat_params_.narrow(0, offset, n);
      slot.copy_(p.detach().reshape({n}));
      p.set_data(slot.view(p.sizes()));
      p.mutable_grad() = flat_grads_.narrow(0, offset, n).view(p.sizes());
      offset += n;
    }
  }
}

void FlatAdamW::ZeroGrad() { flat_grads_.zero_(); }

at::Tensor FlatAdamW::ClipGradNorm(double max_norm) {
  if (!(max_norm > 0)) Fail(ErrorCode::kInvalidArgument, "FlatAdamW: max_norm must be positive");
  torch::NoGradGuard no_grad;
  const at::Tensor norm = flat_grads_.norm(2);
  const at::Tensor coefficient = at::clamp(max_norm / (norm + 1e-6), c10::nullopt, 1.0);
  flat_grads_.mul_(coefficient);
  return norm;
}

at::Tensor FlatAdamW::step(LossClosure closure) {
  at::Tensor loss;
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  torch::NoGradGuard no_grad;
  ++step_;
  for (size_t g = 0; g < param_groups().size(); ++g) {
    const int64_t begin = group_begin_[g];
    const int64_t n = group_begin_[g + 1] - begin;
    if (n == 0) continue;
    const torch::optim::AdamWOptions& o = OptionsOf(param_groups()[g]);
    at::Tensor p = flat_params_.narrow(0, begin, n);
    const at::Tensor grad = flat_grads_.narrow(0, begin, n);
    at::Tensor m = exp_avg_.narrow(0, begin, n);
    at::Tensor v = exp_avg_sq_.narrow(0, begin, n);
    if (o.weight_decay() != 0) p.mul_(1 - o.lr() * o.weight_decay());
    const double beta1 = std::get<0>(o.betas());
    const double beta2 = std::get<1>(o.betas());
    const double bias_correction1 = 1 - std::pow(beta1, static_cast<double>(step_));
    const double bias_correction2 = 1 - std::pow(beta2, static_cast<double>(step_));
    m.mul_(beta1).add_(grad, 1 - beta1);
    v.mul_(beta2).addcmul_(grad, grad, 1 - beta2);
    const at::Tensor denom = (v.sqrt() / std::sqrt(bias_correction2)).add_(o.eps());
    p.addcdiv_(m, denom, -o.lr() / bias_correction1);
  }
  return loss;
}

void FlatAdamW::save(torch::serialize::OutputArchive& archive) const {
  archive.write("flat_adamw/exp_avg", exp_avg_.to(at::kCPU));
  archive.write("flat_adamw/exp_avg_sq", exp_avg_sq_.to(at::kCPU));
  archive.write("flat_adamw/step", at::scalar_tensor(step_, at::kLong));
}

void FlatAdamW::load(torch::serialize::InputArchive& archive) {
  at::Tensor m, v, step;
  try {
    archive.read("flat_adamw/exp_avg", m);
    archive.read("flat_adamw/exp_avg_sq", v);
    archive.read("flat_adamw/step", step);
  } catch (const c10::Error& e) {
    Fail(ErrorCode::kDataLoss, std::string("FlatAdamW: the optimizer state is not FlatAdamW's: ") +
                                   e.what_without_backtrace());
  }
  if (m.numel() != numel() || v.numel() != numel() || step.numel() != 1) {
    Fail(ErrorCode::kDataLoss, "FlatAdamW: saved state holds " + std::to_string(m.numel()) +
                                   " values for " + std::to_string(numel()) +
                                   " trainable parameters; it belongs to another model");
  }
  torch::NoGradGuard no_grad;
  exp_avg_.copy_(m.reshape({numel()}));
  exp_avg_sq_.copy_(v.reshape({numel()}));
  step_ = step.item<int64_t>();
}

}  // namespace hpsearch::core
