// hpsearch run STUDY.yaml [--devices cpu,cuda:0,...|--workers N] [--db FILE] [--report DIR]: the
// all-in-one local mode. It embeds the coordinator (server::CoordinatorHost, the same code as
// `hpsearch serve`) on a free loopback port, submits the study (resuming the one of that name in
// the database when its spec and data hashes are unchanged), starts one `hpsearch-worker` per
// device (it never trains in-process), shows the live trial table, and at the end prints the best
// trial and the test figures and writes the report. Ctrl-C stops the workers (their trials go back
// to the queue), commits, and exits 130 with the command that resumes.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "cli/client.h"
#include "cli/commands.h"
#include "cli/dashboard.h"
#include "cli/data_hashes.h"
#include "cli/local_workers.h"
#include "rpc/auth_token.h"
#include "rpc/security.h"
#include "server/coordinator_host.h"
#include "server/study_file/study_file.h"
#include "server/study_file/study_view.h"
#include "spdlog/sinks/basic_file_sink.h"
#include "spdlog/spdlog.h"

namespace hpsearch::cli {
namespace {

namespace fs = std::filesystem;

constexpr int kExitInterrupted = 130;

struct RunFlags {
  std::string study_file;
  DashboardSettings dashboard;  // --no-dashboard, --dashboard-listen
  std::string devices;
  int workers = 0;
  std::string db;
  std::string report_dir;
  int n_trials = 0;  // --n-trials; 0: the study file's budget.n_trials
};

// The data files' SHA-256 as SubmitStudy carries them (path -> hash); a file that cannot be read
// is an error here, since the workers would fail on it too.
absl::StatusOr<std::map<std::string, std::string>> DataFileHashes(const v1::DataSpec& data) {
  std::map<std::string, std::string> hashes;
  for (auto& [path, hash] : HashDataFiles(data)) {
    if (!hash.ok()) return hash.status();
    hashes[path] = *std::move(hash);
  }
  return hashes;
}

std::string Seconds(absl::Duration d) {
  const int64_t s = absl::ToInt64Seconds(d);
  return s >= 60 ? absl::StrFormat("%dm%02ds", s / 60, s % 60) : absl::StrFormat("%ds", s);
}

std::string Figure(bool has, double value) { return has ? absl::StrFormat("%.4f", value) : "-"; }

// The study's outcome: every trial's objective, the best trial, the final trial's test figures.
void PrintOutcome(server::Coordinator* coordinator, const std::string& study_id,
                  std::ostream& out) {
  absl::StatusOr<v1::Study> study = coordinator->GetStudy(study_id);
  absl::StatusOr<std::vector<v1::Trial>> trials = coordinator->ListTrials(study_id);
  if (!study.ok() || !trials.ok()) return;
  const std::string metric = server::ObjectiveMetric(study->spec());
  out << "== study " << study->spec().name() << ": " << StateWord(study->state());
  if (!study->state_reason().empty()) out << " (" << study->state_reason() << ")";
  out << "\n";
  for (const v1::Trial& t : *trials) {
    if (t.kind() != v1::TRIAL_KIND_SEARCH) continue;
    out << absl::StrFormat("  trial %d: %-8s %s %s  %s\n", t.number(), StateWord(t.state()), metric,
                           Figure(t.has_objective_value(), t.objective_value()),
                           ParamsText(t.params()));
  }
  if (study->has_best_trial_number()) {
    out << absl::StrFormat("best trial: %d (%s %.4f)\n", study->best_trial_number(), metric,
                           study->best_objective_value());
  }
  for (const v1::Trial& t : *trials) {
    if (t.kind() != v1::TRIAL_KIND_FINAL) continue;
    bool converted = false;
    const bool reused = server::FinalTrialReused(study->spec(), t, &converted);
    out << "final trial " << t.number() << " (trial " << t.source_trial_number()
        << (reused ? "'s model reused, not retrained" : " retrained")
        << "): " << StateWord(t.state());
    if (converted) out << " (a retrain on the same data with the same seed would repeat it)";
    const v1::TrainSummary& train = t.result().train();
    if (train.global_steps() > 0) {
      out << absl::StrFormat(", %d steps in %.1f s", train.global_steps(), train.runtime_seconds());
    }
    out << "\n";
    if (t.result().has_test()) {
      const v1::TestMetrics& test = t.result().test();
      out << "test: accuracy " << Figure(test.has_test_accuracy(), test.test_accuracy())
          << ", F1 weighted " << Figure(test.has_test_f1(), test.test_f1()) << ", F1 macro "
          << Figure(test.has_test_f1_macro(), test.test_f1_macro()) << ", loss "
          << Figure(test.has_test_loss(), test.test_loss()) << "\n";
    }
  }
}

int RunRun(const RunFlags& flags) {
  const absl::Time started = absl::Now();
  // Bad dashboard settings stop the run before it opens or writes the database.
  if (int bad = CheckDashboardSettings("run", flags.dashboard); bad != kExitOk) return bad;
  absl::StatusOr<server::LoadedStudy> loaded = server::LoadStudyFile(flags.study_file);
  if (!loaded.ok()) {
    std::cerr << "hpsearch run: " << loaded.status().message() << "\n";
    return kExitBadInput;
  }
  for (const server::StudyFileIssue& issue : loaded->issues) std::cerr << issue.ToString() << "\n";
  if (!loaded->ok()) {
    std::cerr << flags.study_file << ": invalid; nothing was run\n";
    return kExitBadInput;
  }
  if (flags.n_trials > 0) loaded->spec.mutable_budget()->set_n_trials(flags.n_trials);
  const v1::StudySpec& spec = loaded->spec;
  const int cores = std::max(1u, std::thread::hardware_concurrency());
  const int default_workers = std::max(1, std::min(server::BudgetOf(spec).parallelism, cores));
  absl::StatusOr<std::vector<std::string>> devices = ParseDevices(
      flags.devices, flags.devices.empty() && flags.workers == 0 ? default_workers : flags.workers);
  if (!devices.ok()) {
    std::cerr << "hpsearch run: " << devices.status().message() << "\n";
    return kExitBadInput;
  }
  if (spec.runner().type() != v1::RUNNER_TYPE_COMMAND) {
    // A worker that cannot run built-in trials on its device is never leased one: the study would
    // wait for ever. The answer is the build's, the same for every GPU: the first one is asked.
    auto gpu = std::find_if(devices->begin(), devices->end(),
                            [](const std::string& d) { return d != "cpu"; });
    absl::StatusOr<std::string> binary = WorkerBinary();
    if (gpu != devices->end() && binary.ok()) {
      absl::StatusOr<bool> runs = WorkerRunsBuiltInTrials(*binary, *gpu);
      if (!runs.ok()) {
        std::cerr << "hpsearch run: " << runs.status().message() << "\n";
        return kExitFailure;
      }
      if (!*runs) {
        std::cerr << "hpsearch run: " << *binary
                  << " was built without a CUDA LibTorch: it runs no built-in (qlora) trial on "
                  << *gpu << "; use --workers N (the CPU) or a CUDA build (docs/gpu.md)\n";
        return kExitBadInput;
      }
    }
  }
  absl::StatusOr<std::map<std::string, std::string>> hashes = DataFileHashes(spec.data());
  if (!hashes.ok()) {
    std::cerr << "hpsearch run: " << hashes.status().message() << "\n";
    return kExitBadInput;
  }

  const fs::path study_dir = fs::absolute(flags.study_file).parent_path();
  const std::string db_path =
      flags.db.empty() ? (study_dir / (spec.name() + ".db")).string() : flags.db;
  const fs::path db_dir = fs::absolute(db_path).parent_path();
  const fs::path logs = db_dir / (spec.name() + "-logs");
  const std::string report_dir =
      flags.report_dir.empty() ? (db_dir / (spec.name() + "-report")).string() : flags.report_dir;
  std::error_code error;
  fs::create_directories(logs, error);
  if (error) {
    std::cerr << "hpsearch run: cannot create " << logs.string() << ": " << error.message() << "\n";
    return kExitFailure;
  }
  // The terminal belongs to the trial table: the embedded coordinator logs to a file.
  spdlog::set_default_logger(
      spdlog::basic_logger_mt("hpsearch-run", (logs / "coordinator.log").string()));
  spdlog::flush_on(spdlog::level::info);
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  // Signals go to one sigwait() thread; block them before any thread (gRPC's included) starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // The embedded coordinator speaks plaintext on loopback without a token: the connection settings
  // meant for a remote coordinator must not reach this process's client or its workers. (Before
  // any thread starts: the environment is not thread-safe.)
  ::unsetenv(rpc::kAuthTokenFileEnv);
  ::unsetenv(rpc::kTlsCaEnv);
  server::CoordinatorHostOptions options;
  options.db_path = db_path;
  options.server.listen_address = "127.0.0.1:0";
  // Workers of an earlier run are gone (they only knew its port): restored leases need no grace.
  options.coordinator.restart_grace = absl::ZeroDuration();
  absl::StatusOr<std::unique_ptr<server::CoordinatorHost>> host =
      server::CoordinatorHost::Start(std::move(options));
  if (!host.ok()) {
    std::cerr << "hpsearch run: " << host.status().message() << "\n";
    return kExitFailure;
  }
  server::Coordinator* coordinator = (*host)->coordinator();
  const std::string address = absl::StrCat("127.0.0.1:", (*host)->port());
  absl::StatusOr<CoordinatorConnection> connection =
      CoordinatorConnection::Open(ConnectionFlags{address, "", ""});
  if (!connection.ok()) {
    std::cerr << "hpsearch run: " << connection.status().message() << "\n";
    return kExitFailure;
  }
  // First, in the shape `hpsearch serve` prints (scripts read the port from it): where a second
  // terminal reaches this run's coordinator.
  std::cout << "hpsearch run: listening on " << address << " (db " << db_path
            << "; from another terminal: hpsearch watch " << spec.name() << " --coordinator "
            << address << ")" << std::endl;
  const std::string resume =
      absl::StrCat("hpsearch run ", flags.study_file, " --db ", db_path,
                   flags.devices.empty() ? absl::StrCat(" --workers ", devices->size())
                                         : absl::StrCat(" --devices ", flags.devices),
                   flags.n_trials > 0 ? absl::StrCat(" --n-trials ", flags.n_trials) : "");

  v1::SubmitStudyRequest submit;
  *submit.mutable_spec() = spec;
  submit.set_resume_if_exists(true);
  submit.set_extend_budget(flags.n_trials > 0);
  for (const auto& [path, hash] : *hashes) (*submit.mutable_data_sha256())[path] = hash;
  absl::StatusOr<v1::SubmitStudyResponse> submitted = coordinator->SubmitStudy(submit);
  if (!submitted.ok()) {
    std::cerr << "hpsearch run: " << submitted.status().message() << "\n";
    if (submitted.status().code() == absl::StatusCode::kAlreadyExists ||
        submitted.status().code() == absl::StatusCode::kFailedPrecondition) {
      std::cerr << "  (" << db_path << " holds study '" << spec.name()
                << "' as first run: run the changed study with another name or --db FILE)\n";
    }
    (void)(*host)->Stop();
    // A bad spec, or one (or data) that differs from the stored study: the input needs fixing.
    return submitted.status().code() == absl::StatusCode::kInvalidArgument ||
                   submitted.status().code() == absl::StatusCode::kAlreadyExists ||
                   submitted.status().code() == absl::StatusCode::kFailedPrecondition
               ? kExitBadInput
               : kExitFailure;
  }
  for (const std::string& warning : submitted->warnings())
    std::cerr << "warning: " << warning << "\n";
  // The dashboard reads the file the coordinator has just opened (and migrated); its URL comes
  // before the study's first line.
  std::unique_ptr<dashboard::DashboardServer> web;
  if (!flags.dashboard.disabled) {
    int dashboard_exit = kExitOk;
    web = StartDashboard("run", db_path, flags.dashboard, &dashboard_exit);
    if (web == nullptr) {
      (void)(*host)->Stop();
      return dashboard_exit;
    }
  }
  const std::string study_id = submitted->study_id();
  std::cout << (submitted->resumed() ? "== resuming study " : "== study ") << spec.name() << " ("
            << study_id << "), results in " << db_path << ", logs in " << logs.string() << "\n";

  absl::StatusOr<v1::Study> study = coordinator->GetStudy(study_id);
  int exit_code = kExitOk;
  if (study.ok() && !server::StudyStateEnded(study->state())) {
    absl::StatusOr<std::string> binary = WorkerBinary();
    if (!binary.ok()) {
      std::cerr << "hpsearch run: " << binary.status().message() << "\n";
      (void)(*host)->Stop();
      return kExitFailure;
    }
    std::vector<LocalWorkerSpec> specs;
    const int threads = ThreadsPerWorker(static_cast<int>(devices->size()), cores);
    for (size_t i = 0; i < devices->size(); ++i) {
      const std::string name = absl::StrCat("run-", i + 1);
      specs.push_back({name, (*devices)[i], threads, (logs / (name + ".log")).string()});
    }
    LocalWorkers workers;
    if (absl::Status status = workers.Start(*binary, address, specs); !status.ok()) {
      std::cerr << "hpsearch run: " << status.message() << "\n";
      (void)(*host)->Stop();
      return kExitFailure;
    }
    std::cout << workers.Summary() << std::flush;

    std::atomic<int> signal_number{0};
    std::thread signal_thread([&signals, &signal_number] {
      int number = 0;
      if (sigwait(&signals, &number) == 0) signal_number = number;
    });
    absl::Mutex notices_mu;
    std::vector<std::string> notices;
    grpc::ClientContext follow_context;
    FollowOptions follow;
    follow.live_table = ::isatty(1) != 0;
    follow.context = &follow_context;
    follow.footer = [&] {
      absl::MutexLock lock(&notices_mu);
      std::string footer = "\n" + workers.Summary();
      for (const std::string& notice : notices) footer += notice + "\n";
      return footer;
    };
    std::atomic<bool> follow_done{false};
    std::thread follower([&] {
      FollowStudy(*connection, study_id, follow, std::cout);
      follow_done = true;
    });

    enum class End { kStudy, kSignal, kWorkersGone } end;
    while (true) {
      if (follow_done) {
        end = End::kStudy;
        break;
      }
      if (signal_number != 0) {
        end = End::kSignal;
        break;
      }
      for (std::string& line : workers.ReapExited()) {
        std::cerr << "hpsearch run: " << line << std::endl;
        absl::MutexLock lock(&notices_mu);
        notices.push_back(std::move(line));
      }
      if (workers.alive() == 0) {
        end = End::kWorkersGone;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (end == End::kSignal) {
      std::cerr << "\nhpsearch run: " << strsignal(signal_number)
                << ": stopping the workers (their trials go back to the queue)..." << std::endl;
    }
    // Idle workers exit at once; busy ones hand their trial back as retryable first.
    workers.StopAll(absl::Seconds(60));
    follow_context.TryCancel();
    follower.join();
    pthread_kill(signal_thread.native_handle(), SIGTERM);  // wakes it if no signal came
    signal_thread.join();
    if (end != End::kStudy) {
      absl::Status stopped = (*host)->Stop();
      absl::StatusOr<v1::Study> now = coordinator->GetStudy(study_id);
      if (end == End::kSignal) {
        std::cerr << "hpsearch run: interrupted; ";
      } else {
        std::cerr << "hpsearch run: every worker exited (see " << logs.string() << "); ";
      }
      std::cerr << "study " << spec.name() << " is saved in " << db_path;
      if (now.ok()) {
        const auto& counts = now->trial_counts();
        auto count = [&counts](const char* state) {
          auto it = counts.find(state);
          return it == counts.end() ? 0 : it->second;
        };
        std::cerr << " (" << count("complete") << " trials complete, " << count("waiting")
                  << " waiting)";
      }
      std::cerr << (stopped.ok() ? "" : absl::StrCat("; ", stopped.message()))
                << ".\nResume it with:\n  " << resume << "\n";
      return end == End::kSignal ? kExitInterrupted : kExitFailure;
    }
    study = coordinator->GetStudy(study_id);
  }

  std::cout << "\n";
  PrintOutcome(coordinator, study_id, std::cout);
  if (absl::Status status = (*host)->Stop(); !status.ok()) {
    std::cerr << "hpsearch run: " << status.message() << "\n";
    return kExitFailure;
  }
  std::cout << "report: ";
  if (WriteStudyReport(study_id, db_path, report_dir) != kExitOk) exit_code = kExitFailure;
  std::cout << "results: sqlite3 " << db_path << " 'SELECT * FROM trial_summary'\n";
  if (study.ok() && study->has_final_trial_number()) {
    std::cout << "adapter: hpsearch export " << spec.name() << " --db " << db_path << " -o "
              << (db_dir / (spec.name() + "-adapter")).string() << "\n";
  }
  std::cout << "finished in " << Seconds(absl::Now() - started) << "\n";
  if (!study.ok() || study->state() != v1::STUDY_STATE_COMPLETE) exit_code = kExitFailure;
  return exit_code;
}

}  // namespace

void RegisterRunCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<RunFlags>();
  CLI::App* cmd = app.add_subcommand(
      "run",
      "Run a study on this machine: embedded coordinator, local workers, live table, report");
  cmd->add_option("study", flags->study_file, "Study YAML file")->required();
  AddDashboardOptions(cmd, &flags->dashboard);
  AddDashboardSecurityOptions(cmd, &flags->dashboard);
  auto* devices = cmd->add_option("--devices", flags->devices,
                                  "One worker per entry: cpu or cuda:K, comma-separated");
  auto* workers = cmd->add_option(
      "--workers", flags->workers,
      "N CPU workers sharing the cores (default: the study's parallelism, at most the cores)");
  devices->excludes(workers);
  cmd->add_option("--db", flags->db,
                  "Results database (default: STUDY_NAME.db beside the study file); an existing "
                  "study of the same name in it is resumed");
  cmd->add_option("--report", flags->report_dir,
                  "Report folder (default: STUDY_NAME-report beside the database)");
  cmd->add_option("--n-trials", flags->n_trials,
                  "Search trials in all (overrides budget.n_trials); more than a finished "
                  "study ran extends it, keeping its trials")
      ->check(CLI::PositiveNumber);
  cmd->callback([flags, exit_code] { *exit_code = RunRun(*flags); });
}

}  // namespace hpsearch::cli
