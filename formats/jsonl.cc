#include "formats/jsonl.h"

#include <algorithm>

#include "formats/csv.h"
#include "formats/error.h"
#include "formats/json_nesting.h"

namespace hpsearch::formats {
namespace {

bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

[[noreturn]] void FailAt(const std::string& source, int64_t line, const std::string& what) {
  Fail(ErrorCode::kDataLoss, source + ":" + std::to_string(line) + ": " + what);
}

int64_t LineOfOffset(std::string_view text, size_t offset) {
  offset = std::min(offset, text.size());
  return 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(offset), '\n');
}

std::vector<JsonRecord> ParseJsonLines(std::string_view text, const std::string& source) {
  std::vector<JsonRecord> records;
  int64_t line = 0;
  size_t start = 0;
  while (start < text.size()) {
    ++line;
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view content = text.substr(start, end - start);
    start = end + 1;
    if (std::all_of(content.begin(), content.end(), IsJsonSpace)) continue;
    JsonRecord record;
    record.line = line;
    CheckJsonNesting(content, source + ":" + std::to_string(line), ErrorCode::kInvalidArgument);
    try {
      record.object = nlohmann::json::parse(content);
    } catch (const nlohmann::json::exception& e) {
      FailAt(source, line,
             std::string("invalid JSON (") + JsonErrorExcerpt(e) +
                 "); each line must hold one object");
    }
    if (!record.object.is_object()) {
      FailAt(source, line,
             std::string("expected a JSON object, found ") + record.object.type_name() +
                 "; each line must hold one object such as {\"text\": ..., \"label\": ...}");
    }
    records.push_back(std::move(record));
  }
  return records;
}

// The line on which each element of the top-level array starts. nlohmann::json keeps no positions,
// so the text is scanned once for values that begin at nesting depth 1, outside strings.
std::vector<int64_t> ArrayElementLines(std::string_view text) {
  std::vector<int64_t> lines;
  int64_t line = 1;
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  bool expect_value = false;
  for (char c : text) {
    if (c == '\n') ++line;
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (depth == 1 && expect_value && !IsJsonSpace(c) && c != ']') {
      lines.push_back(line);
      expect_value = false;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      ++depth;
      if (depth == 1) expect_value = true;
    } else if (c == ']' || c == '}') {
      --depth;
    } else if (c == ',' && depth == 1) {
      expect_value = true;
    }
  }
  return lines;
}

std::vector<JsonRecord> ParseJsonArray(std::string_view text, const std::string& source) {
  nlohmann::json document;
  CheckJsonNesting(text, source, ErrorCode::kInvalidArgument);
  try {
    document = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    FailAt(source, LineOfOffset(text, e.byte == 0 ? 0 : e.byte - 1),
           std::string("invalid JSON (") + JsonErrorExcerpt(e) + ")");
  } catch (const nlohmann::json::exception& e) {
    // Valid syntax the parser still refuses, e.g. a number beyond double (out_of_range.406).
    Fail(ErrorCode::kInvalidArgument, source + ": invalid JSON (" + JsonErrorExcerpt(e) + ")");
  }
  const std::vector<int64_t> lines = ArrayElementLines(text);
  if (lines.size() != document.size()) {
    Fail(ErrorCode::kInternal, source + ": located " + std::to_string(lines.size()) +
                                   " array elements but the parser found " +
                                   std::to_string(document.size()));
  }
  std::vector<JsonRecord> records;
  records.reserve(document.size());
  for (size_t i = 0; i < document.size(); ++i) {
    if (!document[i].is_object()) {
      FailAt(source, lines[i],
             "array element " + std::to_string(i) + " is " + document[i].type_name() +
                 ", expected an object such as {\"text\": ..., \"label\": ...}");
    }
    records.push_back(JsonRecord{lines[i], std::move(document[i])});
  }
  return records;
}

}  // namespace

std::vector<JsonRecord> ParseJsonRecords(std::string_view text, const std::string& source) {
  text = StripUtf8Bom(text);
  const auto first = std::find_if_not(text.begin(), text.end(), IsJsonSpace);
  if (first != text.end() && *first == '[') return ParseJsonArray(text, source);
  return ParseJsonLines(text, source);
}

std::vector<JsonRecord> ReadJsonRecordsFile(const std::filesystem::path& path) {
  return ParseJsonRecords(ReadWholeFile(path), path.string());
}

}  // namespace hpsearch::formats
