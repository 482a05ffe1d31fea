// The worker loop against a real coordinator (`hpsearch serve` on an ephemeral port): after a trial
// whose failure left the process's device unusable (a sticky CUDA error, which cannot happen on
// this CPU build, so a runner stands in for the device), the worker fails the trial as retryable
// and stops with UNAVAILABLE instead of taking the next trial.
#include "worker/worker.h"

#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <regex>

#include "hpsearch/v1/service.grpc.pb.h"
#include "testing/process.h"
#include "testing/subprocess.h"
#include "testing/testing.h"

namespace hpsearch::worker {
namespace {

using namespace std::chrono_literals;

class StickyDeviceErrorRunner : public Runner {
 public:
  RunOutcome Run(const v1::TrialSpec&, TrialReporter*) override {
    ++runs;
    RunOutcome outcome;
    outcome.kind = RunOutcome::Kind::kFailed;
    outcome.retryable = true;
    outcome.restart_worker = true;
    outcome.error =
        "device error (retryable; the worker restarts): CUDA error: an illegal memory "
        "access was encountered";
    return outcome;
  }
  int runs = 0;
};

TEST_CASE("A worker whose device is poisoned reports the trial as retryable and exits its loop",
          "[worker][faults]") {
  testing::TempDir dir;
  testing::ChildProcess serve({(testing::BinDir() / "hpsearch").string(), "serve", "--db",
                               (dir / "results.db").string(), "--listen", "127.0.0.1:0"},
                              (dir / "serve").string());
  REQUIRE(serve.WaitForStdout("listening on", 20s));
  std::smatch match;
  const std::string out = serve.Stdout();
  REQUIRE(std::regex_search(out, match, std::regex("listening on (127\\.0\\.0\\.1:[0-9]+)")));
  const std::string address = match[1];

  const std::string study = (dir / "study.yaml").string();
  std::ofstream(study) << "name: poisoned\nseed: 1\n"
                          "data: {train_file: "
                       << (testing::SourceDir() / "data/banking77/train.csv").string()
                       << "}\n"
                          "runner: {type: command, command: [/bin/true]}\n"
                          "search_space:\n  x: {type: float, low: 0.0, high: 1.0}\n"
                          "budget: {n_trials: 2, parallelism: 1, max_retries: 2}\n"
                          "final_stage: {enabled: false}\n";
  testing::ProcessResult submit = testing::RunProcess(
      {(testing::BinDir() / "hpsearch").string(), "submit", study, "--coordinator", address});
  INFO(submit.err);
  REQUIRE(submit.exit_code == 0);

  WorkerOptions options;
  options.coordinator_address = address;
  options.info.set_name("poisoned");
  options.acquire_wait = absl::Seconds(1);
  std::map<v1::RunnerType, std::unique_ptr<Runner>> runners;
  auto runner = std::make_unique<StickyDeviceErrorRunner>();
  StickyDeviceErrorRunner* sticky = runner.get();
  runners[v1::RUNNER_TYPE_COMMAND] = std::move(runner);
  Worker worker(options, std::move(runners));
  absl::Status status = worker.Run();
  CHECK(status.code() == absl::StatusCode::kUnavailable);
  CHECK(status.message().find("restart hpsearch-worker") != absl::string_view::npos);
  CHECK(sticky->runs == 1);  // it did not take the second trial
  CHECK(worker.trials_run() == 1);

  // The coordinator has the trial back in its queue for another worker, with the message kept.
  auto stub =
      v1::StudyService::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 10s);
  v1::GetTrialRequest request;
  request.set_study("poisoned");
  request.set_number(0);
  v1::Trial trial;
  REQUIRE(stub->GetTrial(&context, request, &trial).ok());
  CHECK(trial.state() == v1::TRIAL_STATE_WAITING);
  CHECK(trial.error().find("illegal memory access") != std::string::npos);
}

}  // namespace
}  // namespace hpsearch::worker
