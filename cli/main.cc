// hpsearch: the command line and the coordinator.
#include <iostream>

#include "cli/commands.h"

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
  hpsearch::cli::RegisterRunCommand(app, &exit_code);
  hpsearch::cli::RegisterHealthCommand(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : hpsearch::cli::kExitBadInput;
  }
  return exit_code;
}
