// Loading GPT-2's vocabulary and merges files into a Gpt2Tokenizer.
#include <array>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/gpt2_pretokenizer.h"
#include "core/tokenizer.h"
#include "formats/json_nesting.h"

namespace hpsearch::core {
namespace {

constexpr char kEndOfText[] = "<|endoftext|>";

// GPT-2's files spell each byte as one printable character so that tokens are readable text: the
// printable bytes 33..126, 161..172 and 174..255 stand for themselves, the 68 others for U+0100 + n
// in byte order.
std::array<char32_t, 256> ByteToCodePoint() {
  std::array<char32_t, 256> map{};
  char32_t next_unprintable = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable =
        (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    map[b] = printable ? static_cast<char32_t>(b) : next_unprintable++;
  }
  return map;
}

void AppendUtf8(char32_t code_point, std::string* out) {
  if (code_point < 0x80) {
    out->push_back(static_cast<char>(code_point));
  } else if (code_point < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (code_point >> 6)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else {  // the byte alphabet stays below U+0144, so three bytes is never needed; kept for
            // completeness
    out->push_back(static_cast<char>(0xE0 | (code_point >> 12)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  }
}

std::string ReadTokenizerFile(const std::string& path, const char* what) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    Fail(ErrorCode::kNotFound, path + ": " + what +
                                   " not found; pass a directory holding vocab.json + " +
                                   "merges.txt (or encoder.json + vocab.bpe), e.g. data/gpt2");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) Fail(ErrorCode::kIo, path + ": cannot open the " + what);
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) Fail(ErrorCode::kIo, path + ": cannot read the " + what);
  return std::move(contents).str();
}

// What the vocabulary file yields: id -> bytes, and the file's own token spelling -> id (for
// merges.txt).
struct Vocabulary {
  std::vector<std::string> token_bytes;
  std::unordered_map<std::string, std::int32_t> id_by_spelling;
};

Vocabulary ParseVocabulary(const std::string& path) {
  const std::string text = ReadTokenizerFile(path, "vocabulary file");
  nlohmann::json json;
  formats::CheckJsonNesting(text, path, ErrorCode::kDataLoss);
  try {
    json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    Fail(ErrorCode::kDataLoss,
         path + ": not valid JSON (" + formats::JsonErrorExcerpt(e) +
             "); the file is truncated or corrupt: restore it (data/gpt2/README.md "
             "gives the sha256 of GPT-2's)");
  }
  if (!json.is_object() || json.empty()) {
    Fail(ErrorCode::kDataLoss, path +
                                   ": expected a non-empty JSON object mapping token -> id, got " +
                                   std::string(json.type_name()));
  }
  std::array<std::int32_t, 0x200> byte_of_code_point;
  byte_of_code_point.fill(-1);
  const std::array<char32_t, 256> code_points = ByteToCodePoint();
  for (int b = 0; b < 256; ++b) byte_of_code_point[code_points[b]] = b;

  Vocabulary vocab;
  const std::size_t size = json.size();
  vocab.token_bytes.resize(size);
  std::vector<bool> seen(size, false);
  vocab.id_by_spelling.reserve(size);
  for (const auto& [spelling, value] : json.items()) {
    const std::string where = path + ": token \"" + spelling + "\"";
    if (!value.is_number_integer() || value.get<std::int64_t>() < 0 ||
        value.get<std::int64_t>() >= static_cast<std::int64_t>(size)) {
      Fail(ErrorCode::kDataLoss, where + " has id " + formats::JsonExcerpt(value) +
                                     "; ids must be the integers 0.." + std::to_string(size - 1) +
                                     " (one per token)");
    }
    const auto id = static_cast<std::int32_t>(value.get<std::int64_t>());
    if (seen[id]) Fail(ErrorCode::kDataLoss, where + " reuses id " + std::to_string(id));
    seen[id] = true;
    // "<|endoftext|>" is spelt in printable ASCII, so it decodes like any other token.
    std::string bytes;
    for (std::size_t pos = 0; pos < spelling.size();) {
      char32_t code_point;
      pos += DecodeUtf8(std::string_view(spelling).substr(pos), &code_point);
      if (code_point >= byte_of_code_point.size() || byte_of_code_point[code_point] < 0) {
        Fail(ErrorCode::kDataLoss,
             where + " (id " + std::to_string(id) +
                 ") has a character outside GPT-2's byte alphabet; this is not a "
                 "byte-level BPE vocabulary");
      }
      bytes.push_back(static_cast<char>(byte_of_code_point[code_point]));
    }
    if (bytes.empty())
      Fail(ErrorCode::kDataLoss, where + " (id " + std::to_string(id) + ") is empty");
    vocab.token_bytes[id] = std::move(bytes);
    vocab.id_by_spelling.emplace(spelling, id);
  }
  return vocab;
}

BpeMergeTable ParseMerges(const std::string& path, const Vocabulary& vocab) {
  const std::string text = ReadTokenizerFile(path, "merges file");
  BpeMergeTable merges;
  std::size_t line_number = 0;
  for (std::size_t pos = 0; pos < text.size();) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line_number == 1 && line.substr(0, 8) == "#version") continue;
    const std::string where = path + ":" + std::to_string(line_number) + ": ";
    const std::size_t space = line.find(' ');
    if (space == 0 || space == std::string_view::npos || space + 1 == line.size() ||
        line.find(' ', space + 1) != std::string_view::npos) {
      Fail(ErrorCode::kDataLoss, where + "expected two tokens separated by one space, got \"" +
                                     std::string(line) + "\"; the file is corrupt");
    }
    const std::string left(line.substr(0, space));
    const std::string right(line.substr(space + 1));
    std::array<std::int32_t, 3> ids;
    const std::array<const std::string, 3> spellings = {left, right, left + right};
    for (std::size_t i = 0; i < 3; ++i) {
      const auto it = vocab.id_by_spelling.find(spellings[i]);
      if (it == vocab.id_by_spelling.end()) {
        Fail(ErrorCode::kDataLoss,
             where + "token \"" + spellings[i] +
                 "\" is not in the vocabulary; merges and vocabulary files must "
                 "come from the same tokenizer");
      }
      ids[i] = it->second;
    }
    merges.Add(ids[0], ids[1], ids[2]);  // a repeated pair keeps its first, lower rank
  }
  return merges;
}

}  // namespace

Gpt2Tokenizer Gpt2Tokenizer::FromDirectory(const std::string& dir,
                                           const Gpt2TokenizerOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    Fail(ErrorCode::kNotFound,
         dir + ": tokenizer directory not found; pass a directory holding " +
             "vocab.json + merges.txt (or encoder.json + vocab.bpe), e.g. data/gpt2");
  }
  const fs::path root(dir);
  if (fs::exists(root / "vocab.json", ec) || !fs::exists(root / "encoder.json", ec)) {
    return FromFiles((root / "vocab.json").string(), (root / "merges.txt").string(), options);
  }
  return FromFiles((root / "encoder.json").string(), (root / "vocab.bpe").string(), options);
}

Gpt2Tokenizer Gpt2Tokenizer::FromFiles(const std::string& vocab_path,
                                       const std::string& merges_path,
                                       const Gpt2TokenizerOptions& options) {
  Vocabulary vocab = ParseVocabulary(vocab_path);
  BpeMergeTable merges = ParseMerges(merges_path, vocab);

  std::array<std::int32_t, 256> byte_token_ids;
  const std::array<char32_t, 256> code_points = ByteToCodePoint();
  for (int b = 0; b < 256; ++b) {
    std::string spelling;
    AppendUtf8(code_points[b], &spelling);
    const auto it = vocab.id_by_spelling.find(spelling);
    if (it == vocab.id_by_spelling.end()) {
      Fail(ErrorCode::kDataLoss, vocab_path + ": no token for the single byte " +
                                     std::to_string(b) + " (\"" + spelling +
                                     "\"); a byte-level vocabulary needs all 256");
    }
    byte_token_ids[b] = it->second;
  }
  const auto eos = vocab.id_by_spelling.find(kEndOfText);
  if (eos == vocab.id_by_spelling.end()) {
    Fail(ErrorCode::kDataLoss, vocab_path + ": no \"" + std::string(kEndOfText) +
                                   "\" token; GPT-2 vocabularies end with it");
  }
  return Gpt2Tokenizer(std::move(vocab.token_bytes), byte_token_ids, std::move(merges), eos->second,
                       options);
}

}  // namespace hpsearch::core
