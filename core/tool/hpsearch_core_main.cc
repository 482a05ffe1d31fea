// hpsearch-core: a LibTorch-only tool over the training core, usable without the service.
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "core/error.h"
#include "core/tool/commands.h"
#include "core/tool/tool_util.h"

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

int Dispatch(int argc, char** argv) {
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

}  // namespace

// The one top-level handler: whatever a command lets escape becomes a message and an exit code
// (docs/reliability.md), never an abort.
int main(int argc, char** argv) {
  const char* command = argc > 1 ? argv[1] : "";
  try {
    return Dispatch(argc, argv);
  } catch (const hpsearch::core::Error& e) {
    std::fprintf(stderr, "hpsearch-core %s: %s\n", command, e.what());
    return hpsearch::core::tool::ExitCodeFor(e.code());
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr,
                 "hpsearch-core %s: out of memory (a model, batch or file larger than this machine "
                 "can hold)\n",
                 command);
    return 1;
  } catch (const std::exception& e) {
    // LibTorch's c10::Error carries a C++ backtrace after its first line: keep the message.
    std::string what = e.what();
    if (size_t newline = what.find('\n'); newline != std::string::npos) what.resize(newline);
    std::fprintf(stderr, "hpsearch-core %s: internal error: %s\n", command, what.c_str());
    return 1;
  } catch (...) {
    std::fprintf(stderr, "hpsearch-core %s: internal error (unknown exception)\n", command);
    return 1;
  }
}
