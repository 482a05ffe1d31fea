#include <cstdio>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/tokenizer.h"
#include "core/tool/commands.h"
#include "core/tool/tool_util.h"

namespace hpsearch::core::tool {
namespace {

constexpr char kTokenizeUsage[] =
    "usage: hpsearch-core tokenize --tokenizer DIR < input.jsonl\n"
    "  Reads JSON Lines from stdin, each an object {\"text\": \"...\"}, and prints one line per "
    "input:\n"
    "  the GPT-2 token ids of the text, separated by spaces (no special tokens added).\n"
    "  --tokenizer DIR   directory with vocab.json + merges.txt or encoder.json + vocab.bpe (e.g. "
    "data/gpt2)\n";

}  // namespace

int RunTokenize(int argc, char** argv) {
  std::string tokenizer_dir;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kTokenizeUsage, stdout);
      return 0;
    }
    if (arg == "--tokenizer" && i + 1 < argc) {
      tokenizer_dir = argv[++i];
    } else {
      std::fprintf(stderr, "hpsearch-core tokenize: unexpected argument '%s'\n%s", argv[i],
                   kTokenizeUsage);
      return 2;
    }
  }
  if (tokenizer_dir.empty()) {
    std::fprintf(stderr, "hpsearch-core tokenize: --tokenizer DIR is required\n%s", kTokenizeUsage);
    return 2;
  }

  try {
    const Gpt2Tokenizer tokenizer = Gpt2Tokenizer::FromDirectory(tokenizer_dir);
    std::ios::sync_with_stdio(false);
    std::string line;
    std::string text;
    std::string error;
    std::string out;
    std::vector<std::int32_t> ids;
    for (long line_number = 1; std::getline(std::cin, line); ++line_number) {
      if (!ParseTextLine(line, &text, &error)) {
        std::fflush(stdout);
        std::fprintf(stderr, "hpsearch-core tokenize: stdin line %ld: %s\n", line_number,
                     error.c_str());
        return 2;
      }
      ids.clear();
      tokenizer.EncodeAppend(text, &ids);
      out.clear();
      for (std::size_t i = 0; i < ids.size(); ++i) {
        if (i > 0) out.push_back(' ');
        out += std::to_string(ids[i]);
      }
      out.push_back('\n');
      std::fwrite(out.data(), 1, out.size(), stdout);
    }
    if (std::cin.bad()) {
      std::fprintf(stderr, "hpsearch-core tokenize: reading stdin failed\n");
      return 1;
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "hpsearch-core tokenize: %s\n", e.what());
    return ExitCodeFor(e.code());
  }
  return std::fflush(stdout) == 0 ? 0 : 1;
}

}  // namespace hpsearch::core::tool
