// control_plane_bench: the coordinator's throughput with production settings and real gRPC over
// loopback. Starts `hpsearch serve` (durability as asked) and N worker processes (this program in
// --worker mode: the real Worker with a runner that does no work and reports E epochs), submits one
// study of T trials once every worker is registered, and times it to COMPLETE. Prints trials/s,
// epoch reports/s, p50/p99 AcquireTrial and ReportEpoch latency as the workers saw them, and lost
// reports (acknowledged epochs missing from the database; must be 0). With --repeat N it runs N
// rounds, each with a fresh coordinator and workers, and adds each column's median: on a shared
// machine one round's trials/s moves by a third.
//
//   control_plane_bench [--workers 64] [--trials 4000] [--epochs 5] [--durability normal|full]
//                       [--repeat 1]
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "CLI/CLI.hpp"
#include "absl/synchronization/mutex.h"
#include "db/database.h"
#include "hpsearch/v1/service.grpc.pb.h"
#include "spdlog/spdlog.h"
#include "worker/worker.h"

namespace {

namespace fs = std::filesystem;

// Reports `epochs` epochs at once and completes: everything but the coordinator costs nothing. Like
// the QLoRA runner, it hands its last epoch to the completion (TrialReporter::ReportLastEpoch), so
// a trial is epochs - 1 epoch reports and one completion that also leases the next trial, all
// messages on the worker's report stream.
class ZeroWorkRunner : public hpsearch::worker::Runner {
 public:
  ZeroWorkRunner(int epochs, std::vector<double>* report_us, std::mutex* mu, int64_t* acked)
      : epochs_(epochs), report_us_(report_us), mu_(mu), acked_(acked) {}
  hpsearch::worker::RunOutcome Run(const hpsearch::v1::TrialSpec& trial,
                                   hpsearch::worker::TrialReporter* reporter) override {
    hpsearch::worker::RunOutcome outcome;
    for (int epoch = 1; epoch <= epochs_; ++epoch) {
      hpsearch::v1::EpochMetrics metrics;
      metrics.set_epoch(epoch);
      metrics.set_val_accuracy(0.001 * (trial.trial_number() % 1000) + 0.0001 * epoch);
      if (epoch == epochs_) {
        // The last epoch rides on the completion (counted acknowledged by on_completed).
        if (absl::Status status = reporter->ReportLastEpoch(metrics); !status.ok()) {
          outcome.error = std::string(status.message());
          return outcome;
        }
        break;
      }
      auto start = std::chrono::steady_clock::now();
      absl::StatusOr<bool> go_on = reporter->ReportEpoch(metrics);
      double us =
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
              .count();
      if (!go_on.ok()) {
        outcome.error = std::string(go_on.status().message());
        return outcome;
      }
      std::lock_guard<std::mutex> lock(*mu_);
      report_us_->push_back(us);
      ++*acked_;
    }
    outcome.kind = hpsearch::worker::RunOutcome::Kind::kComplete;
    return outcome;
  }

 private:
  int epochs_;
  std::vector<double>* report_us_;
  std::mutex* mu_;
  int64_t* acked_;
};

int RunWorker(const std::string& address, int epochs, const std::string& stats_path) {
  spdlog::set_level(spdlog::level::warn);
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // The process settings of hpsearch-worker's main (worker/main.cc).
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  std::vector<double> report_us, acquire_us;
  std::mutex mu;
  int64_t acked = 0;
  hpsearch::worker::WorkerOptions options;
  options.coordinator_address = address;
  options.info.set_name("bench-" + std::to_string(::getpid()));
  options.info.set_pid(::getpid());
  options.acquire_wait = absl::Seconds(2);
  options.exit_when_idle = true;
  // The first acquisition waits for the study to be submitted: not a latency of the coordinator.
  bool first = true;
  options.on_acquired = [&](absl::Duration d) {
    std::lock_guard<std::mutex> lock(mu);
    if (!first) acquire_us.push_back(absl::ToDoubleMicroseconds(d));
    first = false;
  };
  std::map<hpsearch::v1::RunnerType, std::unique_ptr<hpsearch::worker::Runner>> runners;
  options.on_completed = [&](bool carried_last_epoch) {
    std::lock_guard<std::mutex> lock(mu);
    if (carried_last_epoch) ++acked;
  };
  runners[hpsearch::v1::RUNNER_TYPE_COMMAND] =
      std::make_unique<ZeroWorkRunner>(epochs, &report_us, &mu, &acked);
  hpsearch::worker::Worker worker(options, std::move(runners));
  // Wait (registered) until the study is submitted: the first long-polls simply come back empty.
  absl::Status status;
  do {
    status = worker.Run();
  } while (status.ok() && worker.trials_run() == 0);
  std::ofstream out(stats_path);
  out << "acked " << acked << "\ntrials " << worker.trials_run() << "\n";
  for (double us : report_us) out << "report " << us << "\n";
  for (double us : acquire_us) out << "acquire " << us << "\n";
  return status.ok() ? 0 : 1;
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t index = std::min(values.size() - 1, static_cast<size_t>(p / 100.0 * values.size()));
  return values[index];
}

std::string Self() { return fs::read_symlink("/proc/self/exe").string(); }

// CPU seconds (user + system) a live process has used so far, from /proc/PID/stat; 0 when gone.
double CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t paren = text.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream fields(text.substr(paren + 2));
  std::string field;
  double ticks = 0;
  // Fields after "(comm) ": state is field 3; utime and stime are fields 14 and 15.
  for (int index = 3; index <= 15 && fields >> field; ++index) {
    if (index == 14 || index == 15) ticks += std::stod(field);
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// One round's figures.
struct Round {
  double trials_per_s = 0, reports_per_s = 0;
  double acquire_p50_ms = 0, acquire_p99_ms = 0, report_p50_ms = 0, report_p99_ms = 0;
  int64_t trials = 0, acked = 0, stored = 0;
  double seconds = 0, serve_cpu = 0, workers_cpu = 0;
};

// Starts a coordinator and the workers, runs one study to its end and measures it. False when the
// coordinator or the study could not start.
bool RunRound(int workers, int trials, int epochs, const std::string& durability, Round* round) {
  fs::path dir = fs::temp_directory_path() / ("hpsearch-bench-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::path hpsearch = fs::path(Self()).parent_path() / "hpsearch";
  fs::path db = dir / "results.db";
  int serve_out[2];
  if (::pipe(serve_out) != 0) return false;
  pid_t serve = ::fork();
  if (serve == 0) {
    ::dup2(serve_out[1], 1);
    int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 2);
    ::execl(hpsearch.c_str(), "hpsearch", "serve", "--db", db.c_str(), "--listen", "127.0.0.1:0",
            "--durability", durability.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(serve_out[1]);
  std::string line;
  char c;
  while (::read(serve_out[0], &c, 1) == 1 && c != '\n') line += c;
  std::smatch match;
  if (!std::regex_search(line, match, std::regex("(127\\.0\\.0\\.1:[0-9]+)"))) {
    std::cerr << "control_plane_bench: coordinator did not start: " << line << "\n";
    return false;
  }
  std::string address = match[1];

  std::vector<pid_t> pids;
  for (int i = 0; i < workers; ++i) {
    std::string stats = (dir / ("worker-" + std::to_string(i) + ".txt")).string();
    pid_t pid = ::fork();
    if (pid == 0) {
      std::string self = Self();
      std::string epochs_text = std::to_string(epochs);
      int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, 2);
      ::execl(self.c_str(), "control_plane_bench", "--worker", address.c_str(), "--stats",
              stats.c_str(), "--epochs", epochs_text.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    pids.push_back(pid);
  }
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto studies = hpsearch::v1::StudyService::NewStub(channel);
  // Every worker registered before the clock starts (start-up costs are not the coordinator's).
  {
    hpsearch::db::DatabaseOptions options;
    options.read_only = true;
    for (int tries = 0; tries < 1200; ++tries) {
      auto reader = hpsearch::db::Database::Open(db.string(), options);
      if (reader.ok()) {
        auto stmt = (*reader)->GetCachedStatement("SELECT COUNT(*) FROM workers");
        if (stmt.ok() && (*stmt)->Step().value_or(false) && (*stmt)->ColumnInt64(0) >= workers)
          break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  hpsearch::v1::SubmitStudyRequest request;
  hpsearch::v1::StudySpec* spec = request.mutable_spec();
  spec->set_name("bench");
  spec->mutable_data()->set_train_file(HPSEARCH_SOURCE_DIR "/data/banking77/train.csv");
  spec->mutable_data()->set_test_file(HPSEARCH_SOURCE_DIR "/data/banking77/test.csv");
  spec->mutable_runner()->set_type(hpsearch::v1::RUNNER_TYPE_COMMAND);
  spec->mutable_runner()->add_command("/bin/true");
  auto* x = spec->add_search_space();
  x->set_name("x");
  x->mutable_float_range()->set_low(0);
  x->mutable_float_range()->set_high(1);
  spec->mutable_budget()->set_n_trials(trials);
  spec->mutable_budget()->set_parallelism(workers);
  spec->mutable_final_stage()->set_enabled(false);
  hpsearch::v1::SubmitStudyResponse submitted;
  // CPU of every process of the benchmark during the timed window: a figure that, unlike trials/s,
  // hardly moves when other programs share the machine.
  double serve_cpu = -CpuSeconds(serve), workers_cpu = 0;
  for (pid_t pid : pids) workers_cpu -= CpuSeconds(pid);
  auto start = std::chrono::steady_clock::now();
  {
    grpc::ClientContext context;
    grpc::Status status = studies->SubmitStudy(&context, request, &submitted);
    if (!status.ok()) {
      std::cerr << "control_plane_bench: SubmitStudy: " << status.error_message() << "\n";
      return false;
    }
  }
  double elapsed = 0;
  while (true) {
    grpc::ClientContext context;
    hpsearch::v1::GetStudyRequest get;
    get.set_study(submitted.study_id());
    hpsearch::v1::Study study;
    if (studies->GetStudy(&context, get, &study).ok() &&
        study.state() != hpsearch::v1::STUDY_STATE_SEARCHING) {
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      serve_cpu += CpuSeconds(serve);
      for (pid_t pid : pids) workers_cpu += CpuSeconds(pid);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (pid_t pid : pids) ::waitpid(pid, nullptr, 0);
  ::kill(serve, SIGTERM);
  ::waitpid(serve, nullptr, 0);

  std::vector<double> report_us, acquire_us;
  int64_t acked = 0, worker_trials = 0;
  for (int i = 0; i < workers; ++i) {
    std::ifstream in(dir / ("worker-" + std::to_string(i) + ".txt"));
    std::string key;
    double value;
    while (in >> key >> value) {
      if (key == "acked") acked += static_cast<int64_t>(value);
      if (key == "trials") worker_trials += static_cast<int64_t>(value);
      if (key == "report") report_us.push_back(value);
      if (key == "acquire") acquire_us.push_back(value);
    }
  }
  int64_t stored = 0;
  {
    hpsearch::db::DatabaseOptions options;
    options.read_only = true;
    auto reader = hpsearch::db::Database::Open(db.string(), options);
    auto stmt = (*reader)->GetCachedStatement("SELECT COUNT(*) FROM epochs");
    if (stmt.ok() && (*stmt)->Step().value_or(false)) stored = (*stmt)->ColumnInt64(0);
  }
  round->trials = worker_trials;
  round->acked = acked;
  round->stored = stored;
  round->seconds = elapsed;
  round->trials_per_s = worker_trials / elapsed;
  round->reports_per_s = acked / elapsed;
  round->acquire_p50_ms = Percentile(acquire_us, 50) / 1000;
  round->acquire_p99_ms = Percentile(acquire_us, 99) / 1000;
  round->report_p50_ms = Percentile(report_us, 50) / 1000;
  round->report_p99_ms = Percentile(report_us, 99) / 1000;
  round->serve_cpu = serve_cpu;
  round->workers_cpu = workers_cpu;
  fs::remove_all(dir);
  return true;
}

// CPU seconds of all processes per 1,000 trials.
double CpuPer1000(const Round& r) {
  return (r.serve_cpu + r.workers_cpu) * 1000 / static_cast<double>(std::max<int64_t>(r.trials, 1));
}

void PrintRow(const std::string& label, const Round& r, int64_t lost, double cpu_per_1000) {
  std::printf("| %s | %.0f | %.0f | %.2f / %.2f | %.2f / %.2f | %lld | %.2f |\n", label.c_str(),
              r.trials_per_s, r.reports_per_s, r.acquire_p50_ms, r.acquire_p99_ms, r.report_p50_ms,
              r.report_p99_ms, static_cast<long long>(lost), cpu_per_1000);
}

double Median(std::vector<double> values) { return Percentile(std::move(values), 50); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Coordinator throughput over loopback gRPC with N worker processes"};
  int workers = 64, trials = 4000, epochs = 5;
  std::string durability = "normal", worker_address, stats_path;
  app.add_option("--workers", workers)->capture_default_str();
  app.add_option("--trials", trials)->capture_default_str();
  app.add_option("--epochs", epochs, "Epoch reports per trial")->capture_default_str();
  app.add_option("--durability", durability, "normal or full")->capture_default_str();
  int repeat = 1;
  app.add_option("--repeat", repeat,
                 "Rounds, each with a fresh coordinator and workers; prints each and the median")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--worker", worker_address, "(internal) run as a worker of this coordinator");
  app.add_option("--stats", stats_path, "(internal) where a worker writes its figures");
  CLI11_PARSE(app, argc, argv);
  if (!worker_address.empty()) return RunWorker(worker_address, epochs, stats_path);

  std::printf(
      "control_plane_bench: %d worker processes, %d trials x %d epochs, loopback gRPC, "
      "durability %s\n",
      workers, trials, epochs, durability.c_str());
  std::printf(
      "| round | trials/s | epoch reports/s | AcquireTrial p50 / p99 (ms) | "
      "ReportEpoch p50 / p99 (ms) | lost reports | CPU s per 1,000 trials |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  std::fflush(stdout);
  std::vector<Round> rounds;
  bool lost = false;
  for (int i = 0; i < repeat; ++i) {
    Round round;
    if (!RunRound(workers, trials, epochs, durability, &round)) return 1;
    PrintRow(std::to_string(i + 1), round, round.acked - round.stored, CpuPer1000(round));
    std::fflush(stdout);
    lost = lost || round.acked != round.stored;
    rounds.push_back(round);
  }
  const Round& last = rounds.back();
  if (repeat > 1) {
    // Each column's median on its own (not one round's row).
    auto median = [&](double Round::*field) {
      std::vector<double> values;
      for (const Round& r : rounds) values.push_back(r.*field);
      return Median(values);
    };
    Round m;
    m.trials_per_s = median(&Round::trials_per_s);
    m.reports_per_s = median(&Round::reports_per_s);
    m.acquire_p50_ms = median(&Round::acquire_p50_ms);
    m.acquire_p99_ms = median(&Round::acquire_p99_ms);
    m.report_p50_ms = median(&Round::report_p50_ms);
    m.report_p99_ms = median(&Round::report_p99_ms);
    std::vector<double> cpu;
    int64_t lost_total = 0;
    for (const Round& r : rounds) {
      cpu.push_back(CpuPer1000(r));
      lost_total += r.acked - r.stored;
    }
    PrintRow("median", m, lost_total, Median(cpu));
  }
  std::printf(
      "(last round: %lld trials and %lld acknowledged reports in %.2f s; %lld epochs in the "
      "database)\n",
      static_cast<long long>(last.trials), static_cast<long long>(last.acked), last.seconds,
      static_cast<long long>(last.stored));
  std::printf(
      "CPU in the last round's timed window: coordinator %.2f s, workers %.2f s; %.2f CPU s per "
      "1,000 trials (%.2f coordinator + %.2f workers)\n",
      last.serve_cpu, last.workers_cpu, (last.serve_cpu + last.workers_cpu) * 1000 / last.trials,
      last.serve_cpu * 1000 / last.trials, last.workers_cpu * 1000 / last.trials);
  return lost ? 1 : 0;
}
