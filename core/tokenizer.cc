#include "core/tokenizer.h"

#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "core/error.h"
#include "core/gpt2_pretokenizer.h"

namespace hpsearch::core {

// Words longer than this are not cached: they are rare, and one of them could hold a lot of memory.
constexpr std::size_t kMaxCachedWordBytes = 128;

// Encoded words, keyed by their bytes; the ids of all words live in one array so an entry costs no
// allocation of its own. Every member function locks `mu_`.
class Gpt2Tokenizer::WordCache {
 public:
  explicit WordCache(std::size_t capacity) : capacity_(capacity) {}

  // Appends the cached ids of `word` to `*ids` and returns true, or returns false on a miss.
  bool Lookup(std::string_view word, std::vector<std::int32_t>* ids) {
    const std::string key(word);
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = index_.find(key);
    if (it == index_.end()) return false;
    const std::int32_t* first = ids_.data() + it->second.first;
    ids->insert(ids->end(), first, first + it->second.second);
    return true;
  }

  void Insert(std::string_view word, const std::int32_t* ids, std::size_t count) {
    std::string key(word);
    std::lock_guard<std::mutex> lock(mu_);
    if (index_.size() >= capacity_) ClearLocked();
    const auto offset = static_cast<std::uint32_t>(ids_.size());
    if (!index_.emplace(std::move(key), std::make_pair(offset, static_cast<std::uint32_t>(count)))
             .second) {
      return;  // another thread encoded the same word meanwhile
    }
    ids_.insert(ids_.end(), ids, ids + count);
  }

  void Clear() {
    std::lock_guard<std::mutex> lock(mu_);
    ClearLocked();
  }

 private:
  void ClearLocked() {
    index_.clear();
    ids_.clear();
  }

  const std::size_t capacity_;
  std::mutex mu_;
  // word -> (offset into ids_, count); guarded by mu_.
  std::unordered_map<std::string, std::pair<std::uint32_t, std::uint32_t>> index_;
  std::vector<std::int32_t> ids_;  // guarded by mu_
};

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
  const bool cacheable = cache_ != nullptr && word.size() <= kMaxCachedWordBytes;
  if (cacheable && cache_->Lookup(word, ids)) return;
  symbols->clear();
  for (const char byte : word)
    symbols->push_back(byte_token_ids_[static_cast<unsigned char>(byte)]);
  ApplyBpeMerges(merges_, symbols, scratch);
  ids->insert(ids->end(), symbols->begin(), symbols->end());
  if (cacheable) cache_->Insert(word, symbols->data(), symbols->size());
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

void Gpt2Tokenizer::ClearCache() const {
  if (cache_ != nullptr) cache_->Clear();
}

}  // namespace hpsearch::core
