// hpsearch status [STUDY], best STUDY and cancel STUDY: one-call views and actions on the
// coordinator.
#include <iostream>

#include "absl/strings/str_format.h"
#include "cli/client.h"
#include "cli/commands.h"

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

int RunStatus(const CoordinatorConnection& connection, const std::string& study_name) {
  auto* stub = connection.studies();
  if (study_name.empty()) {
    v1::ListStudiesResponse response;
    auto context = CallContext();
    grpc::Status status = stub->ListStudies(context.get(), {}, &response);
    if (!status.ok()) return connection.ReportFailure("status", status);
    std::cout << absl::StrFormat("%-20s %-24s %-10s %-40s %s\n", "id", "name", "state", "trials",
                                 "best");
    for (const v1::Study& s : response.studies()) {
      std::cout << absl::StrFormat(
          "%-20s %-24s %-10s %-40s %s\n", s.id(), s.spec().name(), StateWord(s.state()), Counts(s),
          s.has_best_trial_number()
              ? absl::StrFormat("trial %d: %.4f", s.best_trial_number(), s.best_objective_value())
              : "-");
    }
    return kExitOk;
  }
  v1::GetStudyRequest request;
  request.set_study(study_name);
  v1::Study study;
  auto context = CallContext();
  grpc::Status status = stub->GetStudy(context.get(), request, &study);
  if (!status.ok()) return connection.ReportFailure("status", status);
  std::cout << "study:   " << study.spec().name() << " (" << study.id() << ")\n"
            << "state:   " << StateWord(study.state()) << "\n"
            << "trials:  " << Counts(study) << " of n_trials " << study.spec().budget().n_trials()
            << "\n";
  if (!study.state_reason().empty()) std::cout << "reason:  " << study.state_reason() << "\n";
  if (study.has_best_trial_number()) {
    std::cout << absl::StrFormat("best:    trial %d, %s = %.4f\n", study.best_trial_number(),
                                 study.spec().objective().metric(), study.best_objective_value());
  }
  if (study.has_final_trial_number()) {
    std::cout << "final:   trial " << study.final_trial_number() << "\n";
  }
  return kExitOk;
}

int RunBest(const CoordinatorConnection& connection, const std::string& study_name) {
  auto* stub = connection.studies();
  v1::GetStudyRequest request;
  request.set_study(study_name);
  v1::Study study;
  auto context = CallContext();
  grpc::Status status = stub->GetStudy(context.get(), request, &study);
  if (!status.ok()) return connection.ReportFailure("best", status);
  if (!study.has_best_trial_number()) {
    std::cerr << "hpsearch best: study " << study.spec().name()
              << " has no best trial yet (it is chosen when the search ends; state "
              << StateWord(study.state()) << ")\n";
    return kExitFailure;
  }
  v1::GetTrialRequest trial_request;
  trial_request.set_study(study.id());
  trial_request.set_number(study.best_trial_number());
  v1::Trial trial;
  auto trial_context = CallContext();
  status = stub->GetTrial(trial_context.get(), trial_request, &trial);
  if (!status.ok()) return connection.ReportFailure("best", status);
  std::cout << absl::StrFormat("trial %d: %s = %.6g\n", trial.number(),
                               study.spec().objective().metric(), study.best_objective_value());
  for (const v1::ParamAssignment& p : trial.params()) {
    std::cout << "  " << p.name() << ": " << ValueText(p.value()) << "\n";
  }
  std::cout << "seed: " << trial.seed() << "\n"
            << "why: " << study.state_reason() << "\n";
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
  auto study = std::make_shared<std::string>();
  auto reason = std::make_shared<std::string>("cancelled from the command line");

  CLI::App* status = app.add_subcommand("status", "Show all studies, or one study in detail");
  status->add_option("study", *study, "Study id or name");
  AddConnectionOptions(status, connection.get());
  status->callback([=] {
    if (auto opened = OpenConnection("status", *connection, exit_code)) {
      *exit_code = RunStatus(*opened, *study);
    }
  });

  CLI::App* best = app.add_subcommand("best", "Show a study's best trial and why it was chosen");
  best->add_option("study", *study, "Study id or name")->required();
  AddConnectionOptions(best, connection.get());
  best->callback([=] {
    if (auto opened = OpenConnection("best", *connection, exit_code)) {
      *exit_code = RunBest(*opened, *study);
    }
  });

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
