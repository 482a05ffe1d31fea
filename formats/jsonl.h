// Reading JSON records for labelled-text data files, in either of the two layouts Hugging Face's
// "json" loader accepts: JSON Lines (one object per line; blank lines skipped) or one JSON array of
// objects. The layout is chosen by the first non-blank character after an optional UTF-8 byte-order
// mark: '[' means an array, anything else JSON Lines. Each record must be an object.
//
// Errors (formats::Error, kDataLoss) name the source and the 1-based line of the offending record:
// invalid JSON, or a record that is not an object. An input without records is not an error here;
// the dataset layer decides what an empty file means.
//
// Thread-safety: free functions on their arguments only; safe to call concurrently.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace hpsearch::formats {

struct JsonRecord {
  int64_t line = 0;       // 1-based line on which the record (object) starts
  nlohmann::json object;  // always an object
};

// Parses JSON Lines or a JSON array of objects. `source` only labels error messages.
std::vector<JsonRecord> ParseJsonRecords(std::string_view text, const std::string& source);

// Reads and parses a file. Throws kNotFound when it does not exist and kIo when it cannot be read.
std::vector<JsonRecord> ReadJsonRecordsFile(const std::filesystem::path& path);

}  // namespace hpsearch::formats
