// Unicode code point classes for GPT-2's pre-tokenizer: letters (\p{L}), numbers (\p{N}) and
// white space (\s, the White_Space property), as compact sorted range tables. The table is
// generated into core/unicode_tables.cc by scripts/gen_unicode_tables.py from Python's
// unicodedata (Unicode 14.0 with Debian 12's Python 3.11); this header is written by hand.
// Characters assigned after that version (e.g. Unicode 15's Kaktovik numerals) are kOther here,
// the only way this split can differ from a regex engine built on newer tables.
//
// Thread-safety: immutable constant data, safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hpsearch::core {

// kOther is every code point in none of the three classes: punctuation, symbols, marks, controls,
// unassigned code points, and (by the pre-tokenizer's convention) bytes that are not valid UTF-8.
enum class CharClass : std::uint8_t { kOther, kLetter, kNumber, kSpace };

// A closed range [first, last] of code points of one class.
struct UnicodeClassRange {
  char32_t first;
  char32_t last;
  CharClass char_class;
};

// Sorted by `first`, disjoint, covering only letters, numbers and white space; gaps are kOther.
extern const UnicodeClassRange kUnicodeClassRanges[];
extern const std::size_t kUnicodeClassRangeCount;

// The Unicode version the table was generated from, e.g. "14.0.0".
extern const char kUnicodeTablesVersion[];

// The class of `code_point`. Any value, including > 0x10FFFF, is accepted (anything unknown is
// kOther).
CharClass ClassifyCodePoint(char32_t code_point);

}  // namespace hpsearch::core
