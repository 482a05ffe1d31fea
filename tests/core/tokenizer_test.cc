#include "core/tokenizer.h"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include "core/catch_torch.h"

#include "core/core_test_files.h"
#include "core/error.h"
#include "testing/testing.h"

namespace hpsearch::core {
namespace {

namespace fs = std::filesystem;
using hpsearch::testing::SourceDir;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.is_open());
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

void WriteTokenizerFile(const fs::path& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary);
  out << contents;
  REQUIRE(out.good());
}

// One tokenizer per test process: loading GPT-2's vocabulary takes a few hundred milliseconds.
const Gpt2Tokenizer& Gpt2() {
  static const Gpt2Tokenizer tokenizer =
      Gpt2Tokenizer::FromDirectory(testing::Gpt2TokenizerDir().string());
  return tokenizer;
}

struct GoldenCase {
  std::string text;
  std::vector<std::int32_t> ids;
};

// llama.cpp's format: every case in the .inp file is followed by "\n__ggml_vocab_test__\n"; the
// .out file has one line of space-separated ids per case.
std::vector<GoldenCase> ReadGoldenCases() {
  const fs::path dir = SourceDir() / "tests" / "data" / "gpt2-golden";
  const std::string inputs = ReadFile(dir / "ggml-vocab-gpt-2.gguf.inp");
  const std::string outputs = ReadFile(dir / "ggml-vocab-gpt-2.gguf.out");
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<GoldenCase> cases;
  for (std::size_t pos = 0; pos < inputs.size();) {
    const std::size_t end = inputs.find(separator, pos);
    REQUIRE(end != std::string::npos);  // the file ends with a separator
    cases.push_back({inputs.substr(pos, end - pos), {}});
    pos = end + separator.size();
  }
  std::istringstream lines(outputs);
  std::string line;
  std::size_t index = 0;
  for (; std::getline(lines, line); ++index) {
    REQUIRE(index < cases.size());
    std::istringstream numbers(line);
    std::int32_t id;
    while (numbers >> id) cases[index].ids.push_back(id);
  }
  REQUIRE(index == cases.size());
  return cases;
}

TEST_CASE("Gpt2Tokenizer loads GPT-2's vocabulary", "[core][tokenizer]") {
  const Gpt2Tokenizer& tokenizer = Gpt2();
  REQUIRE(tokenizer.vocab_size() == 50257);
  REQUIRE(tokenizer.eos_token_id() == 50256);
  REQUIRE(tokenizer.TokenBytes(50256) == "<|endoftext|>");
  REQUIRE(tokenizer.TokenBytes(220) == " ");   // "Ġ"
  REQUIRE(tokenizer.TokenBytes(198) == "\n");  // "Ċ"
  REQUIRE(tokenizer.TokenBytes(0) == "!");
}

TEST_CASE("Gpt2Tokenizer encodes hello world as tiktoken does", "[core][tokenizer]") {
  REQUIRE(Gpt2().Encode("hello world") == std::vector<std::int32_t>{31373, 995});
  REQUIRE(Gpt2().Encode("").empty());
  // Special tokens are never parsed out of text.
  const std::vector<std::int32_t> eos_text = Gpt2().Encode("<|endoftext|>");
  REQUIRE(std::find(eos_text.begin(), eos_text.end(), 50256) == eos_text.end());
  REQUIRE(Gpt2().Decode(eos_text) == "<|endoftext|>");
}

TEST_CASE("Gpt2Tokenizer matches all 46 golden tokenizations", "[core][tokenizer]") {
  const std::vector<GoldenCase> cases = ReadGoldenCases();
  REQUIRE(cases.size() == 46);
  for (const GoldenCase& golden : cases) {
    INFO("text: \"" << golden.text << "\"");
    CHECK(Gpt2().Encode(golden.text) == golden.ids);
  }
}

TEST_CASE("Gpt2Tokenizer agrees with the Python reference on fuzzed texts", "[core][tokenizer]") {
  std::istringstream lines(ReadFile(SourceDir() / "tests" / "data" / "gpt2-fuzz" / "cases.jsonl"));
  std::string line;
  std::size_t count = 0;
  while (std::getline(lines, line)) {
    const nlohmann::json fuzz_case = nlohmann::json::parse(line);
    const std::string text = fuzz_case.at("text").get<std::string>();
    INFO("case " << count << ": " << line);
    CHECK(Gpt2().Encode(text) == fuzz_case.at("ids").get<std::vector<std::int32_t>>());
    CHECK(Gpt2().Decode(Gpt2().Encode(text)) == text);
    ++count;
  }
  REQUIRE(count == 250);
}

TEST_CASE("Gpt2Tokenizer decodes the goldens back to their text", "[core][tokenizer]") {
  for (const GoldenCase& golden : ReadGoldenCases()) {
    INFO("text: \"" << golden.text << "\"");
    CHECK(Gpt2().Decode(Gpt2().Encode(golden.text)) == golden.text);
    CHECK(Gpt2().Decode(golden.ids) == golden.text);
  }
}

TEST_CASE("Gpt2Tokenizer gives the same ids cold, warm and without a cache", "[core][tokenizer]") {
  Gpt2TokenizerOptions no_cache;
  no_cache.word_cache_capacity = 0;
  const Gpt2Tokenizer uncached =
      Gpt2Tokenizer::FromDirectory(testing::Gpt2TokenizerDir().string(), no_cache);
  Gpt2TokenizerOptions tiny_cache;
  tiny_cache.word_cache_capacity = 3;  // refills many times
  const Gpt2Tokenizer tiny =
      Gpt2Tokenizer::FromDirectory(testing::Gpt2TokenizerDir().string(), tiny_cache);
  for (const GoldenCase& golden : ReadGoldenCases()) {
    INFO("text: \"" << golden.text << "\"");
    CHECK(uncached.Encode(golden.text) == golden.ids);
    CHECK(tiny.Encode(golden.text) == golden.ids);
    CHECK(tiny.Encode(golden.text) == golden.ids);
  }
}

TEST_CASE("Gpt2Tokenizer encodes from several threads at once", "[core][tokenizer]") {
  Gpt2TokenizerOptions options;
  options.word_cache_capacity = 50;  // emptied again and again while the threads run
  const Gpt2Tokenizer tokenizer =
      Gpt2Tokenizer::FromDirectory(testing::Gpt2TokenizerDir().string(), options);
  const std::vector<GoldenCase> cases = ReadGoldenCases();
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round) {
        for (std::size_t i = 0; i < cases.size(); ++i) {
          const GoldenCase& golden = cases[(i + static_cast<std::size_t>(t) * 11) % cases.size()];
          if (tokenizer.Encode(golden.text) != golden.ids) ++mismatches[t];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  REQUIRE(mismatches == std::vector<int>(4, 0));
}

TEST_CASE("Gpt2Tokenizer survives invalid UTF-8 and round-trips its bytes", "[core][tokenizer]") {
  const std::vector<std::string> texts = {
      std::string("\xff"),
      std::string("abc\xff\xfe def"),
      std::string("stray \x80 continuation"),
      std::string("truncated \xe2\x82"),           // the first two bytes of the euro sign
      std::string("surrogate \xed\xa0\x80 half"),  // U+D800 spelt in UTF-8
      std::string("overlong \xc0\xaf slash"),      // '/' in two bytes
      std::string("too high \xf4\x90\x80\x80 !"),  // U+110000
      std::string("\xf0\x9f\x98"),                 // an emoji cut short at the end
      std::string("nul \0 byte", 10),
  };
  for (const std::string& text : texts) {
    INFO("text: \"" << text << "\"");
    std::vector<std::int32_t> ids;
    REQUIRE_NOTHROW(ids = Gpt2().Encode(text));
    CHECK(Gpt2().Decode(ids) == text);
  }
  const std::vector<std::int32_t> lone = Gpt2().Encode("\xff");
  REQUIRE(lone.size() == 1);
  REQUIRE(Gpt2().TokenBytes(lone[0]) == "\xff");
}

TEST_CASE("Gpt2Tokenizer::Decode names an id outside the vocabulary", "[core][tokenizer]") {
  try {
    Gpt2().Decode({31373, 50257});
    FAIL("Decode accepted id 50257");
  } catch (const Error& e) {
    REQUIRE(e.code() == ErrorCode::kInvalidArgument);
    REQUIRE_THAT(e.what(), Catch::Contains("id 50257 at position 1"));
  }
  REQUIRE_THROWS_AS(Gpt2().Decode({-1}), Error);
}

TEST_CASE("Gpt2Tokenizer loads OpenAI's file names as well", "[core][tokenizer]") {
  hpsearch::testing::TempDir dir;
  fs::copy_file(testing::Gpt2TokenizerDir() / "vocab.json", dir / "encoder.json");
  fs::copy_file(testing::Gpt2TokenizerDir() / "merges.txt", dir / "vocab.bpe");
  const Gpt2Tokenizer openai = Gpt2Tokenizer::FromDirectory(dir.path().string());
  REQUIRE(openai.vocab_size() == 50257);
  for (const GoldenCase& golden : ReadGoldenCases())
    CHECK(openai.Encode(golden.text) == golden.ids);
}

// Runs `load` and returns the core::Error it throws.
template <typename Load>
Error LoadError(Load load) {
  try {
    load();
  } catch (const Error& e) {
    return e;
  }
  FAIL("loading succeeded");
  return Error(ErrorCode::kInternal, "unreachable");
}

TEST_CASE("Gpt2Tokenizer reports a missing directory or file", "[core][tokenizer]") {
  hpsearch::testing::TempDir dir;
  const Error no_dir = LoadError([&] { Gpt2Tokenizer::FromDirectory((dir / "absent").string()); });
  REQUIRE(no_dir.code() == ErrorCode::kNotFound);
  REQUIRE_THAT(no_dir.what(), Catch::Contains("absent") && Catch::Contains("tokenizer directory"));

  const Error empty_dir = LoadError([&] { Gpt2Tokenizer::FromDirectory(dir.path().string()); });
  REQUIRE(empty_dir.code() == ErrorCode::kNotFound);
  REQUIRE_THAT(empty_dir.what(), Catch::Contains("vocab.json"));

  fs::copy_file(testing::Gpt2TokenizerDir() / "vocab.json", dir / "vocab.json");
  const Error no_merges = LoadError([&] { Gpt2Tokenizer::FromDirectory(dir.path().string()); });
  REQUIRE(no_merges.code() == ErrorCode::kNotFound);
  REQUIRE_THAT(no_merges.what(), Catch::Contains("merges.txt"));
}

TEST_CASE("Gpt2Tokenizer rejects a truncated vocab.json", "[core][tokenizer]") {
  hpsearch::testing::TempDir dir;
  const std::string vocab = ReadFile(testing::Gpt2TokenizerDir() / "vocab.json");
  WriteTokenizerFile(dir / "vocab.json", vocab.substr(0, vocab.size() / 2));
  fs::copy_file(testing::Gpt2TokenizerDir() / "merges.txt", dir / "merges.txt");
  const Error error = LoadError([&] { Gpt2Tokenizer::FromDirectory(dir.path().string()); });
  REQUIRE(error.code() == ErrorCode::kDataLoss);
  REQUIRE_THAT(error.what(), Catch::Contains("vocab.json") && Catch::Contains("line 1"));
}

TEST_CASE("Gpt2Tokenizer rejects vocabulary ids that are not 0..n-1", "[core][tokenizer]") {
  hpsearch::testing::TempDir dir;
  fs::copy_file(testing::Gpt2TokenizerDir() / "merges.txt", dir / "merges.txt");
  WriteTokenizerFile(dir / "vocab.json", R"({"a": 0, "b": 0})");
  const Error reused = LoadError([&] { Gpt2Tokenizer::FromDirectory(dir.path().string()); });
  REQUIRE(reused.code() == ErrorCode::kDataLoss);
  REQUIRE_THAT(reused.what(), Catch::Contains("vocab.json") && Catch::Contains("reuses id 0"));
  WriteTokenizerFile(dir / "vocab.json", R"({"a": 0, "b": "1"})");
  const Error not_int = LoadError([&] { Gpt2Tokenizer::FromDirectory(dir.path().string()); });
  REQUIRE_THAT(not_int.what(), Catch::Contains("token \"b\" has id \"1\""));
}

TEST_CASE("Gpt2Tokenizer names the file and line of a bad merges line", "[core][tokenizer]") {
  hpsearch::testing::TempDir dir;
  fs::copy_file(testing::Gpt2TokenizerDir() / "vocab.json", dir / "vocab.json");
  const std::string merges = ReadFile(testing::Gpt2TokenizerDir() / "merges.txt");
  // Line 1 is "#version: 0.2"; break line 4 in two ways.
  std::vector<std::size_t> line_starts = {0};
  for (std::size_t i = 0; i < merges.size() && line_starts.size() < 5; ++i) {
    if (merges[i] == '\n') line_starts.push_back(i + 1);
  }
  const std::string before = merges.substr(0, line_starts[3]);
  const std::string after = merges.substr(line_starts[4]);

  WriteTokenizerFile(dir / "merges.txt", before + "onlyonetoken\n" + after);
  const Error one_token = LoadError([&] { Gpt2Tokenizer::FromDirectory(dir.path().string()); });
  REQUIRE(one_token.code() == ErrorCode::kDataLoss);
  REQUIRE_THAT(one_token.what(),
               Catch::Contains("merges.txt:4:") && Catch::Contains("onlyonetoken"));

  WriteTokenizerFile(dir / "merges.txt", before + "Ġt \xe2\x82\xac\xe2\x82\xac\n" + after);
  const Error unknown = LoadError([&] { Gpt2Tokenizer::FromDirectory(dir.path().string()); });
  REQUIRE_THAT(unknown.what(),
               Catch::Contains("merges.txt:4:") && Catch::Contains("is not in the vocabulary"));
}

// The text column of an RFC 4180 CSV file with a header (quoted fields, doubled quotes, newlines in
// quotes).
std::vector<std::string> ReadCsvFirstColumn(const fs::path& path) {
  const std::string csv = ReadFile(path);
  std::vector<std::string> column;
  std::string field;
  std::size_t field_index = 0;
  bool in_quotes = false;
  for (std::size_t i = 0; i < csv.size(); ++i) {
    const char c = csv[i];
    if (in_quotes) {
      if (c == '"' && i + 1 < csv.size() && csv[i + 1] == '"') {
        field.push_back('"');
        ++i;
      } else if (c == '"') {
        in_quotes = false;
      } else {
        field.push_back(c);
      }
    } else if (c == '"') {
      in_quotes = true;
    } else if (c == ',') {
      if (field_index == 0) column.push_back(field);
      field.clear();
      ++field_index;
    } else if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < csv.size() && csv[i + 1] == '\n') ++i;
      field.clear();
      field_index = 0;
    } else {
      field.push_back(c);
    }
  }
  REQUIRE(!in_quotes);
  REQUIRE(!column.empty());
  REQUIRE(column.front() == "text");
  column.erase(column.begin());
  return column;
}

TEST_CASE("Gpt2Tokenizer reproduces Banking77's published token statistics", "[core][tokenizer]") {
  // The committed copy where the data layer has added it, else the developers' ../shared one.
  fs::path train = SourceDir() / "data" / "banking77" / "train.csv";
  if (!fs::exists(train)) {
    train = hpsearch::testing::SharedDirOrSkip() / "data" / "banking77" / "train.csv";
    if (!fs::exists(train)) hpsearch::testing::Skip("no " + train.string());
  }
  const std::vector<std::string> texts = ReadCsvFirstColumn(train);
  REQUIRE(texts.size() == 10003);
  std::vector<std::size_t> lengths;
  for (const std::string& text : texts) {
    const std::vector<std::int32_t> ids = Gpt2().Encode(text);
    REQUIRE(Gpt2().Decode(ids) == text);
    lengths.push_back(ids.size());
  }
  double total = 0;
  for (const std::size_t length : lengths) total += static_cast<double>(length);
  const double mean = total / static_cast<double>(lengths.size());
  std::sort(lengths.begin(), lengths.end());
  INFO("mean " << mean << ", median " << lengths[lengths.size() / 2] << ", max " << lengths.back());
  // data/banking77/README.md: train mean 13.8, median 11, max 94 GPT-2 tokens.
  CHECK(mean == Approx(13.8).margin(0.1));
  CHECK(lengths[lengths.size() / 2] == 11);
  CHECK(lengths.back() == 94);
}

}  // namespace
}  // namespace hpsearch::core
