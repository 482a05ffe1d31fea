#include "core/residual_layer_norm.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/cuda.h>
#include <torch/nn/modules/normalization.h>
#include <torch/utils.h>

#include "core/catch_torch.h"

#include <string>
#include <vector>

#include "core/error.h"
#include "core/gpt2_block.h"
#include "core/gpt2_model.h"
#include "core/grad_checkpoint.h"
#include "core/kernel_count.h"
#include "core/torch_compat.h"
#include "gpt2_test_util.h"
#include "testing/testing.h"

namespace hpsearch::core {
namespace {

constexpr int64_t kWidth = 8;

// A frozen LayerNorm over kWidth values with non-trivial weight and bias.
torch::nn::LayerNorm FrozenLayerNorm() {
  torch::nn::LayerNorm norm(torch::nn::LayerNormOptions({kWidth}).eps(1e-5));
  torch::NoGradGuard no_grad;
  norm->weight.copy_(at::linspace(0.5, 1.5, kWidth));
  norm->bias.copy_(at::linspace(-0.2, 0.3, kWidth));
  for (auto& parameter : norm->parameters()) parameter.set_requires_grad(false);
  return norm;
}

// The expression the op replaces, as Gpt2Block computed it before: dropout on the branch, the add,
// LayerNorm, the cast to the layers' dtype.
ResidualLayerNormOutput Unfused(const at::Tensor& residual, const at::Tensor& branch, double p,
                                bool training, const torch::nn::LayerNormImpl* norm,
                                c10::ScalarType dtype) {
  ResidualLayerNormOutput out;
  out.sum = branch.defined() ? residual + at::dropout(branch, p, training) : residual;
  if (norm != nullptr) {
    out.norm =
        at::layer_norm(out.sum, {kWidth}, norm->weight, norm->bias, norm->options.eps()).to(dtype);
  }
  return out;
}

struct Run {
  at::Tensor sum, norm, grad_residual, grad_branch;
};

using Op = ResidualLayerNormOutput (*)(const at::Tensor&, const at::Tensor&, double, bool,
                                       const torch::nn::LayerNormImpl*, c10::ScalarType);

// Which outputs the loss reads, so which receive a gradient (the other arrives undefined).
enum class Grads { kBoth, kSumOnly, kNormOnly };

// Forward and backward of `op` from fixed inputs, seed and incoming gradients.
Run RunOp(Op op, bool with_branch, const torch::nn::LayerNormImpl* norm, double p,
          c10::ScalarType dtype, Grads grads = Grads::kBoth) {
  at::manual_seed(7);
  const at::Tensor residual = at::randn({2, 5, kWidth}).set_requires_grad(true);
  const at::Tensor branch =
      with_branch ? at::randn({2, 5, kWidth}).to(dtype).set_requires_grad(true) : at::Tensor();
  const at::Tensor grad_sum = at::randn({2, 5, kWidth});
  const at::Tensor grad_norm = at::randn({2, 5, kWidth}).to(dtype);
  at::manual_seed(11);
  const ResidualLayerNormOutput out = op(residual, branch, p, /*training=*/true, norm, dtype);
  const bool read_norm = out.norm.defined() && grads != Grads::kSumOnly;
  const bool read_sum = !read_norm || grads != Grads::kNormOnly;
  at::Tensor loss = at::zeros({});
  if (read_sum) loss = loss + (out.sum * grad_sum).sum();
  if (read_norm) loss = loss + (out.norm * grad_norm).to(at::kFloat).sum();
  loss.backward();
  return {out.sum.detach(), out.norm.defined() ? out.norm.detach() : at::Tensor(), residual.grad(),
          with_branch ? branch.grad() : at::Tensor()};
}

void RequireSame(const at::Tensor& a, const at::Tensor& b) {
  REQUIRE(a.defined() == b.defined());
  if (!a.defined()) return;
  REQUIRE(a.scalar_type() == b.scalar_type());
  REQUIRE(at::equal(a, b));
}

TEST_CASE("ResidualLayerNorm equals the unfused ops, values and gradients",
          "[core][residual_layer_norm]") {
  const torch::nn::LayerNorm layer_norm = FrozenLayerNorm();
  // The CPU runs the same ATen calls in the same order, so even bfloat16 matches bit for bit (the
  // CUDA kernel is compared with its reference in tests/kernels).
  const c10::ScalarType dtype = GENERATE(at::kFloat, at::kBFloat16);
  const bool with_branch = GENERATE(false, true);
  const bool with_norm = GENERATE(false, true);
  const double p = GENERATE(0.0, 0.1);
  // A gradient into both outputs (a block's h), or into one only: the other arrives undefined.
  const Grads grads = GENERATE(Grads::kBoth, Grads::kSumOnly, Grads::kNormOnly);
  INFO("dtype " << c10::toString(dtype) << " branch " << with_branch << " norm " << with_norm
                << " p " << p << " grads " << static_cast<int>(grads));
  const torch::nn::LayerNormImpl* norm = with_norm ? layer_norm.get() : nullptr;
  const Run fused = RunOp(&ResidualLayerNorm, with_branch, norm, p, dtype, grads);
  const Run plain = RunOp(&Unfused, with_branch, norm, p, dtype, grads);
  RequireSame(fused.sum, plain.sum);
  RequireSame(fused.norm, plain.norm);
  RequireSame(fused.grad_residual, plain.grad_residual);
  RequireSame(fused.grad_branch, plain.grad_branch);
}

TEST_CASE("ResidualLayerNorm: dropout draws as at::dropout and is off in eval",
          "[core][residual_layer_norm]") {
  const at::Tensor residual = at::zeros({4, kWidth});
  const at::Tensor branch = at::ones({4, kWidth}).to(at::kBFloat16);
  at::manual_seed(3);
  const at::Tensor fused =
      ResidualLayerNorm(residual, branch, 0.5, true, nullptr, at::kBFloat16).sum;
  at::manual_seed(3);
  const at::Tensor plain = residual + at::dropout(branch, 0.5, true);
  REQUIRE(at::equal(fused, plain));
  REQUIRE(fused.eq(0).any().item<bool>());  // some values dropped, the others scaled by 2
  REQUIRE(fused.eq(2).any().item<bool>());
  const at::Tensor eval =
      ResidualLayerNorm(residual, branch, 0.5, false, nullptr, at::kBFloat16).sum;
  REQUIRE(at::equal(eval, at::ones({4, kWidth})));
}

TEST_CASE("ResidualLayerNorm under gradient checkpointing replays its dropout masks",
          "[core][residual_layer_norm]") {
  const torch::nn::LayerNorm ln_1 = FrozenLayerNorm();
  const torch::nn::LayerNorm ln_2 = FrozenLayerNorm();
  // A block's shape of work: ln_1; a branch from its norm; h and ln_2; a branch; the output.
  const auto block = [&](Op op, const at::Tensor& weight) {
    return [&, op, weight](const at::Tensor& x, const at::Tensor& /*bias*/) {
      const ResidualLayerNormOutput a = op(x, {}, 0.0, true, ln_1.get(), at::kBFloat16);
      const ResidualLayerNormOutput h = op(a.sum, at::matmul(a.norm, weight.to(at::kBFloat16)), 0.1,
                                           true, ln_2.get(), at::kBFloat16);
      return op(h.sum, at::gelu(at::matmul(h.norm, weight.to(at::kBFloat16))), 0.1, true, nullptr,
                at::kBFloat16)
          .sum;
    };
  };
  struct Grads {
    at::Tensor out, x, weight;
  };
  const auto run = [&](Op op, bool checkpointed) {
    at::manual_seed(5);
    const at::Tensor x = at::randn({3, 4, kWidth}).set_requires_grad(true);
    const at::Tensor weight = (at::randn({kWidth, kWidth}) * 0.3).set_requires_grad(true);
    const at::Tensor grad = at::randn({3, 4, kWidth});
    at::manual_seed(9);
    const at::Tensor out = checkpointed
                               ? CheckpointedCall(block(op, weight), x, at::zeros({1}), {weight})
                               : block(op, weight)(x, at::Tensor());
    out.backward(grad);
    return Grads{out.detach(), x.grad(), weight.grad()};
  };
  const Grads plain = run(&Unfused, false);
  for (const bool checkpointed : {false, true}) {
    INFO("checkpointed " << checkpointed);
    const Grads fused = run(&ResidualLayerNorm, checkpointed);
    RequireSame(fused.out, plain.out);
    RequireSame(fused.x, plain.x);
    RequireSame(fused.weight, plain.weight);
  }
}

TEST_CASE("Gpt2Block keeps Hugging Face's order: dropout on each branch, then the residual add",
          "[core][residual_layer_norm]") {
  const c10::ScalarType dtype = GENERATE(at::kFloat, at::kBFloat16);
  INFO(c10::toString(dtype));
  FineTuningOptions fine_tuning;
  fine_tuning.method = FineTuningMethod::kLora;
  fine_tuning.lora_dropout = 0.1;
  const Gpt2Config config = testing::TinyConfig();  // dropout 0.1 everywhere
  Gpt2Block block(config, fine_tuning, "transformer.h.0", at::detail::createCPUGenerator(3));
  for (LoraLinear* layer :
       {&block->attn->c_attn, &block->attn->c_proj, &block->mlp->c_fc, &block->mlp->c_proj}) {
    (*layer)->set_compute_dtype(dtype);
    torch::NoGradGuard no_grad;
    if ((*layer)->lora_B.defined()) (*layer)->lora_B.normal_(0.0, 0.1);  // adapters that act
  }
  block->train();
  const at::Tensor bias =
      Gpt2AttentionBias(at::ones({2, 5}, at::kLong), 2, 5, at::kFloat, at::kCPU);
  const auto run = [&](bool fused) {
    at::manual_seed(21);
    const at::Tensor x = at::randn({2, 5, config.n_embd}).set_requires_grad(true);
    at::manual_seed(22);
    at::Tensor out;
    if (fused) {
      out = block->forward(x, bias);
    } else {
      const at::Tensor h =
          x + at::dropout(block->attn(block->ln_1(x).to(dtype), bias), config.resid_pdrop, true);
      out = h + at::dropout(block->mlp(block->ln_2(h).to(dtype)), config.resid_pdrop, true);
    }
    out.backward(at::ones_like(out));
    return std::make_pair(out.detach(), x.grad());
  };
  const auto fused = run(true);
  const auto plain = run(false);
  RequireSame(fused.first, plain.first);
  RequireSame(fused.second, plain.second);
}

// The CUDA kernel path against the CPU's ATen path (skipped without a device). The kernel rounds
// differently (kernels/residual_layer_norm.cuh: the dropout scale in float32, one bf16 rounding of
// each output), so values agree within bf16 precision, and its Philox masks are not the CPU's:
// dropout is checked by what each value is (dropped or scaled) and by the gradient following it.
TEST_CASE("ResidualLayerNorm on CUDA agrees with the CPU path",
          "[core][residual_layer_norm][cuda]") {
  if (!torch::cuda::is_available()) hpsearch::testing::Skip("no CUDA device");
  const torch::nn::LayerNorm norm_cpu = FrozenLayerNorm();
  torch::nn::LayerNorm norm_cuda = FrozenLayerNorm();
  norm_cuda->to(at::kCUDA);
  at::manual_seed(4);
  const at::Tensor residual = at::randn({6, 7, kWidth});
  const at::Tensor branch = at::randn({6, 7, kWidth}).to(at::kBFloat16);
  const at::Tensor grad_sum = at::randn({6, 7, kWidth});
  const at::Tensor grad_norm = at::randn({6, 7, kWidth}).to(at::kBFloat16);
  const auto run = [&](const c10::Device& device, const torch::nn::LayerNormImpl* norm, double p) {
    const at::Tensor r = residual.to(device, /*non_blocking=*/false, /*copy=*/true);
    const at::Tensor b = branch.to(device, /*non_blocking=*/false, /*copy=*/true);
    r.set_requires_grad(true);
    b.set_requires_grad(true);
    const ResidualLayerNormOutput out = ResidualLayerNorm(r, b, p, true, norm, at::kBFloat16);
    torch::autograd::backward({out.sum, out.norm}, {grad_sum.to(device), grad_norm.to(device)});
    return Run{out.sum.detach().cpu(), out.norm.detach().cpu(), r.grad().cpu(), b.grad().cpu()};
  };
  const auto close = [](const at::Tensor& a, const at::Tensor& b, double tol) {
    INFO("max difference " << (a.to(at::kFloat) - b.to(at::kFloat)).abs().max().item<double>());
    REQUIRE(at::allclose(a.to(at::kFloat), b.to(at::kFloat), tol, tol));
  };
  SECTION("no dropout") {
    const Run cuda = run(at::kCUDA, norm_cuda.get(), 0.0);
    const Run cpu = run(at::kCPU, norm_cpu.get(), 0.0);
    close(cuda.sum, cpu.sum, 1e-6);
    close(cuda.norm, cpu.norm, 2e-2);
    close(cuda.grad_residual, cpu.grad_residual, 2e-2);
    close(cuda.grad_branch, cpu.grad_branch, 2e-2);
  }
  SECTION("dropout: each value dropped or scaled, its gradient likewise, and the mask replays") {
    const double p = 0.25;
    const c10::Device cuda(at::kCUDA, 0);
    const at::Tensor state = compat::GetRngState(cuda);  // as a checkpointed block's recomputation
    const Run first = run(at::kCUDA, norm_cuda.get(), p);
    compat::SetRngState(cuda, state);
    const Run again = run(at::kCUDA, norm_cuda.get(), p);
    RequireSame(first.sum, again.sum);
    RequireSame(first.grad_branch, again.grad_branch);
    const at::Tensor kept = (first.sum - residual).abs() > 1e-6 | branch.to(at::kFloat).eq(0);
    const double kept_share = kept.to(at::kFloat).mean().item<double>();
    REQUIRE(kept_share > 0.6);
    REQUIRE(kept_share < 0.9);
    const at::Tensor scale = kept.to(at::kFloat) / (1 - p);
    close(first.sum, residual + branch.to(at::kFloat) * scale, 1e-5);
    close(first.grad_branch, first.grad_residual * scale, 2e-2);
  }
}

TEST_CASE("ResidualLayerNorm leaves trainable LayerNorms to the unfused ops",
          "[core][residual_layer_norm]") {
  torch::nn::LayerNorm trainable(torch::nn::LayerNormOptions({kWidth}));
  const at::Tensor residual = at::randn({2, kWidth}).set_requires_grad(true);
  const at::Tensor branch = at::randn({2, kWidth}).to(at::kBFloat16).set_requires_grad(true);
  const KernelCount count = CountKernelLaunches([&] {
    const ResidualLayerNormOutput out =
        ResidualLayerNorm(residual, branch, 0.1, true, trainable.get(), at::kBFloat16);
    out.norm.to(at::kFloat).sum().backward();
  });
  REQUIRE(count.launches_by_name.count(kResidualLayerNormOp) == 0);
  REQUIRE(trainable->weight.grad().defined());
  REQUIRE(trainable->bias.grad().defined());
  REQUIRE(branch.grad().defined());
}

TEST_CASE("ResidualLayerNorm refuses bad arguments", "[core][residual_layer_norm]") {
  const torch::nn::LayerNorm norm = FrozenLayerNorm();
  const at::Tensor residual = at::zeros({2, kWidth});
  REQUIRE_THROWS_AS(ResidualLayerNorm(at::Tensor(), {}, 0.0, true, norm.get(), at::kFloat), Error);
  REQUIRE_THROWS_AS(ResidualLayerNorm(residual, at::zeros({2, 3}), 0.0, true, nullptr, at::kFloat),
                    Error);
  REQUIRE_THROWS_AS(ResidualLayerNorm(residual, residual, 1.0, true, nullptr, at::kFloat), Error);
  REQUIRE_THROWS_AS(ResidualLayerNorm(at::zeros({2, 3}), {}, 0.0, true, norm.get(), at::kFloat),
                    Error);
}

}  // namespace
}  // namespace hpsearch::core
