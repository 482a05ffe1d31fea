#include "core/gpt2_pretokenizer.h"

#include <string>
#include <vector>

#include "core/catch_torch.h"

#include "core/unicode_tables.h"

namespace hpsearch::core {
namespace {

std::vector<std::string> Split(const std::string& text) {
  std::vector<std::string> words;
  Gpt2PreTokenizer splitter(text);
  std::string_view word;
  while (splitter.Next(&word)) words.emplace_back(word);
  return words;
}

using Words = std::vector<std::string>;

TEST_CASE("ClassifyCodePoint follows \\p{L}, \\p{N} and White_Space", "[core][pretokenizer]") {
  CHECK(ClassifyCodePoint(U'a') == CharClass::kLetter);
  CHECK(ClassifyCodePoint(U'Z') == CharClass::kLetter);
  CHECK(ClassifyCodePoint(U'7') == CharClass::kNumber);
  CHECK(ClassifyCodePoint(U' ') == CharClass::kSpace);
  CHECK(ClassifyCodePoint(U'\t') == CharClass::kSpace);
  CHECK(ClassifyCodePoint(U'\r') == CharClass::kSpace);
  CHECK(ClassifyCodePoint(U'!') == CharClass::kOther);
  CHECK(ClassifyCodePoint(U'\'') == CharClass::kOther);
  CHECK(ClassifyCodePoint(U'_') == CharClass::kOther);
  CHECK(ClassifyCodePoint(0x1C) == CharClass::kOther);  // a separator control, but not White_Space
  CHECK(ClassifyCodePoint(0x85) == CharClass::kSpace);  // NEXT LINE
  CHECK(ClassifyCodePoint(0xA0) == CharClass::kSpace);  // NO-BREAK SPACE
  CHECK(ClassifyCodePoint(0x2029) == CharClass::kSpace);   // PARAGRAPH SEPARATOR (Zp)
  CHECK(ClassifyCodePoint(0x3000) == CharClass::kSpace);   // IDEOGRAPHIC SPACE
  CHECK(ClassifyCodePoint(0x200B) == CharClass::kOther);   // ZERO WIDTH SPACE is a format character
  CHECK(ClassifyCodePoint(0xBD) == CharClass::kNumber);    // ½ (No)
  CHECK(ClassifyCodePoint(0x2163) == CharClass::kNumber);  // Ⅳ (Nl)
  CHECK(ClassifyCodePoint(0x0661) == CharClass::kNumber);  // Arabic-Indic one (Nd)
  CHECK(ClassifyCodePoint(0x4E00) == CharClass::kLetter);  // CJK (Lo)
  CHECK(ClassifyCodePoint(0x02B0) == CharClass::kLetter);  // modifier letter (Lm)
  CHECK(ClassifyCodePoint(0x0301) == CharClass::kOther);   // combining acute (Mn)
  CHECK(ClassifyCodePoint(0x1F600) == CharClass::kOther);  // emoji (So)
  CHECK(ClassifyCodePoint(0x20000) == CharClass::kLetter);  // CJK extension B
  CHECK(ClassifyCodePoint(0x10FFFF) == CharClass::kOther);
  CHECK(ClassifyCodePoint(0x110000) == CharClass::kOther);
  CHECK(ClassifyCodePoint(kInvalidCodePoint) == CharClass::kOther);
}

TEST_CASE("The generated Unicode table is sorted, disjoint and merged", "[core][pretokenizer]") {
  REQUIRE(kUnicodeClassRangeCount > 100);
  for (std::size_t i = 0; i < kUnicodeClassRangeCount; ++i) {
    const UnicodeClassRange& range = kUnicodeClassRanges[i];
    REQUIRE(range.first <= range.last);
    REQUIRE(range.last <= 0x10FFFF);
    REQUIRE(range.char_class != CharClass::kOther);
    if (i > 0) {
      const UnicodeClassRange& before = kUnicodeClassRanges[i - 1];
      REQUIRE(before.last < range.first);
      // Adjacent ranges of one class would have been merged by the generator.
      REQUIRE((before.last + 1 != range.first || before.char_class != range.char_class));
    }
  }
}

TEST_CASE("DecodeUtf8 decodes valid characters and flags invalid bytes", "[core][pretokenizer]") {
  char32_t c;
  CHECK(DecodeUtf8("A", &c) == 1);
  CHECK(c == U'A');
  CHECK(DecodeUtf8("\xc3\xa9", &c) == 2);
  CHECK(c == 0xE9);
  CHECK(DecodeUtf8("\xe2\x82\xac", &c) == 3);
  CHECK(c == 0x20AC);
  CHECK(DecodeUtf8("\xf0\x9f\x98\x80", &c) == 4);
  CHECK(c == 0x1F600);
  for (const std::string bad :
       {"\x80", "\xc0\xaf", "\xe2\x82", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff", "\xc3("}) {
    INFO("bytes: " << bad);
    CHECK(DecodeUtf8(bad, &c) == 1);
    CHECK(c == kInvalidCodePoint);
  }
}

TEST_CASE("Gpt2PreTokenizer splits like GPT-2's regex", "[core][pretokenizer]") {
  CHECK(Split("") == Words{});
  CHECK(Split("Hello world") == Words{"Hello", " world"});
  CHECK(Split(" Hello, world!") == Words{" Hello", ",", " world", "!"});
  // Contractions are lower case only; a quote before anything else is punctuation.
  CHECK(Split("I'm you'll we've they're it's don't he'd") ==
        Words{"I", "'m", " you", "'ll", " we", "'ve", " they", "'re", " it", "'s", " don", "'t",
              " he", "'d"});
  CHECK(Split("'RE 'M") == Words{"'", "RE", " '", "M"});
  CHECK(Split("'sam") == Words{"'s", "am"});
  CHECK(Split("'''s") == Words{"'''", "s"});
  CHECK(Split("'") == Words{"'"});
  CHECK(Split("'l") == Words{"'", "l"});
  // Letters, numbers and the rest form separate runs, each taking one leading space.
  CHECK(Split("abc123def") == Words{"abc", "123", "def"});
  CHECK(Split("3.14 ok") == Words{"3", ".", "14", " ok"});
  CHECK(Split(" 42 !!") == Words{" 42", " !!"});
  CHECK(Split("ied 4 \xc2\xbd months") == Words{"ied", " 4", " \xc2\xbd", " months"});
  // White space: a run before a word leaves its last character to lead the word; a run at the end
  // stays whole.
  CHECK(Split("a  b") == Words{"a", " ", " b"});
  CHECK(Split("a   b") == Words{"a", "  ", " b"});
  CHECK(Split("a  ") == Words{"a", "  "});
  CHECK(Split("a\n\nb") == Words{"a", "\n", "\n", "b"});
  CHECK(Split("x\t !") == Words{"x", "\t", " !"});
  CHECK(Split("\t\n") == Words{"\t\n"});
  CHECK(Split(" ") == Words{" "});
  CHECK(Split("a\xe3\x80\x80\xe3\x80\x80"
              "b") == Words{"a", "\xe3\x80\x80", "\xe3\x80\x80", "b"});
  CHECK(Split("a\xc2\xa0 b") == Words{"a", "\xc2\xa0", " b"});
  // Non-ASCII letters and symbols.
  CHECK(Split("caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87") ==
        Words{"caf\xc3\xa9", " \xe4\xb8\xad\xe6\x96\x87"});
  CHECK(Split(" \xf0\x9f\x98\x80\xf0\x9f\x98\x80!") == Words{" \xf0\x9f\x98\x80\xf0\x9f\x98\x80!"});
}

TEST_CASE("Gpt2PreTokenizer treats invalid UTF-8 bytes as punctuation", "[core][pretokenizer]") {
  CHECK(Split("a\xff"
              "b") == Words{"a", "\xff", "b"});
  CHECK(Split(" \xff\xfe!") == Words{" \xff\xfe!"});
  CHECK(Split("\xe2\x82"
              "ab") == Words{"\xe2\x82", "ab"});
  CHECK(Split("x\xc3") == Words{"x", "\xc3"});
}

}  // namespace
}  // namespace hpsearch::core
