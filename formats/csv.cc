#include "formats/csv.h"

#include <fstream>
#include <iterator>
#include <sstream>

#include "formats/error.h"

namespace hpsearch::formats {
namespace {

[[noreturn]] void FailAt(const std::string& source, int64_t line, const std::string& what) {
  Fail(ErrorCode::kDataLoss, source + ":" + std::to_string(line) + ": " + what);
}

// Walks the input once, one record per NextRecord call. Keeps the current line so each record knows
// where it started and errors can point at it.
class CsvScanner {
 public:
  CsvScanner(std::string_view text, const std::string& source) : text_(text), source_(source) {}

  // Reads the next non-blank record into `record`; false at the end of the input.
  bool NextRecord(CsvRecord& record) {
    record.fields.clear();
    while (pos_ < text_.size() && IsLineBreakAt(pos_)) SkipLineBreak();  // blank lines
    if (pos_ >= text_.size()) return false;
    record.line = line_;
    while (true) {
      record.fields.push_back(ReadField(record.line));
      if (pos_ >= text_.size()) return true;
      if (text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      SkipLineBreak();  // ReadField stops only at a comma, a line break or the end
      return true;
    }
  }

 private:
  bool IsLineBreakAt(size_t i) const { return text_[i] == '\n' || text_[i] == '\r'; }

  void SkipLineBreak() {
    if (text_[pos_] == '\r' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '\n') ++pos_;
    ++pos_;
    ++line_;
  }

  std::string ReadField(int64_t record_line) {
    std::string field;
    if (pos_ < text_.size() && text_[pos_] == '"') {
      ++pos_;
      while (true) {
        if (pos_ >= text_.size()) {
          FailAt(source_, record_line,
                 "quoted field is never closed (end of input reached); a field that starts with "
                 "'\"' must "
                 "end with '\"', and quotes inside it must be doubled (\"\")");
        }
        const char c = text_[pos_];
        if (c == '"') {
          if (pos_ + 1 < text_.size() && text_[pos_ + 1] == '"') {
            field.push_back('"');
            pos_ += 2;
            continue;
          }
          ++pos_;
          break;
        }
        // Line breaks inside quotes belong to the field; they still advance the line count.
        if (c == '\n' || (c == '\r' && !(pos_ + 1 < text_.size() && text_[pos_ + 1] == '\n')))
          ++line_;
        field.push_back(c);
        ++pos_;
      }
      if (pos_ < text_.size() && text_[pos_] != ',' && !IsLineBreakAt(pos_) &&
          line_ > record_line) {
        // A field that ran over line breaks into text that is not a field's end: far likelier a
        // quote never closed on its own line than a quote misplaced where the reader stopped.
        FailAt(
            source_, record_line,
            "the quoted field that opens on this line is never closed on it: the reader took the "
            "next lines, up to line " +
                std::to_string(line_) +
                ", as part of it (close the quote with '\"', or double "
                "quotes inside a field as \"\")");
      }
      if (pos_ < text_.size() && text_[pos_] != ',' && !IsLineBreakAt(pos_)) {
        FailAt(source_, record_line,
               std::string("unexpected character '") + text_[pos_] +
                   "' after a closing quote; double quotes inside a quoted field (\"\") or quote "
                   "the whole "
                   "field");
      }
      return field;
    }
    const size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] != ',' && !IsLineBreakAt(pos_)) ++pos_;
    field.assign(text_.substr(start, pos_ - start));
    return field;
  }

  std::string_view text_;
  const std::string& source_;
  size_t pos_ = 0;
  int64_t line_ = 1;
};

}  // namespace

std::string_view StripUtf8Bom(std::string_view text) {
  constexpr std::string_view kBom = "\xEF\xBB\xBF";
  if (text.substr(0, kBom.size()) == kBom) text.remove_prefix(kBom.size());
  return text;
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string joined;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) joined += ", ";
    joined += "\"" + names[i] + "\"";
  }
  return joined;
}

size_t CsvTable::ColumnIndex(const std::string& name) const {
  size_t found = columns.size();
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i] != name) continue;
    if (found != columns.size()) {
      Fail(ErrorCode::kInvalidArgument, source + ": the header names column \"" + name +
                                            "\" more than once; rename one of them");
    }
    found = i;
  }
  if (found == columns.size()) {
    Fail(ErrorCode::kNotFound, source + ": no column \"" + name + "\"; the header has " +
                                   JoinNames(columns) +
                                   " (set the column name in the data options)");
  }
  return found;
}

CsvTable ParseCsv(std::string_view text, const std::string& source) {
  CsvTable table;
  table.source = source;
  CsvScanner scanner(StripUtf8Bom(text), source);
  CsvRecord header;
  if (!scanner.NextRecord(header)) {
    Fail(ErrorCode::kDataLoss,
         source + ": empty CSV (no header row); expected a header such as text,label");
  }
  table.columns = std::move(header.fields);
  table.header_line = header.line;
  CsvRecord record;
  while (scanner.NextRecord(record)) {
    if (record.fields.size() != table.columns.size()) {
      FailAt(source, record.line,
             "record has " + std::to_string(record.fields.size()) + " fields but the header has " +
                 std::to_string(table.columns.size()) + " (" + JoinNames(table.columns) +
                 "); quote fields that contain commas or line breaks");
    }
    table.records.push_back(std::move(record));
    record = CsvRecord();
  }
  return table;
}

std::string ReadWholeFile(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    Fail(ErrorCode::kNotFound, path.string() + ": no such file; check the data path");
  }
  if (std::filesystem::is_directory(path, ec)) {
    Fail(ErrorCode::kInvalidArgument, path.string() + ": is a directory, expected a data file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail(ErrorCode::kIo, path.string() + ": cannot open for reading; check permissions");
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) Fail(ErrorCode::kIo, path.string() + ": read failed");
  return contents.str();
}

CsvTable ReadCsvFile(const std::filesystem::path& path) {
  return ParseCsv(ReadWholeFile(path), path.string());
}

}  // namespace hpsearch::formats
