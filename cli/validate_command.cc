// hpsearch validate STUDY.yaml: parse and validate a study file with the coordinator's own
// validator.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

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
  if (flags.no_file_checks) {
    // Files meant for the workers' machines: say what was taken on trust.
    const v1::StudySpec& spec = loaded->spec;
    std::vector<std::string> unchecked;
    for (const std::string* path :
         {&spec.data().train_file(), &spec.data().validation_file(), &spec.data().test_file()}) {
      if (!path->empty()) unchecked.push_back("'" + *path + "'");
    }
    if (spec.model().has_path()) unchecked.push_back("'" + spec.model().path() + "/config.json'");
    if (!unchecked.empty()) {
      std::cerr << "note: --no-file-checks: not read here, so not checked: ";
      for (size_t i = 0; i < unchecked.size(); ++i) std::cerr << (i ? ", " : "") << unchecked[i];
      std::cerr << " (a worker checks them when a trial loads them)\n";
    }
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
