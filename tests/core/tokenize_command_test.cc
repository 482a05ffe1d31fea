// Runs the built hpsearch-core binary's `tokenize` command end to end.
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "core/catch_torch.h"

#include "core/core_test_files.h"
#include "testing/testing.h"

namespace hpsearch::core {
namespace {

struct RunResult {
  int exit_code;
  std::string output;  // stdout and stderr together
};

// Runs `hpsearch-core tokenize --tokenizer data/gpt2` with `input` on stdin.
RunResult RunTokenize(const std::string& input, const std::string& tokenizer_dir) {
  hpsearch::testing::TempDir dir;
  const std::string input_path = (dir / "input.jsonl").string();
  {
    std::ofstream out(input_path, std::ios::binary);
    out << input;
  }
  const std::string command = "'" + (hpsearch::testing::BinDir() / "hpsearch-core").string() +
                              "' tokenize --tokenizer '" + tokenizer_dir + "' < '" + input_path +
                              "' 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  RunResult result;
  char buffer[4096];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.output.append(buffer, n);
  const int status = pclose(pipe);
  REQUIRE(WIFEXITED(status));
  result.exit_code = WEXITSTATUS(status);
  return result;
}

TEST_CASE("hpsearch-core tokenize prints the ids of each JSON line", "[core][tokenize_command]") {
  const RunResult result = RunTokenize(
      "{\"text\": \"hello world\"}\n"
      "{\"text\": \"\", \"label\": 3}\n"
      "{\"text\": \"Hello, y'all! \\u00bd\\n\"}\n",
      hpsearch::testing::Gpt2TokenizerDir().string());
  REQUIRE(result.exit_code == 0);
  REQUIRE(result.output == "31373 995\n\n15496 11 331 6 439 0 25208 198\n");
}

TEST_CASE("hpsearch-core tokenize names the bad input line and exits 2",
          "[core][tokenize_command]") {
  const RunResult not_json = RunTokenize("{\"text\": \"ok\"}\n{\"text\": oops}\n",
                                         hpsearch::testing::Gpt2TokenizerDir().string());
  REQUIRE(not_json.exit_code == 2);
  REQUIRE_THAT(not_json.output, Catch::StartsWith("482\n") && Catch::Contains("stdin line 2:"));

  const RunResult no_text =
      RunTokenize("{\"txt\": \"ok\"}\n", hpsearch::testing::Gpt2TokenizerDir().string());
  REQUIRE(no_text.exit_code == 2);
  REQUIRE_THAT(no_text.output, Catch::Contains("stdin line 1:") && Catch::Contains("\"text\""));
}

TEST_CASE("hpsearch-core tokenize reports a missing tokenizer directory",
          "[core][tokenize_command]") {
  const RunResult result = RunTokenize("{\"text\": \"ok\"}\n", "/nonexistent/gpt2");
  REQUIRE(result.exit_code ==
          2);  // bad input, not a failure of the environment (docs/reliability.md)
  REQUIRE_THAT(result.output, Catch::Contains("/nonexistent/gpt2"));
}

}  // namespace
}  // namespace hpsearch::core
