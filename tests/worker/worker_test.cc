// The worker loop against a real coordinator (`hpsearch serve` on an ephemeral port): after a trial
// whose failure left the process's device unusable (a sticky CUDA error, which cannot happen on
// this CPU build, so a runner stands in for the device), the worker fails the trial as retryable
// and stops with UNAVAILABLE instead of taking the next trial; a run's last epoch rides on its
// completion, or is reported on its own when the run fails instead.
#include "worker/worker.h"

#include <catch2/catch.hpp>

#include "hpsearch/v1/service.grpc.pb.h"
#include "worker/served_study.h"

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
  ServedStudy served("poisoned", 2, 2);
  const std::string& address = served.address;

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
  v1::Trial trial = served.GetTrial("poisoned", 0);
  CHECK(trial.state() == v1::TRIAL_STATE_WAITING);
  CHECK(trial.error().find("illegal memory access") != std::string::npos);
}

// Reports epoch 1 on its own and epoch 2 as the last epoch; the first trial completes, the second
// fails after handing over its last epoch.
class LastEpochRunner : public Runner {
 public:
  RunOutcome Run(const v1::TrialSpec& trial, TrialReporter* reporter) override {
    RunOutcome outcome;
    v1::EpochMetrics metrics;
    metrics.set_epoch(1);
    metrics.set_val_accuracy(0.25);
    if (!reporter->ReportEpoch(metrics).ok()) return outcome;
    metrics.set_epoch(2);
    metrics.set_val_accuracy(0.5 + 0.1 * trial.trial_number());
    if (!reporter->ReportLastEpoch(metrics).ok()) return outcome;
    if (trial.trial_number() == 0) {
      outcome.kind = RunOutcome::Kind::kComplete;
    } else {
      outcome.error = "failed after its last epoch";
    }
    return outcome;
  }
};

TEST_CASE("The last epoch rides on the completion, or is reported on its own when the run fails",
          "[worker]") {
  ServedStudy served("last-epoch", 2, 0);
  WorkerOptions options;
  options.coordinator_address = served.address;
  options.info.set_name("last");
  options.acquire_wait = absl::Seconds(1);
  options.exit_when_idle = true;
  int carried = 0, completed = 0;
  options.on_completed = [&](bool carried_last_epoch) {
    ++completed;
    if (carried_last_epoch) ++carried;
  };
  std::map<v1::RunnerType, std::unique_ptr<Runner>> runners;
  runners[v1::RUNNER_TYPE_COMMAND] = std::make_unique<LastEpochRunner>();
  Worker worker(options, std::move(runners));
  REQUIRE(worker.Run().ok());
  CHECK(worker.trials_run() == 2);
  CHECK(completed == 1);
  CHECK(carried == 1);

  v1::Trial complete = served.GetTrial("last-epoch", 0);
  CHECK(complete.state() == v1::TRIAL_STATE_COMPLETE);
  REQUIRE(complete.epochs_size() == 2);
  CHECK(complete.epochs(1).val_accuracy() == 0.5);
  CHECK(complete.objective_value() == 0.5);
  v1::Trial failed = served.GetTrial("last-epoch", 1);
  CHECK(failed.state() == v1::TRIAL_STATE_FAILED);
  CHECK(failed.error().find("failed after its last epoch") != std::string::npos);
  REQUIRE(failed.epochs_size() == 2);
  CHECK(failed.epochs(1).val_accuracy() == Approx(0.6));
}

// One epoch, carried by the completion.
class OneEpochRunner : public Runner {
 public:
  RunOutcome Run(const v1::TrialSpec&, TrialReporter* reporter) override {
    RunOutcome outcome;
    v1::EpochMetrics metrics;
    metrics.set_epoch(1);
    metrics.set_val_accuracy(0.5);
    if (reporter->ReportLastEpoch(metrics).ok()) outcome.kind = RunOutcome::Kind::kComplete;
    return outcome;
  }
};

// Found by bench/soak.py: the trial leased with the last completion, as the worker was told to
// stop, was handed back without the worker id, which the coordinator refused; the trial then
// stayed leased to a stopped worker until its lease expired.
TEST_CASE("A trial leased with the completion as the worker stops is handed back at once",
          "[worker]") {
  ServedStudy served("handback", 3, 2);
  WorkerOptions options;
  options.coordinator_address = served.address;
  options.info.set_name("handback");
  options.acquire_wait = absl::Seconds(1);
  Worker* self = nullptr;
  // The stop order arrives while the completion of trial 0, which leases trial 1, is answered.
  options.on_completed = [&](bool) { self->Stop(); };
  std::map<v1::RunnerType, std::unique_ptr<Runner>> runners;
  runners[v1::RUNNER_TYPE_COMMAND] = std::make_unique<OneEpochRunner>();
  Worker worker(options, std::move(runners));
  self = &worker;
  REQUIRE(worker.Run().ok());
  CHECK(worker.trials_run() == 1);

  CHECK(served.GetTrial("handback", 0).state() == v1::TRIAL_STATE_COMPLETE);
  v1::Trial handed_back = served.GetTrial("handback", 1);
  CHECK(handed_back.state() == v1::TRIAL_STATE_WAITING);
  CHECK(handed_back.error().find("stopped before starting this trial") != std::string::npos);
}

}  // namespace
}  // namespace hpsearch::worker
