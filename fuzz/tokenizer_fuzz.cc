// Fuzz target: GPT-2's tokenizer (core/tokenizer.h) with GPT-2's own vocabulary (data/gpt2, or the
// folder in $HPSEARCH_FUZZ_GPT2_DIR). Property: any bytes encode to ids inside the vocabulary, and
// Decode(Encode(x)) == x. The word cache is on, as in training, so repeated words take the cached
// path too.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/tokenizer.h"
#include "fuzz/fuzz_util.h"

#ifndef HPSEARCH_FUZZ_GPT2_DIR
#error "HPSEARCH_FUZZ_GPT2_DIR must name data/gpt2 (fuzz/CMakeLists.txt sets it)"
#endif

namespace {

const hpsearch::core::Gpt2Tokenizer& Tokenizer() {
  static const hpsearch::core::Gpt2Tokenizer tokenizer = [] {
    const char* dir = std::getenv("HPSEARCH_FUZZ_GPT2_DIR");
    return hpsearch::core::Gpt2Tokenizer::FromDirectory(
        dir != nullptr && *dir != '\0' ? dir : HPSEARCH_FUZZ_GPT2_DIR);
  }();
  return tokenizer;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& tokenizer = Tokenizer();
  const std::string text(hpsearch::fuzz::AsText(data, size));
  const std::vector<std::int32_t> ids = tokenizer.Encode(text);
  for (std::int32_t id : ids) {
    if (id < 0 || id >= tokenizer.vocab_size()) std::abort();
  }
  if (tokenizer.Decode(ids) != text) {
    std::fprintf(stderr, "Decode(Encode(x)) != x for %zu bytes\n", size);
    std::abort();
  }
  return 0;
}
