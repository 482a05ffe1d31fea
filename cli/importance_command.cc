// hpsearch importance STUDY --db FILE: the importance of each searched parameter (fANOVA on a
// random forest over the complete trials, server/report/importance.h), one line per parameter,
// "NAME IMPORTANCE", the most important first. It reads the results database read-only, so it works
// beside a running coordinator and with the coordinator gone.
#include <iostream>

#include "absl/strings/str_format.h"
#include "cli/commands.h"
#include "server/report/importance.h"
#include "server/report/study_report.h"

namespace hpsearch::cli {
namespace {

struct ImportanceFlags {
  std::string study;
  std::string db;
  server::ImportanceOptions options;
};

int RunImportance(const ImportanceFlags& flags) {
  absl::StatusOr<db::StoredStudy> stored = server::LoadStudyFromDatabase(flags.db, flags.study);
  if (!stored.ok()) {
    std::cerr << "hpsearch importance: " << stored.status().message() << "\n";
    return absl::IsNotFound(stored.status()) ? kExitBadInput : kExitFailure;
  }
  std::vector<v1::Trial> trials;
  for (db::StoredTrial& t : stored->trials) trials.push_back(std::move(t.trial));
  absl::StatusOr<server::StudyImportance> importance =
      server::ComputeParameterImportance(stored->study.spec(), trials, flags.options);
  if (!importance.ok()) {
    std::cerr << "hpsearch importance: study " << stored->study.spec().name() << ": "
              << importance.status().message() << "\n";
    return kExitBadInput;
  }
  if (importance->parameters.empty()) {
    std::cerr << "hpsearch importance: study " << stored->study.spec().name()
              << " searches no parameter\n";
    return kExitOk;
  }
  for (const server::ParameterImportance& p : importance->parameters) {
    std::cout << absl::StrFormat("%s %.6f\n", p.name, p.importance);
  }
  std::cerr << "hpsearch importance: fANOVA over " << importance->trials_used << " complete trials";
  if (importance->skipped_trials > 0) {
    std::cerr << " (" << importance->skipped_trials
              << " more left out: a missing or ill-typed parameter value)";
  }
  std::cerr << "\n";
  return kExitOk;
}

}  // namespace

void RegisterImportanceCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<ImportanceFlags>();
  CLI::App* cmd = app.add_subcommand(
      "importance", "Print each searched parameter's importance (fANOVA), most important first");
  cmd->add_option("study", flags->study, "Study id or name")->required();
  cmd->add_option("--db", flags->db, "The results database to read (opened read-only)")->required();
  cmd->add_option("--seed", flags->options.seed, "Seed of the random forest")
      ->capture_default_str();
  cmd->add_option("--trees", flags->options.n_trees, "Trees in the random forest")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->callback([flags, exit_code] { *exit_code = RunImportance(*flags); });
}

}  // namespace hpsearch::cli
