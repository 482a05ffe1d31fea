// CSV reading after RFC 4180, for labelled-text data files. The first record is the header and
// names the columns. Records end with CRLF, LF or a lone CR; a field may be quoted ("..."), in
// which case it may contain commas, line breaks (kept byte-for-byte) and doubled quotes (read as
// one quote). Bytes are passed through unchanged (UTF-8 stays UTF-8); a UTF-8 byte-order mark at
// the start of the input is skipped. Fields are not trimmed. Lines that are completely empty
// outside quotes are skipped (as Python's csv module and pandas do), so a trailing newline adds no
// record. A quote inside an unquoted field is kept literally.
//
// Errors (formats::Error, kDataLoss) name the source and the 1-based line on which the offending
// record starts: an unterminated quoted field, text after a closing quote, a record whose field
// count differs from the header's, and an input with no header.
//
// Thread-safety: free functions on their arguments only; safe to call concurrently.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace hpsearch::formats {

struct CsvRecord {
  int64_t line = 0;                 // 1-based line of the input on which this record starts
  std::vector<std::string> fields;  // one per header column
};

struct CsvTable {
  std::string source;                // file name (or caller's label) used in error messages
  std::vector<std::string> columns;  // header fields, in file order
  int64_t header_line = 1;           // 1-based line on which the header record starts
  std::vector<CsvRecord> records;    // data records, header excluded, in file order

  // The index of the column named `name`. Throws kNotFound naming the source and the columns that
  // exist, or kInvalidArgument when the header holds the name twice.
  size_t ColumnIndex(const std::string& name) const;
};

// Parses CSV text. `source` only labels error messages.
CsvTable ParseCsv(std::string_view text, const std::string& source);

// Reads and parses a CSV file. Throws kNotFound when it does not exist and kIo when it cannot be
// read.
CsvTable ReadCsvFile(const std::filesystem::path& path);

// Reads a whole file into memory (shared by the CSV and JSON readers). Errors as ReadCsvFile.
std::string ReadWholeFile(const std::filesystem::path& path);

// Returns `text` without a leading UTF-8 byte-order mark.
std::string_view StripUtf8Bom(std::string_view text);

// "a, b, c": column or key names for error messages.
std::string JoinNames(const std::vector<std::string>& names);

}  // namespace hpsearch::formats
