// Cluster: a real coordinator (`hpsearch serve`) on an ephemeral 127.0.0.1 port over a temp-dir
// database, plus `hpsearch-worker` processes, for the control-plane integration tests. Short leases
// and ticks keep fault tests fast. Everything is killed and removed when the Cluster goes away.
#pragma once

#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "db/database.h"
#include "hpsearch/v1/service.grpc.pb.h"
#include "rpc/security.h"
#include "testing/process.h"
#include "testing/subprocess.h"
#include "testing/testing.h"

namespace hpsearch::testing {

struct StudyOptions {
  std::string name = "study";
  int n_trials = 4;
  int parallelism = 2;
  int max_retries = 2;
  int epochs = 2;
  double epoch_seconds = 0;
  std::string mode = "ok";
  double trial_timeout_seconds = 0;
  bool final_stage = true;
  // YAML lines of the search space (the fake trial takes --x) and any further top-level keys.
  std::string search_space = "  x: {type: float, low: 0.0, high: 1.0}\n";
  std::string extra_yaml;
  // Further arguments of the fake trial (e.g. --env_log FILE).
  std::vector<std::string> command_args;
  // The command instead of the fake trial (epochs, epoch_seconds, mode and command_args unused).
  std::vector<std::string> command;
};

// How the cluster's processes secure their connections (default: plaintext, no token).
struct ClusterSecurity {
  std::vector<std::string> serve_args;  // e.g. --auth-token-file F --tls-cert C --tls-key K
  std::vector<std::string>
      client_args;  // given to submit and every worker: --auth-token-file, --tls-ca
  rpc::ClientSecurityOptions stubs;  // the test's own stubs
};

class Cluster {
 public:
  // `lease_ttl_seconds`: short by default, so that tests of lease expiry run fast; a test that
  // starts dozens of processes takes a longer one, since on a loaded 2-core machine a worker's
  // heartbeat can wait longer than 2 s for a CPU and its lease would expire for that alone.
  explicit Cluster(ClusterSecurity security = {}, int lease_ttl_seconds = 2)
      : security_(std::move(security)), lease_ttl_seconds_(lease_ttl_seconds) {
    StartCoordinator(0);
  }

  std::string db_path() const { return (dir_ / "results.db").string(); }
  const std::string& address() const { return address_; }
  const TempDir& dir() const { return dir_; }
  ChildProcess& coordinator() { return *coordinator_; }

  // (Re)starts the coordinator; port 0 picks a free one, a restart passes the previous port.
  void StartCoordinator(int port) {
    std::string log = (dir_ / ("serve-" + std::to_string(++coordinator_starts_))).string();
    std::vector<std::string> argv{(BinDir() / "hpsearch").string(),
                                  "serve",
                                  "--db",
                                  db_path(),
                                  "--listen",
                                  "127.0.0.1:" + std::to_string(port),
                                  "--lease-ttl",
                                  std::to_string(lease_ttl_seconds_),
                                  "--heartbeat-interval",
                                  "0.3",
                                  "--restart-grace",
                                  "3",
                                  "--tick",
                                  "0.05"};
    argv.insert(argv.end(), security_.serve_args.begin(), security_.serve_args.end());
    coordinator_ = std::make_unique<ChildProcess>(argv, log);
    REQUIRE(coordinator_->WaitForStdout("listening on", std::chrono::seconds(20)));
    std::smatch match;
    std::string out = coordinator_->Stdout();
    REQUIRE(std::regex_search(out, match, std::regex("listening on (127\\.0\\.0\\.1:[0-9]+)")));
    address_ = match[1];
    port_ = std::stoi(address_.substr(address_.rfind(':') + 1));
    auto security = rpc::LoadClientSecurity(security_.stubs);
    REQUIRE(security.ok());
    auto channel = rpc::CreateChannel(address_, *security);
    studies = v1::StudyService::NewStub(channel);
    workers = v1::WorkerService::NewStub(channel);
  }
  int port() const { return port_; }

  // Starts a worker named `name`; `wrapper` (e.g. a shell that sets a ulimit and execs "$@")
  // goes in front of the worker's argv, `args` (e.g. --device cuda:1) after its own. The cluster's
  // client_args (token, TLS) follow.
  ChildProcess& StartWorker(const std::string& name, const std::vector<std::string>& wrapper = {},
                            const std::vector<std::string>& args = {}) {
    std::vector<std::string> argv = wrapper;
    for (const std::string& arg :
         {(BinDir() / "hpsearch-worker").string(), std::string("--coordinator"), address_,
          std::string("--name"), name, std::string("--acquire-wait"), std::string("1")}) {
      argv.push_back(arg);
    }
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), security_.client_args.begin(), security_.client_args.end());
    worker_processes_.push_back(
        std::make_unique<ChildProcess>(argv, (dir_ / ("worker-" + name)).string()));
    return *worker_processes_.back();
  }
  std::vector<std::unique_ptr<ChildProcess>>& worker_processes() { return worker_processes_; }

  std::string WriteStudy(const StudyOptions& o) {
    std::string source = SourceDir().string();
    std::string path = (dir_ / (o.name + ".yaml")).string();
    std::ofstream out(path);
    out << "name: " << o.name << "\nseed: 11\n"
        << "data: {train_file: " << source << "/data/banking77/train.csv, test_file: " << source
        << "/data/banking77/test.csv}\n"
        << "runner:\n  type: command\n  command: [";
    if (o.command.empty()) {
      out << "/usr/bin/python3, " << source << "/tests/data/control/fake_trial.py, --epochs, '"
          << o.epochs << "', --epoch_seconds, '" << o.epoch_seconds << "', --mode, " << o.mode;
      for (const std::string& arg : o.command_args) out << ", '" << arg << "'";
    } else {
      for (size_t i = 0; i < o.command.size(); ++i) out << (i ? ", '" : "'") << o.command[i] << "'";
    }
    out << "]\n  kill_grace_seconds: 1\n"
        << "search_space:\n"
        << o.search_space << "objective: {metric: val_accuracy, direction: maximize}\n"
        << "budget: {n_trials: " << o.n_trials << ", parallelism: " << o.parallelism
        << ", max_retries: " << o.max_retries
        << ", trial_timeout_seconds: " << o.trial_timeout_seconds << "}\n"
        << "final_stage: {enabled: " << (o.final_stage ? "true" : "false") << "}\n"
        << o.extra_yaml;
    return path;
  }

  // Submits through the CLI and returns the study id.
  std::string Submit(const StudyOptions& options) { return SubmitFile(WriteStudy(options)); }

  // Submits a study file through the CLI and returns the study id.
  std::string SubmitFile(const std::string& study_file) const {
    std::vector<std::string> argv{(BinDir() / "hpsearch").string(), "submit", study_file,
                                  "--coordinator", address_};
    argv.insert(argv.end(), security_.client_args.begin(), security_.client_args.end());
    ProcessResult result = RunProcess(argv);
    INFO(result.err);
    REQUIRE(result.exit_code == 0);
    std::string id = result.out.substr(0, result.out.find('\n'));
    REQUIRE(id.rfind("st-", 0) == 0);
    return id;
  }

  v1::Study GetStudy(const std::string& study) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::GetStudyRequest request;
    request.set_study(study);
    v1::Study response;
    grpc::Status status = studies->GetStudy(&context, request, &response);
    INFO(status.error_message());
    REQUIRE(status.ok());
    return response;
  }

  absl::optional<v1::Trial> GetTrial(const std::string& study, int number) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::GetTrialRequest request;
    request.set_study(study);
    request.set_number(number);
    v1::Trial response;
    if (!studies->GetTrial(&context, request, &response).ok()) return absl::nullopt;
    return response;
  }

  // Polls until the study reaches a final state or the timeout passes; returns the last state seen.
  v1::StudyState WaitForEnd(const std::string& study, std::chrono::seconds timeout) {
    auto give_up = std::chrono::steady_clock::now() + timeout;
    v1::StudyState state = v1::STUDY_STATE_UNSPECIFIED;
    while (std::chrono::steady_clock::now() < give_up) {
      state = GetStudy(study).state();
      if (state == v1::STUDY_STATE_COMPLETE || state == v1::STUDY_STATE_FAILED ||
          state == v1::STUDY_STATE_CANCELLED) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return state;
  }

  // One value of a query on the results file, read the way any outside sqlite3 reader would.
  std::string Query(const char* sql) {
    db::DatabaseOptions options;
    options.read_only = true;
    auto db = db::Database::Open(db_path(), options);
    REQUIRE(db.ok());
    auto stmt = (*db)->GetCachedStatement(sql);
    INFO(sql);
    REQUIRE(stmt.ok());
    auto row = (*stmt)->Step();
    REQUIRE(row.ok());
    if (!*row) return "<no row>";
    return (*stmt)->IsNull(0) ? "<null>" : (*stmt)->ColumnText(0);
  }

  std::unique_ptr<v1::StudyService::Stub> studies;
  std::unique_ptr<v1::WorkerService::Stub> workers;

 private:
  ClusterSecurity security_;
  int lease_ttl_seconds_;
  TempDir dir_;
  std::unique_ptr<ChildProcess> coordinator_;
  int coordinator_starts_ = 0;
  std::string address_;
  int port_ = 0;
  std::vector<std::unique_ptr<ChildProcess>> worker_processes_;
};

// Polls the results database (not the coordinator, which answers from memory a moment before
// its commit) until study `name` is stored in `state`, for at most a minute.
inline bool WaitForStoredState(Cluster& cluster, const std::string& name,
                               const std::string& state) {
  const std::string sql =
      "SELECT IFNULL((SELECT state FROM studies WHERE name = '" + name + "'), '')";
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < give_up) {
    if (cluster.Query(sql.c_str()) == state) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// Runs the hpsearch CLI with `args` and waits for it.
inline ProcessResult HpsearchCli(const std::vector<std::string>& args) {
  std::vector<std::string> argv{(BinDir() / "hpsearch").string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProcess(argv);
}

}  // namespace hpsearch::testing
