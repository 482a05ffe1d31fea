// hpsearch: the command line and the coordinator.
#include <algorithm>
#include <iostream>
#include <new>
#include <string>
#include <vector>

#include "base/closest_match.h"
#include "cli/commands.h"

namespace {

// "did you mean" for a mistyped subcommand ("hpsearch sumbit") or a flag a subcommand does not
// take ("--worker"): returns true when it explained the error itself.
bool ExplainUnknownWord(const CLI::App& app, int argc, char** argv) {
  std::vector<std::string> commands;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    commands.push_back(sub->get_name());
  }
  if (argc > 1 && argv[1][0] != '-' &&
      std::find(commands.begin(), commands.end(), argv[1]) == commands.end()) {
    std::string closest = hpsearch::ClosestMatch(argv[1], commands);
    std::cerr << "hpsearch: '" << argv[1] << "' is not a command";
    if (!closest.empty()) std::cerr << ": did you mean '" << closest << "'?";
    std::cerr << "\nRun 'hpsearch --help' for the list of commands.\n";
    return true;
  }
  const CLI::App* sub = nullptr;
  for (const CLI::App* candidate : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (argc > 1 && candidate->get_name() == argv[1]) sub = candidate;
  }
  if (sub == nullptr) return false;
  std::vector<std::string> flags;
  for (const CLI::Option* option : sub->get_options()) {
    for (const std::string& name : option->get_lnames()) flags.push_back("--" + name);
  }
  for (int i = 2; i < argc; ++i) {
    std::string word = argv[i];
    if (word.rfind("--", 0) != 0) continue;
    word = word.substr(0, word.find('='));
    if (std::find(flags.begin(), flags.end(), word) != flags.end()) continue;
    std::string closest = hpsearch::ClosestMatch(word, flags);
    std::cerr << "hpsearch " << sub->get_name() << ": " << word << " is not a flag of this command";
    if (!closest.empty()) std::cerr << ": did you mean " << closest << "?";
    std::cerr << "\nRun 'hpsearch " << sub->get_name() << " --help' for its flags.\n";
    return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"hpsearch: hyperparameter search for QLoRA fine-tuning of GPT-2-family models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("hpsearch ") + HPSEARCH_VERSION);
  int exit_code = hpsearch::cli::kExitOk;
  hpsearch::cli::RegisterValidateCommand(app, &exit_code);
  hpsearch::cli::RegisterServeCommand(app, &exit_code);
  hpsearch::cli::RegisterSubmitCommand(app, &exit_code);
  hpsearch::cli::RegisterStatusCommands(app, &exit_code);
  hpsearch::cli::RegisterTrialsCommand(app, &exit_code);
  hpsearch::cli::RegisterWatchCommand(app, &exit_code);
  hpsearch::cli::RegisterReportCommand(app, &exit_code);
  hpsearch::cli::RegisterExportCommand(app, &exit_code);
  hpsearch::cli::RegisterImportanceCommand(app, &exit_code);
  hpsearch::cli::RegisterRunCommand(app, &exit_code);
  hpsearch::cli::RegisterHealthCommand(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() != 0 && ExplainUnknownWord(app, argc, argv)) {
      return hpsearch::cli::kExitBadInput;
    }
    int code = app.exit(e);
    return code == 0 ? 0 : hpsearch::cli::kExitBadInput;
  } catch (const std::bad_alloc&) {
    // The one top-level handler (docs/reliability.md): whatever a command lets escape is a message
    // and an exit code, never an abort.
    std::cerr << "hpsearch: out of memory\n";
    return hpsearch::cli::kExitFailure;
  } catch (const std::exception& e) {
    std::cerr << "hpsearch: internal error: " << e.what() << "\n";
    return hpsearch::cli::kExitFailure;
  }
  return exit_code;
}
