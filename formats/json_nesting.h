// Bounded nesting, and bounded quotes in messages, for JSON that hpsearch reads from files it does
// not trust: a checkpoint's config.json, tokenizer files, safetensors headers, adapters, data
// files, run configs.
//
// nlohmann::json parses any depth with a heap stack, but copying, comparing and printing a value
// recurse once per level: a value nested 200,000 deep overflows the stack the first time an error
// message prints it. No file hpsearch reads needs more than a few levels, so every reader checks
// the text first and refuses it, naming the file and the byte where the limit is passed.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "formats/error.h"

namespace hpsearch::formats {

// Deeper than any file hpsearch reads (config.json: 3 levels; a safetensors header: 3).
inline constexpr int kMaxJsonNesting = 64;

// The byte offset in `text` where arrays and objects (counted outside strings) nest deeper than
// `max_depth`, or std::string_view::npos when they never do. Malformed text is the parser's
// business: this only counts.
size_t FindExcessiveJsonNesting(std::string_view text, int max_depth = kMaxJsonNesting);

// Fail(code, ...) naming `source` when `text` nests deeper than kMaxJsonNesting.
void CheckJsonNesting(std::string_view text, const std::string& source, ErrorCode code);

// `value` for an error message: scalars as JSON, cut to about `max_chars`; arrays and objects of
// more than a few entries as "an array of N elements" / "an object of N keys".
std::string JsonExcerpt(const nlohmann::json& value, size_t max_chars = 80);

// The parser's message for `e`, cut to about `max_chars`: nlohmann quotes the offending token
// whole ("number overflow parsing '555...'"), however long it is.
std::string JsonErrorExcerpt(const nlohmann::json::exception& e, size_t max_chars = 200);

}  // namespace hpsearch::formats
