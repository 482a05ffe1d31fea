#include "core/gpt2_sequence_classifier.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/utils.h>

#include "core/error.h"

namespace hpsearch::core {
namespace {

// PEFT refuses target names that match no module; so do we, naming the layers that exist.
void RequireTargetsMatch(const torch::nn::Module& model, const FineTuningOptions& fine_tuning) {
  if (fine_tuning.method == FineTuningMethod::kFull) return;
  for (const std::string& target : fine_tuning.target_modules) {
    if (target == kAllLinearTarget) continue;
    bool matched = false;
    for (const auto& item : model.named_modules("", /*include_self=*/false)) {
      if (item.value()->as<LoraLinearImpl>() != nullptr && TargetMatches(target, item.key())) {
        matched = true;
        break;
      }
    }
    if (!matched) {
      Fail(ErrorCode::kInvalidArgument,
           "FineTuningOptions.target_modules: \"" + target +
               "\" names no linear layer of GPT-2; use c_attn, c_proj, c_fc, attn.c_proj, "
               "mlp.c_proj, "
               "a full path such as transformer.h.0.attn.c_attn, or all-linear");
    }
  }
}

}  // namespace

Gpt2ForSequenceClassificationImpl::Gpt2ForSequenceClassificationImpl(
    const Gpt2ForSequenceClassificationOptions& options)
    : options_(options) {
  at::Generator generator = at::detail::createCPUGenerator(options_.seed);
  transformer =
      register_module("transformer", Gpt2Model(options_.config, options_.fine_tuning, generator));
  transformer->set_gradient_checkpointing(options_.gradient_checkpointing);
  if (options_.compute_dtype != c10::ScalarType::Undefined &&
      options_.compute_dtype != at::kFloat) {
    transformer->set_compute_dtype(options_.compute_dtype);
  }
  // The head always trains (PEFT's modules_to_save for sequence classification).
  score = register_module(
      "score", LoraLinear(LoraLinearOptions(options_.config.n_embd, options_.config.num_labels)
                              .bias(false)
                              .init_std(options_.config.initializer_range),
                          generator));
  RequireTargetsMatch(*this, options_.fine_tuning);
}

torch::Tensor Gpt2ForSequenceClassificationImpl::forward(const torch::Tensor& input_ids,
                                                         const torch::Tensor& attention_mask,
                                                         const torch::Tensor& last_token_index) {
  const torch::Tensor hidden = transformer(input_ids, attention_mask);
  if (last_token_index.dim() != 1 || last_token_index.size(0) != hidden.size(0)) {
    Fail(ErrorCode::kInvalidArgument, "last_token_index must be [batch] = [" +
                                          std::to_string(hidden.size(0)) + "], one index per row");
  }
  const int64_t batch = hidden.size(0);
  const int64_t width = hidden.size(2);
  const torch::Tensor index =
      last_token_index.to(hidden.device(), at::kLong).view({batch, 1, 1}).expand({batch, 1, width});
  // Picking the row before the head equals Hugging Face's score-everything-then-pick, at 1/T of the
  // cost.
  const torch::Tensor pooled = hidden.gather(/*dim=*/1, index).squeeze(1);
  return score(pooled);
}

void Gpt2ForSequenceClassificationImpl::LoadHfWeights(
    const std::map<std::string, torch::Tensor>& weights) {
  std::map<std::string, torch::Tensor> transformer_weights = weights;
  auto it = transformer_weights.find("score.weight");
  torch::Tensor score_weight;
  if (it != transformer_weights.end()) {
    score_weight = it->second;
    transformer_weights.erase(it);
    if (!score_weight.defined() || score_weight.sizes() != score->weight.sizes()) {
      Fail(ErrorCode::kInvalidArgument,
           "score.weight has the wrong shape; expected [num_labels, n_embd] = [" +
               std::to_string(options_.config.num_labels) + ", " +
               std::to_string(options_.config.n_embd) +
               "]; a classifier checkpoint trained for "
               "another label count cannot be loaded into this head");
    }
  }
  transformer->LoadHfWeights(transformer_weights);
  if (score_weight.defined()) {
    torch::NoGradGuard no_grad;
    score->weight.copy_(score_weight);
  }
}

std::map<std::string, torch::Tensor> Gpt2ForSequenceClassificationImpl::HfWeights() const {
  std::map<std::string, torch::Tensor> out = transformer->HfWeights();
  out["score.weight"] = score->weight.detach().to(at::kFloat).contiguous();
  return out;
}

torch::Tensor LastTokenIndexFromAttentionMask(const torch::Tensor& attention_mask) {
  if (attention_mask.dim() != 2) {
    Fail(ErrorCode::kInvalidArgument, "attention_mask must be [batch, sequence]");
  }
  const torch::Tensor lengths = attention_mask.ne(0).sum(/*dim=*/1);
  if (attention_mask.size(0) > 0 && lengths.min().item<int64_t>() < 1) {
    Fail(ErrorCode::kInvalidArgument,
         "attention_mask has a row without tokens; every example needs at least one token");
  }
  return lengths - 1;
}

torch::Tensor LastTokenIndexFromInputIds(const torch::Tensor& input_ids, int64_t pad_token_id) {
  const int64_t seq = input_ids.size(-1);
  // argmax returns the first maximal position; a row without pad gives 0, hence -1 and the modulo.
  const torch::Tensor first_pad = input_ids.eq(pad_token_id).to(at::kInt).argmax(-1);
  return at::remainder(first_pad - 1, seq).to(at::kLong);
}

torch::Tensor SequenceClassificationLoss(const torch::Tensor& logits, const torch::Tensor& labels) {
  return at::cross_entropy_loss(logits, labels.to(logits.device(), at::kLong));
}

}  // namespace hpsearch::core
