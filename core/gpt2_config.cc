#include "core/gpt2_config.h"

#include <tuple>

#include "core/error.h"
#include "core/torch_compat.h"

namespace hpsearch::core {
namespace {

void RequirePositive(int64_t value, const char* field) {
  if (value <= 0) {
    Fail(ErrorCode::kInvalidArgument, std::string("Gpt2Config.") + field + " is " +
                                          std::to_string(value) + "; it must be positive");
  }
}

void RequireProbability(double value, const char* field) {
  if (!(value >= 0.0 && value < 1.0)) {
    Fail(ErrorCode::kInvalidArgument, std::string("Gpt2Config.") + field + " is " +
                                          std::to_string(value) +
                                          "; a dropout rate must lie in [0, 1)");
  }
}

}  // namespace

void CheckGpt2ShapeLimits(const std::string& source, int64_t n_layer, int64_t n_embd,
                          int64_t n_head, int64_t n_positions, int64_t vocab_size,
                          int64_t num_labels) {
  for (const auto& [name, value, limit] :
       {std::tuple{"n_layer", n_layer, kMaxGpt2Layers}, std::tuple{"n_embd", n_embd, kMaxGpt2Width},
        std::tuple{"n_head", n_head, kMaxGpt2Heads},
        std::tuple{"n_positions", n_positions, kMaxGpt2Positions},
        std::tuple{"vocab_size", vocab_size, kMaxGpt2Vocabulary},
        std::tuple{"num_labels", num_labels, kMaxGpt2Labels}}) {
    if (value > limit) {
      Fail(ErrorCode::kInvalidArgument, source + ": " + name + " is " + std::to_string(value) +
                                            ", past the limit of " + std::to_string(limit) +
                                            " (core/gpt2_config.h); the config is corrupt");
    }
  }
  // Each block holds about 12 x n_embd^2 weights; embeddings and the head add the rest. In double,
  // since the product of the limits overflows int64.
  const double width = static_cast<double>(n_embd);
  const double parameters = 12.0 * static_cast<double>(n_layer) * width * width +
                            static_cast<double>(vocab_size + n_positions + num_labels) * width;
  if (parameters > static_cast<double>(kMaxGpt2Parameters)) {
    Fail(ErrorCode::kInvalidArgument,
         source + ": a model of " + std::to_string(n_layer) + " layers " + std::to_string(n_embd) +
             " wide would have about " + std::to_string(static_cast<int64_t>(parameters / 1e9)) +
             " billion parameters, past the limit of " +
             std::to_string(kMaxGpt2Parameters / 1000000000) +
             " billion (core/gpt2_config.h); the config is corrupt");
  }
}

void ValidateGpt2Config(const Gpt2Config& config) {
  RequirePositive(config.n_layer, "n_layer");
  RequirePositive(config.n_embd, "n_embd");
  RequirePositive(config.n_head, "n_head");
  RequirePositive(config.n_positions, "n_positions");
  RequirePositive(config.vocab_size, "vocab_size");
  RequirePositive(config.num_labels, "num_labels");
  CheckGpt2ShapeLimits("Gpt2Config", config.n_layer, config.n_embd, config.n_head,
                       config.n_positions, config.vocab_size, config.num_labels);
  if (config.n_embd % config.n_head != 0) {
    Fail(ErrorCode::kInvalidArgument,
         "Gpt2Config.n_embd (" + std::to_string(config.n_embd) + ") is not divisible by n_head (" +
             std::to_string(config.n_head) + "); pick a head count that divides the width");
  }
  if (!(config.layer_norm_epsilon > 0.0)) {
    Fail(ErrorCode::kInvalidArgument, "Gpt2Config.layer_norm_epsilon must be positive");
  }
  if (!(config.initializer_range > 0.0)) {
    Fail(ErrorCode::kInvalidArgument, "Gpt2Config.initializer_range must be positive");
  }
  if (config.activation != "gelu_new") {
    Fail(ErrorCode::kUnsupported, "Gpt2Config.activation is \"" + config.activation +
                                      "\"; only \"gelu_new\" (GPT-2's tanh-approximated GELU) is "
                                      "implemented");
  }
  RequireProbability(config.resid_pdrop, "resid_pdrop");
  RequireProbability(config.embd_pdrop, "embd_pdrop");
  RequireProbability(config.attn_pdrop, "attn_pdrop");
  if (config.attn_implementation != "eager" && config.attn_implementation != "sdpa") {
    Fail(ErrorCode::kInvalidArgument, "Gpt2Config.attn_implementation is \"" +
                                          config.attn_implementation +
                                          "\"; use \"eager\" or \"sdpa\"");
  }
  if (config.attn_implementation == "sdpa" && !compat::kHasScaledDotProductAttention) {
    Fail(ErrorCode::kUnsupported,
         "Gpt2Config.attn_implementation \"sdpa\" needs LibTorch 2.0 or later (this build has "
         "an older one); use \"eager\"");
  }
  if (config.pad_token_id < 0) {
    Fail(ErrorCode::kInvalidArgument, "Gpt2Config.pad_token_id must be a token id (>= 0)");
  }
}

}  // namespace hpsearch::core
