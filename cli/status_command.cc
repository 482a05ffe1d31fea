// hpsearch status [STUDY], best STUDY and cancel STUDY: views of a study (from the coordinator, or
// with --db from the results database alone) and cancelling one on the coordinator.
#include <iostream>

#include "absl/strings/str_format.h"
#include "cli/client.h"
#include "cli/commands.h"
#include "cli/study_source.h"
#include "server/study_file/study_view.h"

namespace hpsearch::cli {
namespace {

std::string Counts(const v1::Study& study) {
  std::string text;
  for (const char* state : {"waiting", "running", "complete", "pruned", "failed"}) {
    auto it = study.trial_counts().find(state);
    if (it == study.trial_counts().end()) continue;
    if (!text.empty()) text += " ";
    text += absl::StrFormat("%s=%d", state, it->second);
  }
  return text.empty() ? "-" : text;
}

std::string BestText(const v1::Study& study, const v1::Trial* so_far) {
  if (study.has_best_trial_number()) {
    return absl::StrFormat("trial %d: %.4f", study.best_trial_number(),
                           study.best_objective_value());
  }
  if (so_far != nullptr) {
    return absl::StrFormat("trial %d: %.4f (so far)", so_far->number(), so_far->objective_value());
  }
  return "-";
}

int RunStatus(const StudySource& source, const std::string& study_name) {
  if (study_name.empty()) {
    absl::StatusOr<std::vector<v1::Study>> studies = LoadStudiesFrom(source);
    if (!studies.ok()) return ReportLoadError("status", studies.status());
    std::cout << absl::StrFormat("%-20s %-24s %-10s %-40s %s\n", "id", "name", "state", "trials",
                                 "best");
    for (const v1::Study& s : *studies) {
      std::cout << absl::StrFormat("%-20s %-24s %-10s %-40s %s\n", s.id(), s.spec().name(),
                                   StateWord(s.state()), Counts(s),
                                   s.has_best_trial_number() ? BestText(s, nullptr) : "-");
    }
    return kExitOk;
  }
  absl::StatusOr<StudyAndTrials> loaded = LoadStudyFrom(source, study_name);
  if (!loaded.ok()) return ReportLoadError("status", loaded.status());
  const v1::Study& study = loaded->study;
  std::cout << "study:   " << study.spec().name() << " (" << study.id() << ")\n"
            << "state:   " << StateWord(study.state()) << "\n"
            << "trials:  " << Counts(study) << " of n_trials " << study.spec().budget().n_trials()
            << "\n";
  if (!study.state_reason().empty()) std::cout << "reason:  " << study.state_reason() << "\n";
  const std::string metric = server::ObjectiveMetric(study.spec());
  if (study.has_best_trial_number()) {
    std::cout << absl::StrFormat("best:    trial %d, %s = %.4f\n", study.best_trial_number(),
                                 metric, study.best_objective_value());
  } else if (const v1::Trial* so_far = BestTrialSoFar(study.spec(), loaded->trials)) {
    std::cout << absl::StrFormat("best so far: trial %d, %s = %.4f\n", so_far->number(), metric,
                                 so_far->objective_value());
  }
  if (study.has_final_trial_number()) {
    std::cout << "final:   trial " << study.final_trial_number() << "\n";
  }
  return kExitOk;
}

int RunBest(const StudySource& source, const std::string& study_name) {
  absl::StatusOr<StudyAndTrials> loaded = LoadStudyFrom(source, study_name);
  if (!loaded.ok()) return ReportLoadError("best", loaded.status());
  const v1::Study& study = loaded->study;
  const std::string metric = server::ObjectiveMetric(study.spec());
  const v1::Trial* best = nullptr;
  const bool decided = study.has_best_trial_number();
  if (decided) {
    for (const v1::Trial& t : loaded->trials) {
      if (t.number() == study.best_trial_number()) best = &t;
    }
  } else {
    best = BestTrialSoFar(study.spec(), loaded->trials);
  }
  if (best == nullptr) {
    std::cerr << "hpsearch best: study " << study.spec().name()
              << " has no complete search trial yet (state " << StateWord(study.state()) << ", "
              << Counts(study) << ")\n";
    return kExitFailure;
  }
  const double value = decided ? study.best_objective_value() : best->objective_value();
  if (decided) {
    std::cout << absl::StrFormat("trial %d: %s = %.6g\n", best->number(), metric, value);
  } else {
    std::cout << absl::StrFormat("best so far: trial %d: %s = %.6g\n", best->number(), metric,
                                 value);
  }
  for (const v1::ParamAssignment& p : best->params()) {
    std::cout << "  " << p.name() << ": " << FullValueText(p.value()) << "\n";
  }
  std::cout << "seed: " << best->seed() << "\n";
  if (decided) {
    std::cout << "why: " << study.state_reason() << "\n";
  } else {
    int complete = 0;
    for (const v1::Trial& t : loaded->trials) {
      complete += t.kind() == v1::TRIAL_KIND_SEARCH && t.state() == v1::TRIAL_STATE_COMPLETE;
    }
    std::cout << "why: the best of " << complete << " complete trials so far; the study is "
              << StateWord(study.state())
              << (study.state() == v1::STUDY_STATE_SEARCHING
                      ? " and picks its best trial when the search ends"
                      : "")
              << "\n";
  }
  return kExitOk;
}

int RunCancel(const CoordinatorConnection& connection, const std::string& study_name,
              const std::string& reason) {
  auto* stub = connection.studies();
  v1::CancelStudyRequest request;
  request.set_study(study_name);
  request.set_reason(reason);
  v1::Study study;
  auto context = CallContext();
  grpc::Status status = stub->CancelStudy(context.get(), request, &study);
  if (!status.ok()) return connection.ReportFailure("cancel", status);
  std::cout << "study " << study.spec().name() << " cancelled; running trials were told to stop\n";
  return kExitOk;
}

}  // namespace

void RegisterStatusCommands(CLI::App& app, int* exit_code) {
  auto connection = std::make_shared<ConnectionFlags>();
  auto source = std::make_shared<StudySource>();
  auto study = std::make_shared<std::string>();
  auto reason = std::make_shared<std::string>("cancelled from the command line");

  CLI::App* status = app.add_subcommand("status", "Show all studies, or one study in detail");
  status->add_option("study", *study, "Study id or name");
  AddStudySourceOptions(status, source.get());
  status->callback([=] { *exit_code = RunStatus(*source, *study); });

  CLI::App* best = app.add_subcommand("best", "Show a study's best trial and why it was chosen");
  best->add_option("study", *study, "Study id or name")->required();
  AddStudySourceOptions(best, source.get());
  best->callback([=] { *exit_code = RunBest(*source, *study); });

  CLI::App* cancel = app.add_subcommand("cancel", "Cancel a study and stop its running trials");
  cancel->add_option("study", *study, "Study id or name")->required();
  cancel->add_option("--reason", *reason, "Recorded with the study")->capture_default_str();
  AddConnectionOptions(cancel, connection.get());
  cancel->callback([=] {
    if (auto opened = OpenConnection("cancel", *connection, exit_code)) {
      *exit_code = RunCancel(*opened, *study, *reason);
    }
  });
}

}  // namespace hpsearch::cli
