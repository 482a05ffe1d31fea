// hpsearch submit STUDY.yaml: validates the study file with the coordinator's own validator,
// submits it and prints the study id; --wait then follows it and exits 0 only when it ends
// COMPLETE.
#include <iostream>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/data_hashes.h"
#include "server/study_file/study_file.h"

namespace hpsearch::cli {
namespace {

struct SubmitFlags {
  std::string study_file;
  ConnectionFlags connection;
  bool wait = false;
  bool resume = false;
  int n_trials = 0;  // --n-trials; 0: the study file's budget.n_trials
};

int RunSubmit(const SubmitFlags& flags) {
  absl::StatusOr<server::LoadedStudy> loaded = server::LoadStudyFile(flags.study_file);
  if (!loaded.ok()) {
    std::cerr << "hpsearch submit: " << loaded.status().message() << "\n";
    return kExitBadInput;
  }
  for (const server::StudyFileIssue& issue : loaded->issues) std::cerr << issue.ToString() << "\n";
  if (!loaded->ok()) {
    std::cerr << flags.study_file << ": invalid; nothing was submitted\n";
    return kExitBadInput;
  }
  int exit_code = kExitOk;
  std::optional<CoordinatorConnection> connection =
      OpenConnection("submit", flags.connection, &exit_code);
  if (!connection) return exit_code;
  auto* stub = connection->studies();
  v1::SubmitStudyRequest request;
  *request.mutable_spec() = loaded->spec;
  if (flags.n_trials > 0) request.mutable_spec()->mutable_budget()->set_n_trials(flags.n_trials);
  // --n-trials names a budget for a study that may exist: extending it is resuming it.
  request.set_resume_if_exists(flags.resume || flags.n_trials > 0);
  request.set_extend_budget(flags.n_trials > 0);
  // The data files' hashes go with the study, so a resume on changed data is refused.
  for (const auto& [path, sha256] : HashDataFiles(loaded->spec.data())) {
    if (!sha256.ok()) {
      std::cerr << "warning: " << sha256.status().message()
                << " (submitted without its hash: a resume cannot check it)\n";
      continue;
    }
    (*request.mutable_data_sha256())[path] = *sha256;
  }
  v1::SubmitStudyResponse response;
  auto context = CallContext();
  grpc::Status status = stub->SubmitStudy(context.get(), request, &response);
  if (!status.ok()) return connection->ReportFailure("submit", status);
  for (const std::string& warning : response.warnings()) {
    std::cerr << "warning: " << warning << "\n";
  }
  std::cout << response.study_id() << std::endl;
  if (response.resumed()) std::cerr << "resumed the existing study " << loaded->spec.name() << "\n";
  if (!flags.wait) return kExitOk;
  return FollowStudy(*connection, response.study_id(), /*live_table=*/false, std::cerr);
}

}  // namespace

void RegisterSubmitCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<SubmitFlags>();
  CLI::App* cmd = app.add_subcommand("submit", "Submit a study file to the coordinator");
  cmd->add_option("study", flags->study_file, "Study YAML file")->required();
  AddConnectionOptions(cmd, &flags->connection);
  cmd->add_flag("--wait", flags->wait, "Follow the study until it ends; exit 0 when COMPLETE");
  cmd->add_flag("--resume", flags->resume,
                "Resume the study of this name when it exists with the same spec and data");
  cmd->add_option("--n-trials", flags->n_trials,
                  "Search trials in all (overrides budget.n_trials; implies --resume): more than "
                  "a finished study ran extends it, keeping its trials")
      ->check(CLI::PositiveNumber);
  cmd->callback([flags, exit_code] { *exit_code = RunSubmit(*flags); });
}

}  // namespace hpsearch::cli
