// tokenizer_bench: GPT-2 tokenizer throughput on one core, in tokens per second.
//
//   tokenizer_bench [TOKENIZER_DIR]      (default: data/gpt2 of the source tree)
//
// Cold figures are honest: either the cache is disabled (every word goes through the merges) or the
// text is made of words that are all distinct, so a fresh cache never hits. Warm figures encode the
// same text again. Real text is Banking77's train split (data/banking77/train.csv in the tree, else
// ../shared's copy), else the committed golden texts.
#include <time.h>
#include <algorithm>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/error.h"
#include "core/tokenizer.h"

namespace {

namespace fs = std::filesystem;
using hpsearch::core::Gpt2Tokenizer;
using hpsearch::core::Gpt2TokenizerOptions;

constexpr int kRepetitions = 7;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// The first column of an RFC 4180 CSV file without its header row.
std::vector<std::string> CsvFirstColumn(const std::string& csv) {
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
    } else if (c == ',' || c == '\n' || c == '\r') {
      if (c == ',' && field_index++ == 0) column.push_back(field);
      if (c != ',') field_index = 0;
      field.clear();
    } else {
      field.push_back(c);
    }
  }
  if (!column.empty()) column.erase(column.begin());
  return column;
}

// Real text and where it came from.
std::vector<std::string> RealTexts(const fs::path& source_dir, std::string* origin) {
  for (const fs::path& csv :
       {source_dir / "data" / "banking77" / "train.csv",
        source_dir.parent_path() / "shared" / "data" / "banking77" / "train.csv"}) {
    if (fs::exists(csv)) {
      *origin = csv.string();
      return CsvFirstColumn(ReadFile(csv));
    }
  }
  const std::string golden =
      ReadFile(source_dir / "tests" / "data" / "gpt2-golden" / "ggml-vocab-gpt-2.gguf.inp");
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (std::size_t pos = 0, end; (end = golden.find(separator, pos)) != std::string::npos;
       pos = end + separator.size()) {
    texts.push_back(golden.substr(pos, end - pos));
  }
  *origin = "tests/data/gpt2-golden (46 texts)";
  return texts;
}

// Sentences of English-like made-up words, every word distinct (a fixed-seed generator, so every
// run measures the same text), with numbers and punctuation in between like real requests.
std::vector<std::string> DistinctWordTexts(std::size_t word_count) {
  static const char* const kSyllables[] = {
      "ban",  "king", "tr",   "ans",   "fer", "card", "pay",  "ment", "ex",    "change",
      "re",   "fund", "ac",   "count", "top", "up",   "ver",  "ify",  "lo",    "st",
      "pin",  "cash", "with", "draw",  "al",  "fee",  "rate", "de",   "cline", "con",
      "tact", "less", "pend", "ing",   "phy", "si",   "cal",  "vir",  "tu",    "mo",
      "ney",  "ter",  "mi",   "nal",   "ed",  "tion", "ous",  "pro",  "ble",   "ly"};
  constexpr std::size_t kSyllableCount = sizeof(kSyllables) / sizeof(kSyllables[0]);
  std::uint64_t state = 0x2545F4914F6CDD1Dull;
  auto next = [&state](std::uint64_t bound) {
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;  // xorshift64
    return state % bound;
  };
  std::unordered_set<std::string> seen;
  std::vector<std::string> texts;
  std::string text;
  while (seen.size() < word_count) {
    std::string word;
    for (std::uint64_t n = 2 + next(3); n > 0; --n) word += kSyllables[next(kSyllableCount)];
    if (next(8) == 0) word[0] = static_cast<char>(word[0] - 'a' + 'A');
    if (!seen.insert(word).second) continue;
    if (!text.empty()) text += ' ';
    text += word;
    if (next(12) == 0) text += " " + std::to_string(next(100000));
    if (next(10) == 0) text += ',';
    if (seen.size() % 12 == 0) {
      text += '?';
      texts.push_back(text);
      text.clear();
    }
  }
  if (!text.empty()) texts.push_back(text);
  return texts;
}

// CPU time of this thread: on a machine shared with other work, wall time also counts the slices
// the scheduler gave to other processes.
double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Figure {
  double seconds = 0;
  double cpu_seconds = 0;
  std::size_t tokens = 0;
  std::size_t bytes = 0;
};

// The run of least CPU time among kRepetitions runs; `prepare` runs untimed before each.
Figure Measure(const std::vector<std::string>& texts, const Gpt2Tokenizer& tokenizer,
               const std::function<void()>& prepare) {
  Figure best;
  std::vector<std::int32_t> ids;
  for (int rep = 0; rep < kRepetitions; ++rep) {
    prepare();
    Figure figure;
    const auto start = std::chrono::steady_clock::now();
    const double cpu_start = ThreadCpuSeconds();
    for (const std::string& text : texts) {
      ids.clear();
      tokenizer.EncodeAppend(text, &ids);
      figure.tokens += ids.size();
      figure.bytes += text.size();
    }
    figure.cpu_seconds = ThreadCpuSeconds() - cpu_start;
    figure.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (rep == 0 || figure.cpu_seconds < best.cpu_seconds) best = figure;
  }
  return best;
}

void PrintRow(const char* text, const char* cache, const Figure& f) {
  std::printf("| %-14s | %-30s | %7zu | %7.1f | %7.1f | %10.2f | %11.2f | %6.1f |\n", text, cache,
              f.tokens, f.cpu_seconds * 1e3, f.seconds * 1e3, f.tokens / f.cpu_seconds / 1e6,
              f.tokens / f.seconds / 1e6, f.bytes / f.cpu_seconds / 1e6);
}

}  // namespace

int main(int argc, char** argv) {
  const fs::path source_dir = HPSEARCH_BENCH_SOURCE_DIR;
  const std::string dir = argc > 1 ? argv[1] : (source_dir / "data" / "gpt2").string();
  try {
    const auto load_start = std::chrono::steady_clock::now();
    const Gpt2Tokenizer cached = Gpt2Tokenizer::FromDirectory(dir);
    const double load_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - load_start)
            .count();
    Gpt2TokenizerOptions no_cache_options;
    no_cache_options.word_cache_capacity = 0;
    const Gpt2Tokenizer uncached = Gpt2Tokenizer::FromDirectory(dir, no_cache_options);

    std::string origin;
    const std::vector<std::string> real = RealTexts(source_dir, &origin);
    const std::vector<std::string> distinct = DistinctWordTexts(100000);
    auto clear = [&cached] { cached.ClearCache(); };
    auto nothing = [] {};

    std::printf("GPT-2 tokenizer, one thread, best of %d runs; loading %s took %.0f ms\n",
                kRepetitions, dir.c_str(), load_ms);
    std::printf("real text: %s (%zu texts); distinct: %zu made-up sentences, every word new\n\n",
                origin.c_str(), real.size(), distinct.size());
    std::printf(
        "Mtok/s cpu = tokens per second of this thread's CPU time (the per-core figure); wall\n"
        "includes time the scheduler gave to other processes. MB/s is input bytes per CPU "
        "second.\n\n");
    std::printf("| %-14s | %-30s | %7s | %7s | %7s | %10s | %11s | %6s |\n", "text", "word cache",
                "tokens", "cpu ms", "wall ms", "Mtok/s cpu", "Mtok/s wall", "MB/s");
    std::printf(
        "|%s|%s|%s|%s|%s|%s|%s|%s|\n", std::string(16, '-').c_str(), std::string(32, '-').c_str(),
        std::string(9, '-').c_str(), std::string(9, '-').c_str(), std::string(9, '-').c_str(),
        std::string(12, '-').c_str(), std::string(13, '-').c_str(), std::string(8, '-').c_str());
    PrintRow("distinct words", "cold (cleared before each run)", Measure(distinct, cached, clear));
    PrintRow("distinct words", "warm (second pass)", Measure(distinct, cached, nothing));
    PrintRow("distinct words", "none (every word merged)", Measure(distinct, uncached, nothing));
    PrintRow("real", "cold (cleared before each run)", Measure(real, cached, clear));
    PrintRow("real", "warm (second pass)", Measure(real, cached, nothing));
    PrintRow("real", "none (every word merged)", Measure(real, uncached, nothing));
  } catch (const hpsearch::core::Error& e) {
    std::fprintf(stderr, "tokenizer_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
