#include "core/gpt2_attention.h"

#include <ATen/ATen.h>

#include <cmath>

#include "core/error.h"
#include "core/kernel_count.h"
#include "core/torch_compat.h"

namespace hpsearch::core {
namespace {

torch::Tensor ScaledDotProductAttention(const torch::Tensor& query, const torch::Tensor& key,
                                        const torch::Tensor& value, const torch::Tensor& mask,
                                        double dropout) {
#if HPSEARCH_TORCH_AT_LEAST(2, 0)
  return at::scaled_dot_product_attention(query, key, value, mask, dropout, /*is_causal=*/false);
#else
  // Gpt2Config validation refuses "sdpa" on these builds; this is never reached.
  Fail(ErrorCode::kUnsupported, "scaled_dot_product_attention needs LibTorch 2.0 or later");
#endif
}

}  // namespace

Gpt2AttentionImpl::Gpt2AttentionImpl(const Gpt2Config& config, const FineTuningOptions& fine_tuning,
                                     const std::string& module_path, at::Generator generator)
    : n_head_(config.n_head),
      attn_pdrop_(config.attn_pdrop),
      sdpa_(config.attn_implementation == "sdpa") {
  const int64_t width = config.n_embd;
  // Hugging Face re-initialises every "c_proj.weight" with std initializer_range / sqrt(2 n_layer)
  // so the residual stream's variance does not grow with depth.
  const double proj_std =
      config.initializer_range / std::sqrt(2.0 * static_cast<double>(config.n_layer));
  c_attn = register_module(
      "c_attn", LoraLinear(LinearLayerOptions(fine_tuning, module_path + ".c_attn", width,
                                              3 * width, config.initializer_range),
                           generator));
  c_proj = register_module(
      "c_proj",
      LoraLinear(LinearLayerOptions(fine_tuning, module_path + ".c_proj", width, width, proj_std),
                 generator));
}

torch::Tensor Gpt2AttentionImpl::forward(const torch::Tensor& hidden,
                                         const torch::Tensor& attn_bias) {
  const int64_t batch = hidden.size(0);
  const int64_t seq = hidden.size(1);
  const int64_t width = hidden.size(2);
  const int64_t head_dim = width / n_head_;
  std::vector<torch::Tensor> qkv = c_attn(hidden).split(width, /*dim=*/-1);
  torch::Tensor context;
  {
    // From the heads of q, k, v to the context: what scaled_dot_product_attention fuses on CUDA,
    // one op forward and one backward for kernel counting (core/kernel_count.h), whichever
    // implementation runs. The head views are inside: CUDA's fused kernels read q, k, v and write
    // their gradients in [B, T, H, D] order, so the gradients' reshape back to [B, T, C] copies
    // nothing there (eager attention's [B, H, T, D] gradients are copied).
    const FusedOpScope attention_core(kAttentionCoreOp);
    // [B, T, C] → [B, H, T, D]
    auto heads = [&](const torch::Tensor& t) {
      return t.view({batch, seq, n_head_, head_dim}).transpose(1, 2);
    };
    const torch::Tensor query = heads(qkv[0]);
    const torch::Tensor key = heads(qkv[1]);
    const torch::Tensor value = heads(qkv[2]);
    if (sdpa_) {
      context = ScaledDotProductAttention(query, key, value, attn_bias,
                                          is_training() ? attn_pdrop_ : 0.0);
    } else {
      // Divide (not multiply by the reciprocal) as Hugging Face does, so scores match bit for bit.
      torch::Tensor scores =
          at::matmul(query, key.transpose(-1, -2)) / std::sqrt(static_cast<double>(head_dim));
      // Under mixed precision the scores are bf16 and the bias float32: the sum, and so the
      // softmax, is float32 (as autocast runs softmax), and the probabilities go back to v's dtype.
      // In float32 both casts are no-ops.
      torch::Tensor probs = at::softmax(scores + attn_bias, /*dim=*/-1).to(value.scalar_type());
      probs = at::dropout(probs, attn_pdrop_, is_training());
      context = at::matmul(probs, value);
    }
    // [B, H, T, D] → [B, T, H, D]: likewise free on CUDA, whose fused kernels write the output in
    // [B, T, H, D] order; eager attention pays the copy.
    context = context.transpose(1, 2).contiguous();
  }
  context = context.view({batch, seq, width});
  return c_proj(context);
}

}  // namespace hpsearch::core
