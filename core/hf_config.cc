#include "core/hf_config.h"

#include "core/error.h"

namespace hpsearch::core {

void ApplyHfGpt2Config(const formats::HfGpt2Config& hf, const std::string& source,
                       Gpt2Config* config) {
  if (hf.n_inner != 0 && hf.n_inner != 4 * hf.n_embd) {
    Fail(ErrorCode::kUnsupported, source + ": n_inner " + std::to_string(hf.n_inner) +
                                      " is not supported (only 4 x n_embd)");
  }
  if (hf.activation_function != "gelu_new") {
    Fail(ErrorCode::kUnsupported, source + ": activation_function '" + hf.activation_function +
                                      "' is not supported (only gelu_new)");
  }
  config->n_layer = hf.n_layer;
  config->n_embd = hf.n_embd;
  config->n_head = hf.n_head;
  config->n_positions = hf.n_positions;
  config->vocab_size = hf.vocab_size;
  config->layer_norm_epsilon = hf.layer_norm_epsilon;
  config->activation = hf.activation_function;
  config->initializer_range = hf.initializer_range;
  config->resid_pdrop = hf.resid_pdrop;
  config->embd_pdrop = hf.embd_pdrop;
  config->attn_pdrop = hf.attn_pdrop;
}

}  // namespace hpsearch::core
