// Gpt2PreTokenizer splits UTF-8 text into the "words" GPT-2 applies byte-pair merges to. It is a
// hand-written scanner equivalent to GPT-2's regex
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// with \p{L}, \p{N} and \s taken from core/unicode_tables.h. The words are contiguous, non-empty
// and cover the text exactly, so concatenating them gives the input back byte for byte.
//
// Bytes that are not valid UTF-8 (a stray continuation byte, a truncated or overlong sequence, a
// surrogate, a code point above U+10FFFF) never fail: each such byte counts as one character of
// class kOther, i.e. it groups with punctuation, and byte-level BPE then encodes it like any other
// byte.
//
// Ownership: views into the text given to the constructor, which must outlive the splitter.
// Thread-safety: one object per thread; distinct objects are independent.
#pragma once

#include <cstddef>
#include <string_view>

#include "core/unicode_tables.h"

namespace hpsearch::core {

class Gpt2PreTokenizer {
 public:
  explicit Gpt2PreTokenizer(std::string_view text) : text_(text) {}

  // Stores the next word in `*word` and returns true, or returns false when the text is used up.
  bool Next(std::string_view* word);

 private:
  // One character: its class and its length in bytes (1 for a byte that is not valid UTF-8).
  struct Char {
    CharClass char_class;
    std::size_t size;
  };
  Char CharAt(std::size_t pos) const;
  // The end of the run of characters of class `char_class` that starts at `pos`.
  std::size_t RunEnd(std::size_t pos, CharClass char_class) const;
  // The length of a contraction ('s 't 're 've 'm 'll 'd) at `pos`, or 0.
  std::size_t ContractionSize(std::size_t pos) const;

  std::string_view text_;
  std::size_t pos_ = 0;
};

// Decodes the UTF-8 character at the start of `bytes` (non-empty). Returns its length (1..4) and
// stores the code point in `*code_point`; for an invalid sequence returns 1 and stores
// kInvalidCodePoint.
inline constexpr char32_t kInvalidCodePoint = 0xFFFFFFFF;
std::size_t DecodeUtf8(std::string_view bytes, char32_t* code_point);

}  // namespace hpsearch::core
