// Gpt2Tokenizer is GPT-2's byte-level BPE tokenizer (the one of GPT-2, DialoGPT and r50k): UTF-8
// text in, token ids out, and back. Encoding is exact GPT-2: the pre-tokenizer of
// core/gpt2_pretokenizer.h, bytes mapped to their single-byte tokens, then merges.txt's merges by
// rank (core/bpe.h). Nothing else is added: no special tokens, and "<|endoftext|>" inside text is
// encoded as ordinary text (append eos_token_id() yourself), so data can never inject a control
// token.
//
// The vocabulary comes from a directory holding either vocab.json + merges.txt (Hugging Face's
// names) or encoder.json + vocab.bpe (OpenAI's names for the same content); data/gpt2/ holds
// GPT-2's.
//
// Ownership: the tokenizer owns its tables (about 5 MB for GPT-2) and a cache of encoded words.
// Thread-safety: every const method, Encode included, may be called from many threads at once. The
// word cache is shared by those threads behind a mutex held only for one lookup or insert. Moving
// or destroying a tokenizer needs exclusive access.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/bpe.h"

namespace hpsearch::core {

class WordCache;

struct Gpt2TokenizerOptions {
  // How many distinct words keep their token ids, so repeated words skip the merges (a warm word
  // costs a third or less of a cold one). 0 disables the cache. When full, the cache is emptied and
  // refills: a bound on memory (about 64 bytes a word, 8 MB at the default), not an LRU.
  std::size_t word_cache_capacity = 1 << 17;
};

class Gpt2Tokenizer {
 public:
  // Loads vocab.json + merges.txt from `dir`, or encoder.json + vocab.bpe when vocab.json is
  // absent. Throws core::Error: kNotFound when the directory or a file is missing, kIo when a file
  // cannot be read, kDataLoss when a file is malformed (the message names the file and the line,
  // token or id).
  static Gpt2Tokenizer FromDirectory(const std::string& dir,
                                     const Gpt2TokenizerOptions& options = {});
  // The same from explicit paths: vocabulary JSON (token -> id) and merges text ("a b" per line by
  // rank).
  static Gpt2Tokenizer FromFiles(const std::string& vocab_path, const std::string& merges_path,
                                 const Gpt2TokenizerOptions& options = {});

  Gpt2Tokenizer(Gpt2Tokenizer&&) noexcept;
  Gpt2Tokenizer& operator=(Gpt2Tokenizer&&) noexcept;
  ~Gpt2Tokenizer();

  // The token ids of `text`. Any bytes are accepted: bytes that are not valid UTF-8 are encoded
  // byte by byte (see core/gpt2_pretokenizer.h), so Decode(Encode(text)) == text for every byte
  // string.
  std::vector<std::int32_t> Encode(std::string_view text) const;
  // Appends the token ids of `text` to `*ids`.
  void EncodeAppend(std::string_view text, std::vector<std::int32_t>* ids) const;

  // The bytes the ids stand for, concatenated. A cut through a multi-byte character (e.g. one id of
  // an emoji) gives bytes that are not valid UTF-8; they are returned as they are. Throws
  // core::Error(kInvalidArgument) naming the first id outside [0, vocab_size()).
  std::string Decode(const std::vector<std::int32_t>& ids) const;

  // The bytes of one token. REQUIRES: 0 <= id < vocab_size().
  const std::string& TokenBytes(std::int32_t id) const { return token_bytes_[id]; }

  // GPT-2's merges as a table over token ids.
  const BpeMergeTable& merge_table() const { return merges_; }

  // The id of "<|endoftext|>" (50256 for GPT-2): end of text (GPT-2
  // classifiers also pad with it).
  std::int32_t eos_token_id() const { return eos_token_id_; }
  std::int32_t vocab_size() const { return static_cast<std::int32_t>(token_bytes_.size()); }
  // Throws core::Error(kInvalidArgument) naming `model_source` when this tokenizer has ids the
  // model has no embedding for (vocab_size() > model_vocab_size): every text would otherwise fail
  // deep in the embedding lookup with "index out of range".
  void RequireFitsModel(std::int64_t model_vocab_size, const std::string& model_source) const;

  // Empties the word cache, e.g. to measure cold encoding.
  void ClearCache() const;

 private:
  Gpt2Tokenizer(std::vector<std::string> token_bytes,
                const std::array<std::int32_t, 256>& byte_token_ids, BpeMergeTable merges,
                std::int32_t eos_token_id, const Gpt2TokenizerOptions& options);

  // Appends the ids of one pre-tokenizer word.
  void EncodeWord(std::string_view word, std::vector<std::int32_t>* symbols, BpeScratch* scratch,
                  std::vector<std::int32_t>* ids) const;

  std::vector<std::string> token_bytes_;          // id -> the bytes it stands for
  std::array<std::int32_t, 256> byte_token_ids_;  // byte -> id of its one-byte token
  BpeMergeTable merges_;
  std::int32_t eos_token_id_;
  std::unique_ptr<WordCache> cache_;  // null when the cache is disabled
};

}  // namespace hpsearch::core
