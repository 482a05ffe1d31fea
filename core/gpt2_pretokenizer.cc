#include "core/gpt2_pretokenizer.h"

namespace hpsearch::core {

std::size_t DecodeUtf8(std::string_view bytes, char32_t* code_point) {
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t available = bytes.size();
  const unsigned char lead = b[0];
  if (lead < 0x80) {
    *code_point = lead;
    return 1;
  }
  std::size_t size;
  char32_t value;
  char32_t min_value;  // below it the sequence is overlong
  if (lead >= 0xC2 && lead <= 0xDF) {
    size = 2, value = lead & 0x1F, min_value = 0x80;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    size = 3, value = lead & 0x0F, min_value = 0x800;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    size = 4, value = lead & 0x07, min_value = 0x10000;
  } else {
    *code_point = kInvalidCodePoint;
    return 1;
  }
  if (available < size) {
    *code_point = kInvalidCodePoint;
    return 1;
  }
  for (std::size_t i = 1; i < size; ++i) {
    if ((b[i] & 0xC0) != 0x80) {
      *code_point = kInvalidCodePoint;
      return 1;
    }
    value = (value << 6) | (b[i] & 0x3F);
  }
  if (value < min_value || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) {
    *code_point = kInvalidCodePoint;
    return 1;
  }
  *code_point = value;
  return size;
}

Gpt2PreTokenizer::Char Gpt2PreTokenizer::CharAt(std::size_t pos) const {
  const auto lead = static_cast<unsigned char>(text_[pos]);
  if (lead < 0x80) return {ClassifyCodePoint(lead), 1};
  char32_t code_point;
  const std::size_t size = DecodeUtf8(text_.substr(pos), &code_point);
  if (code_point == kInvalidCodePoint) return {CharClass::kOther, 1};
  return {ClassifyCodePoint(code_point), size};
}

std::size_t Gpt2PreTokenizer::RunEnd(std::size_t pos, CharClass char_class) const {
  while (pos < text_.size()) {
    const Char c = CharAt(pos);
    if (c.char_class != char_class) break;
    pos += c.size;
  }
  return pos;
}

std::size_t Gpt2PreTokenizer::ContractionSize(std::size_t pos) const {
  if (text_[pos] != '\'' || pos + 1 >= text_.size()) return 0;
  const char first = text_[pos + 1];
  if (first == 's' || first == 't' || first == 'm' || first == 'd') return 2;
  if (pos + 2 >= text_.size()) return 0;
  const char second = text_[pos + 2];
  if ((first == 'r' && second == 'e') || (first == 'v' && second == 'e') ||
      (first == 'l' && second == 'l')) {
    return 3;
  }
  return 0;
}

bool Gpt2PreTokenizer::Next(std::string_view* word) {
  const std::size_t start = pos_;
  if (start >= text_.size()) return false;

  // The regex's alternatives in order; the first that matches at `start` wins.
  std::size_t end = start + ContractionSize(start);
  if (end == start) {
    const Char first = CharAt(start);
    if (first.char_class != CharClass::kSpace) {
      // ?\p{L}+ | ?\p{N}+ | ?[^\s\p{L}\p{N}]+ without the optional space.
      end = RunEnd(start + first.size, first.char_class);
    } else if (text_[start] == ' ' && start + 1 < text_.size() &&
               CharAt(start + 1).char_class != CharClass::kSpace) {
      // The same three with the optional space.
      const Char second = CharAt(start + 1);
      end = RunEnd(start + 1 + second.size, second.char_class);
    } else {
      // \s+(?!\S) backs off one character so that a space stays to lead the next word; \s+ takes a
      // lone white-space character before a non-space, and a run that reaches the end of the text
      // whole.
      std::size_t last_char = start;
      end = start;
      while (end < text_.size()) {
        const Char c = CharAt(end);
        if (c.char_class != CharClass::kSpace) break;
        last_char = end;
        end += c.size;
      }
      if (end < text_.size() && last_char > start) end = last_char;
    }
  }
  *word = text_.substr(start, end - start);
  pos_ = end;
  return true;
}

}  // namespace hpsearch::core
