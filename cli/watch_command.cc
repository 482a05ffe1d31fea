// hpsearch watch STUDY: follows a study's event stream until it ends. On a terminal the trial table
// is redrawn on every event; otherwise each event is printed as a line. FollowStudy() also serves
// `submit --wait`.
#include <unistd.h>

#include <iostream>
#include <map>

#include "absl/strings/str_format.h"
#include "cli/client.h"
#include "cli/commands.h"

namespace hpsearch::cli {
namespace {

void PrintTable(const v1::Study& study, const std::map<int, v1::Trial>& trials, std::ostream& out) {
  out << absl::StrFormat("study %s (%s): %s\n", study.spec().name(), study.id(),
                         StateWord(study.state()));
  out << absl::StrFormat("%5s %-6s %-9s %7s %6s %10s  %s\n", "trial", "kind", "state", "attempt",
                         "epochs", "objective", "params");
  for (const auto& [number, t] : trials) {
    out << absl::StrFormat(
        "%5d %-6s %-9s %7d %6d %10s  %s\n", number,
        t.kind() == v1::TRIAL_KIND_FINAL ? "final" : "search", StateWord(t.state()), t.attempt(),
        t.epochs_size(),
        t.has_objective_value() ? absl::StrFormat("%.4f", t.objective_value()) : "-",
        ParamsText(t.params()));
  }
}

}  // namespace

int FollowStudy(const CoordinatorConnection& connection, const std::string& study_name,
                bool live_table, std::ostream& out) {
  FollowOptions options;
  options.live_table = live_table;
  return FollowStudy(connection, study_name, options, out);
}

int FollowStudy(const CoordinatorConnection& connection, const std::string& study_name,
                const FollowOptions& options, std::ostream& out) {
  const bool live_table = options.live_table;
  auto* stub = connection.studies();
  grpc::ClientContext own_context;
  grpc::ClientContext& context = options.context != nullptr ? *options.context : own_context;
  v1::WatchStudyRequest request;
  request.set_study(study_name);
  std::unique_ptr<grpc::ClientReader<v1::StudyEvent>> reader = stub->WatchStudy(&context, request);
  v1::StudyEvent event;
  v1::Study study;
  std::map<int, v1::Trial> trials;
  while (reader->Read(&event)) {
    if (event.has_study()) {
      study = event.study();
      if (!live_table) {
        out << "study " << study.spec().name() << ": " << StateWord(study.state())
            << (study.state_reason().empty() ? "" : " (" + study.state_reason() + ")") << "\n";
      }
    } else if (event.has_trial()) {
      const v1::Trial& t = event.trial();
      bool changed = trials[t.number()].state() != t.state() || !trials.count(t.number());
      trials[t.number()] = t;
      if (!live_table && changed) {
        out << "trial " << t.number() << (t.kind() == v1::TRIAL_KIND_FINAL ? " (final)" : "")
            << ": " << StateWord(t.state()) << " attempt " << t.attempt()
            << (t.has_objective_value() ? absl::StrFormat(" objective %.4f", t.objective_value())
                                        : "")
            << (t.error().empty() ? "" : " error: " + t.error().substr(0, t.error().find('\n')))
            << "\n";
      }
    } else if (event.has_epoch()) {
      const v1::EpochEvent& e = event.epoch();
      *trials[e.trial_number()].add_epochs() = e.metrics();
      if (!live_table) {
        out << absl::StrFormat("trial %d epoch %d:", e.trial_number(), e.metrics().epoch());
        if (e.metrics().has_train_loss())
          out << absl::StrFormat(" train_loss=%.4f", e.metrics().train_loss());
        if (e.metrics().has_val_loss())
          out << absl::StrFormat(" val_loss=%.4f", e.metrics().val_loss());
        if (e.metrics().has_val_accuracy()) {
          out << absl::StrFormat(" val_accuracy=%.4f", e.metrics().val_accuracy());
        }
        if (e.metrics().has_val_f1()) out << absl::StrFormat(" val_f1=%.4f", e.metrics().val_f1());
        out << "\n";
      }
    }
    if (live_table) {
      out << "\033[H\033[2J";
      PrintTable(study, trials, out);
      if (options.footer) out << options.footer();
    }
    out.flush();
  }
  grpc::Status status = reader->Finish();
  if (status.error_code() == grpc::StatusCode::CANCELLED && options.context != nullptr) {
    return kExitFailure;  // the caller stopped following
  }
  if (!status.ok()) return connection.ReportFailure("watch", status);
  if (!live_table) PrintTable(study, trials, out);
  return study.state() == v1::STUDY_STATE_COMPLETE ? kExitOk : kExitFailure;
}

void RegisterWatchCommand(CLI::App& app, int* exit_code) {
  auto connection = std::make_shared<ConnectionFlags>();
  auto study = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("watch", "Follow a study live until it ends");
  cmd->add_option("study", *study, "Study id or name")->required();
  AddConnectionOptions(cmd, connection.get());
  cmd->callback([=] {
    if (auto opened = OpenConnection("watch", *connection, exit_code)) {
      *exit_code = FollowStudy(*opened, *study, ::isatty(1) != 0, std::cout);
    }
  });
}

}  // namespace hpsearch::cli
