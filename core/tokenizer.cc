#include "core/tokenizer.h"

#include <string>
#include <utility>

#include "core/error.h"
#include "core/gpt2_pretokenizer.h"
#include "core/word_cache.h"

namespace hpsearch::core {

Gpt2Tokenizer::Gpt2Tokenizer(std::vector<std::string> token_bytes,
                             const std::array<std::int32_t, 256>& byte_token_ids,
                             BpeMergeTable merges, std::int32_t eos_token_id,
                             const Gpt2TokenizerOptions& options)
    : token_bytes_(std::move(token_bytes)),
      byte_token_ids_(byte_token_ids),
      merges_(std::move(merges)),
      eos_token_id_(eos_token_id),
      cache_(options.word_cache_capacity > 0
                 ? std::make_unique<WordCache>(options.word_cache_capacity)
                 : nullptr) {}

Gpt2Tokenizer::Gpt2Tokenizer(Gpt2Tokenizer&&) noexcept = default;
Gpt2Tokenizer& Gpt2Tokenizer::operator=(Gpt2Tokenizer&&) noexcept = default;
Gpt2Tokenizer::~Gpt2Tokenizer() = default;

std::vector<std::int32_t> Gpt2Tokenizer::Encode(std::string_view text) const {
  std::vector<std::int32_t> ids;
  EncodeAppend(text, &ids);
  return ids;
}

void Gpt2Tokenizer::EncodeAppend(std::string_view text, std::vector<std::int32_t>* ids) const {
  // Buffers shared by the words of this call, so a word allocates only while they grow.
  std::vector<std::int32_t> symbols;
  BpeScratch scratch;
  Gpt2PreTokenizer words(text);
  std::string_view word;
  while (words.Next(&word)) EncodeWord(word, &symbols, &scratch, ids);
}

void Gpt2Tokenizer::EncodeWord(std::string_view word, std::vector<std::int32_t>* symbols,
                               BpeScratch* scratch, std::vector<std::int32_t>* ids) const {
  if (word.size() == 1) {  // a lone byte is its own token: no merge, no cache
    ids->push_back(byte_token_ids_[static_cast<unsigned char>(word[0])]);
    return;
  }
  if (cache_ != nullptr && cache_->Lookup(word, ids)) return;
  symbols->clear();
  for (const char byte : word)
    symbols->push_back(byte_token_ids_[static_cast<unsigned char>(byte)]);
  ApplyBpeMerges(merges_, symbols, scratch);
  ids->insert(ids->end(), symbols->begin(), symbols->end());
  if (cache_ != nullptr) cache_->Insert(word, symbols->data(), symbols->size());
}

std::string Gpt2Tokenizer::Decode(const std::vector<std::int32_t>& ids) const {
  std::string text;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const std::int32_t id = ids[i];
    if (id < 0 || id >= vocab_size()) {
      Fail(ErrorCode::kInvalidArgument,
           "Gpt2Tokenizer::Decode: id " + std::to_string(id) + " at position " + std::to_string(i) +
               " is outside the vocabulary [0, " + std::to_string(vocab_size()) + ")");
    }
    text += token_bytes_[id];
  }
  return text;
}

void Gpt2Tokenizer::RequireFitsModel(std::int64_t model_vocab_size,
                                     const std::string& model_source) const {
  if (vocab_size() <= model_vocab_size) return;
  Fail(ErrorCode::kInvalidArgument,
       "the tokenizer has " + std::to_string(vocab_size()) + " tokens but " + model_source +
           " has embeddings for " + std::to_string(model_vocab_size) +
           " (vocab_size): use the tokenizer saved with that model, or a model whose vocab_size "
           "covers the tokenizer");
}

void Gpt2Tokenizer::ClearCache() const {
  if (cache_ != nullptr) cache_->Clear();
}

}  // namespace hpsearch::core
