#include "formats/gpt2_limits.h"

#include <tuple>

#include "formats/error.h"

namespace hpsearch::formats {

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
                                            " (formats/gpt2_limits.h); the config is corrupt");
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
             " billion (formats/gpt2_limits.h); the config is corrupt");
  }
}

}  // namespace hpsearch::formats
