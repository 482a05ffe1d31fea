// hpsearch-core: a LibTorch-only tool over the training core, usable without the service.
#include <cstdio>
#include <cstring>
#include <string>

#include "core/error.h"
#include "core/tool/commands.h"

namespace {

constexpr char kUsage[] =
    "usage: hpsearch-core <command> [options]\n"
    "commands:\n"
    "  version    print the version and the LibTorch it was built with\n"
    "  tokenize   GPT-2 token ids of JSON Lines {\"text\": ...} read from stdin\n"
    "             (hpsearch-core tokenize --help)\n"
    "  logits     logits of a Hugging Face checkpoint for JSON Lines texts\n"
    "  train      one training run from a TrialSpec-shaped JSON config\n"
    "  predict    labels and probabilities from a model hpsearch trained\n"
    "Each command takes --help.\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  if (command == "version") {
    std::printf("hpsearch-core %s\n", HPSEARCH_VERSION);
    return 0;
  }
  if (command == "tokenize") return hpsearch::core::tool::RunTokenize(argc - 1, argv + 1);
  if (command == "train") return hpsearch::core::tool::RunTrain(argc - 1, argv + 1);
  if (command == "logits") return hpsearch::core::tool::RunLogits(argc - 1, argv + 1);
  if (command == "predict") return hpsearch::core::tool::RunPredict(argc - 1, argv + 1);
  std::fprintf(stderr, "hpsearch-core: unknown command '%s'\n%s", command.c_str(), kUsage);
  return 2;
}
