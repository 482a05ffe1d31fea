// Worker: the loop of `hpsearch-worker`. Registers with the coordinator, long-polls for a trial,
// runs it with the runner its spec names while a heartbeat thread keeps the lease alive and carries
// cancel orders, then completes or fails it; repeats until stopped. A completion also asks for the
// next trial (one round trip instead of two); only when none can start at once does the worker
// long-poll AcquireTrial. Reports retry with backoff
// through coordinator restarts; a restarted coordinator that no longer knows the worker gets it
// re-registered under its id. The registration names the runner types the worker has (the keys of
// its runner map): the coordinator leases it trials of those types only.
//
// A completed trial's artifact (RunOutcome::artifact_dir) is uploaded before CompleteTrial, under
// the still-live lease.
//
// Stop() (SIGTERM) ends the loop: a running trial is stopped and failed as retryable, so another
// worker re-runs it at once instead of waiting for the lease to expire.
//
// Ownership: owns its runners and clients. Thread-safety: Run() on one thread; Stop() from any
// thread.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "hpsearch/v1/service.pb.h"
#include "worker/coordinator_client.h"
#include "worker/lease_heartbeat.h"
#include "worker/runner.h"

namespace hpsearch::worker {

struct WorkerOptions {
  std::string coordinator_address = "127.0.0.1:50051";
  // TLS and auth token of the channel (rpc::LoadClientSecurity); default: plaintext, no token.
  rpc::ClientSecurity security;
  v1::WorkerInfo info;
  // Long-poll length of one AcquireTrial; shorter notices a stop sooner, longer makes fewer calls.
  absl::Duration acquire_wait = absl::Seconds(10);
  // Stop after this many trials; 0 runs until stopped (benchmarks and tests set it).
  int max_trials = 0;
  // Stop when an AcquireTrial long-poll returns empty (benchmarks: the studies are done).
  bool exit_when_idle = false;
  // Keep a completed trial's model folder after the coordinator has stored its upload. By default
  // it is deleted then (the coordinator's copy is the one `export` and the final stage read), so a
  // study does not take its disk twice; a failed upload always keeps it.
  bool keep_uploaded_artifacts = false;
  ClientOptions client;
  // Where the worker measures time (a trial's duration, how long an acquire took), its lease
  // heartbeat decides when a heartbeat is due and, unless `client.clock` names another, its clients
  // when retries give up; nullptr: the system clock. Not owned; must outlive the worker. Runners
  // take their own (CommandRunnerOptions::clock).
  Clock* clock = nullptr;
  // Called with the duration of every call that handed this worker a trial: an AcquireTrial, or a
  // CompleteTrial that carried the next trial (benchmarks measure it).
  std::function<void(absl::Duration)> on_acquired;
  // Called after every acknowledged CompleteTrial with whether it carried the run's last epoch
  // (TrialReporter::ReportLastEpoch): benchmarks count acknowledged epochs with it.
  std::function<void(bool carried_last_epoch)> on_completed;
};

class Worker {
 public:
  Worker(WorkerOptions options, std::map<v1::RunnerType, std::unique_ptr<Runner>> runners);
  ~Worker();

  // Runs until Stop(), max_trials or (exit_when_idle) an idle poll. Fails when the coordinator
  // stays unreachable past the client's retry window, or (UNAVAILABLE) after reporting a trial
  // whose failure left the device unusable (a sticky CUDA error): the process should then exit and
  // be started again.
  absl::Status Run();
  void Stop();

  int trials_run() const { return trials_run_; }
  const std::string& worker_id() const { return worker_id_; }

 private:
  class Session;
  absl::Status Register();
  // Runs one trial and counts it; true when the runner says this process cannot run another
  // trial. When `next` is set, the completion also asks for the next trial, which lands in *next
  // when the coordinator had one to start.
  bool RunAndCount(const v1::TrialSpec& trial, std::optional<v1::TrialSpec>* next);
  // Runs one leased trial and tells the coordinator how it ended; *restart is set when the runner
  // says this process cannot run another trial.
  absl::Status RunTrial(const v1::TrialSpec& trial, std::optional<v1::TrialSpec>* next,
                        bool* restart);

  WorkerOptions options_;
  ClockOrReal clock_;  // options_.clock, else the system clock
  std::map<v1::RunnerType, std::unique_ptr<Runner>> runners_;
  CoordinatorClient client_;
  CoordinatorClient heartbeat_client_;
  LeaseHeartbeat heartbeat_;  // after heartbeat_client_, which it uses
  std::string worker_id_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> trials_run_{0};
};

}  // namespace hpsearch::worker
