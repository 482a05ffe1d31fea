// hpsearch validate STUDY.yaml: parse and validate a study file with the coordinator's own
// validator.
#include <iostream>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "server/study_file/study_file.h"

namespace hpsearch::cli {
namespace {

struct ValidateFlags {
  std::string study_file;
  bool no_file_checks = false;
  bool quiet = false;
};

int RunValidate(const ValidateFlags& flags) {
  server::ValidationOptions options;
  options.check_files = !flags.no_file_checks;
  absl::StatusOr<server::LoadedStudy> loaded = server::LoadStudyFile(flags.study_file, options);
  if (!loaded.ok()) {
    std::cerr << "hpsearch validate: " << loaded.status().message() << "\n";
    return kExitBadInput;
  }
  for (const server::StudyFileIssue& issue : loaded->issues) std::cerr << issue.ToString() << "\n";
  if (!loaded->ok()) {
    int errors = 0;
    for (const auto& issue : loaded->issues) {
      errors += issue.severity == server::ValidationIssue::Severity::kError;
    }
    std::cerr << flags.study_file << ": invalid (" << errors << (errors == 1 ? " error" : " errors")
              << "); nothing was submitted or written\n";
    return kExitBadInput;
  }
  if (!flags.quiet) {
    std::cout << "# " << flags.study_file
              << ": valid. Normalised study (every default filled in):\n"
              << server::StudySpecToYaml(loaded->spec);
  }
  return kExitOk;
}

}  // namespace

void RegisterValidateCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<ValidateFlags>();
  CLI::App* cmd = app.add_subcommand("validate", "Check a study file and print it normalised");
  cmd->add_option("study", flags->study_file, "Study YAML file")->required();
  cmd->add_flag("--no-file-checks", flags->no_file_checks,
                "Do not require data files to exist (for a spec meant for another machine)");
  cmd->add_flag("-q,--quiet", flags->quiet, "Print only problems");
  cmd->callback([flags, exit_code] { *exit_code = RunValidate(*flags); });
}

}  // namespace hpsearch::cli
