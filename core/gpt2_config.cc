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

void ValidateGpt2Config(const Gpt2Config& config) {
  RequirePositive(config.n_layer, "n_layer");
  RequirePositive(config.n_embd, "n_embd");
  RequirePositive(config.n_head, "n_head");
  RequirePositive(config.n_positions, "n_positions");
  RequirePositive(config.vocab_size, "vocab_size");
  RequirePositive(config.num_labels, "num_labels");
  formats::CheckGpt2ShapeLimits("Gpt2Config", config.n_layer, config.n_embd, config.n_head,
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
