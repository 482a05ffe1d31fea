#include "formats/json_nesting.h"

namespace hpsearch::formats {

size_t FindExcessiveJsonNesting(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character, a quote included, does not end the string
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return i;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return std::string_view::npos;
}

void CheckJsonNesting(std::string_view text, const std::string& source, ErrorCode code) {
  const size_t at = FindExcessiveJsonNesting(text);
  if (at == std::string_view::npos) return;
  Fail(code, source + ": JSON nested deeper than " + std::to_string(kMaxJsonNesting) +
                 " levels (at byte " + std::to_string(at) +
                 "); no file hpsearch reads nests that deep: the file is corrupt or not the kind "
                 "of file expected here");
}

std::string JsonExcerpt(const nlohmann::json& value, size_t max_chars) {
  constexpr size_t kMaxEntriesShown = 8;
  if (value.is_array() && value.size() > kMaxEntriesShown) {
    return "an array of " + std::to_string(value.size()) + " elements";
  }
  if (value.is_object() && value.size() > kMaxEntriesShown) {
    return "an object of " + std::to_string(value.size()) + " keys";
  }
  std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() > max_chars) text = text.substr(0, max_chars) + "...";
  return text;
}

std::string JsonErrorExcerpt(const nlohmann::json::exception& e, size_t max_chars) {
  std::string text = e.what();
  if (text.size() > max_chars) text = text.substr(0, max_chars) + "...";
  return text;
}

}  // namespace hpsearch::formats
