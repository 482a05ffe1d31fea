// hpsearch watch STUDY: follows a study's event stream until it ends. On a terminal the trial table
// is redrawn on every event and at least once a second, with the study's elapsed time, budget used,
// best so far and ETA, and each running trial's epoch, step, throughput and ETA; otherwise each
// event is printed as a line. FollowStudy() also serves `submit --wait`.
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cli/client.h"
#include "cli/commands.h"
#include "cli/study_source.h"
#include "server/report/report_format.h"
#include "server/report/study_progress.h"
#include "server/study_file/study_view.h"

namespace hpsearch::cli {
namespace {

// The study's line: state, elapsed time, budget used, best so far and the ETA
// (server/report/study_progress.h, which the dashboard shows too).
std::string StudyLine(const v1::Study& study, const std::map<int, v1::Trial>& trials,
                      absl::Time now) {
  const v1::StudySpec& spec = study.spec();
  std::string line =
      absl::StrFormat("study %s (%s): %s", spec.name(), study.id(), StateWord(study.state()));
  std::vector<v1::Trial> list;
  std::vector<const v1::Trial*> pointers;
  for (const auto& [number, t] : trials) {
    list.push_back(t);
    pointers.push_back(&t);
  }
  const server::StudyProgress progress = server::EstimateStudyProgress(study, pointers, now);
  if (study.created_unix_ms() > 0) {
    absl::StrAppend(&line, ", elapsed ", DurationText(progress.elapsed_seconds));
  }
  absl::StrAppendFormat(&line, ", search trials %d/%d (%d running)", progress.search_ended,
                        progress.search_budget, progress.search_running);
  if (const v1::Trial* best = BestTrialSoFar(spec, list)) {
    absl::StrAppendFormat(&line, "%s: trial %d %s %.4f",
                          study.has_best_trial_number() ? ", best" : ", best so far",
                          best->number(), server::ObjectiveMetric(spec), best->objective_value());
  }
  if (progress.eta_seconds) {
    absl::StrAppend(&line, ", ETA ~", DurationText(*progress.eta_seconds));
  }
  return line;
}

void PrintTable(const v1::Study& study, const std::map<int, v1::Trial>& trials, std::ostream& out,
                absl::Time now = absl::Now()) {
  out << StudyLine(study, trials, now) << "\n";
  out << absl::StrFormat("%5s %-6s %-9s %7s %6s %10s  %s\n", "trial", "kind", "state", "attempt",
                         "epochs", "objective", "params / progress");
  for (const auto& [number, t] : trials) {
    std::string tail = ParamsText(t.params());
    const std::string progress = TrialProgressText(study.spec(), t, now);
    if (!progress.empty()) tail += "  [" + progress + "]";
    if (t.has_prune_reason()) tail += "  pruned: " + server::PruneReasonText(t.prune_reason());
    out << absl::StrFormat(
        "%5d %-6s %-9s %7d %6d %10s  %s\n", number,
        t.kind() == v1::TRIAL_KIND_FINAL ? "final" : "search", StateWord(t.state()), t.attempt(),
        t.epochs_size(),
        t.has_objective_value() ? absl::StrFormat("%.4f", t.objective_value()) : "-", tail);
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
  // On a terminal the table is redrawn on every event and at least once a second (elapsed time,
  // ETAs), by this thread; `mu` keeps it and the event loop apart.
  absl::Mutex mu;
  bool following = true;
  bool have_study = false;
  auto draw = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    out << "\033[H\033[2J";
    PrintTable(study, trials, out);
    if (options.footer) out << options.footer();
    out.flush();
  };
  std::thread redraw;
  if (live_table) {
    redraw = std::thread([&] {
      absl::MutexLock lock(&mu);
      while (following) {
        mu.AwaitWithTimeout(absl::Condition(
                                +[](bool* f) { return !*f; }, &following),
                            absl::Seconds(1));
        if (following && have_study) draw();
      }
    });
  }
  struct StopRedraw {
    absl::Mutex* mu;
    bool* following;
    std::thread* thread;
    ~StopRedraw() {
      {
        absl::MutexLock lock(mu);
        *following = false;
      }
      if (thread->joinable()) thread->join();
    }
  } stop_redraw{&mu, &following, &redraw};
  while (reader->Read(&event)) {
    absl::MutexLock lock(&mu);
    if (event.has_study()) {
      study = event.study();
      have_study = true;
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
    if (live_table) draw();
    out.flush();
  }
  {
    absl::MutexLock lock(&mu);
    following = false;
  }
  if (redraw.joinable()) redraw.join();
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
