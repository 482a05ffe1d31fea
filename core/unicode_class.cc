#include <algorithm>
#include <array>

#include "core/unicode_tables.h"

namespace hpsearch::core {
namespace {

// ASCII is most of the text a tokenizer sees, so it skips the binary search. Built from the
// generated table itself so the two can never disagree.
std::array<CharClass, 128> BuildAsciiClasses() {
  std::array<CharClass, 128> classes{};
  classes.fill(CharClass::kOther);
  for (std::size_t i = 0; i < kUnicodeClassRangeCount; ++i) {
    const UnicodeClassRange& range = kUnicodeClassRanges[i];
    for (char32_t c = range.first; c <= range.last && c < 128; ++c) classes[c] = range.char_class;
  }
  return classes;
}

}  // namespace

CharClass ClassifyCodePoint(char32_t code_point) {
  static const std::array<CharClass, 128> kAsciiClasses = BuildAsciiClasses();
  if (code_point < 128) return kAsciiClasses[code_point];
  const UnicodeClassRange* end = kUnicodeClassRanges + kUnicodeClassRangeCount;
  // The first range whose last code point is >= code_point is the only one that can contain it.
  const UnicodeClassRange* it =
      std::lower_bound(kUnicodeClassRanges, end, code_point,
                       [](const UnicodeClassRange& range, char32_t c) { return range.last < c; });
  if (it == end || it->first > code_point) return CharClass::kOther;
  return it->char_class;
}

}  // namespace hpsearch::core
