// CommandRunner: runs a study's external command once per trial attempt.
//
// The command is runner.command with each parameter appended as `--<name> <value>`, started in its
// own process group in runner.working_dir, with the parameters also in HPSEARCH_PARAM_<NAME> and
// the trial in HPSEARCH_STUDY_ID, HPSEARCH_TRIAL_NUMBER, HPSEARCH_TRIAL_KIND (search | final |
// evaluate), HPSEARCH_ATTEMPT, HPSEARCH_SEED, HPSEARCH_RETRAIN_ON (train | train_validation |
// reuse), HPSEARCH_EVALUATE_TEST (1 | 0), HPSEARCH_ARTIFACT_DIR, plus runner.env, plus the worker's
// CommandRunnerOptions::environment (its device and threads: CUDA_VISIBLE_DEVICES, HPSEARCH_DEVICE,
// OMP_NUM_THREADS, ...; see CommandDeviceEnvironment in worker/device_list.h) where runner.env does
// not set the same name. It reads JSON lines from the command's stdout, each reported as it
// arrives:
//   {"type":"epoch","epoch":1,"train_loss":…,"val_loss":…,"val_accuracy":…,"val_f1":…,…}
//   {"type":"train_summary","global_steps":…,"train_loss":…,"runtime_seconds":…,…}
//   {"type":"test","test_loss":…,"test_accuracy":…,"test_f1":…,…}
// Other lines go to the log. Numbers an epoch line carries beyond the canonical ones become extra
// metrics. The command runs under hpsearch-trial-reaper (worker/trial_reaper.cc), which ends its
// whole process tree (children, grandchildren, processes that called setsid) on prune, cancel,
// shutdown or timeout (SIGTERM, then SIGKILL after runner.kill_grace_seconds), when the command
// exits leaving processes behind, and when this worker dies, SIGKILL included. The last bytes of
// stderr are kept and attached to every failure. Files a completed command leaves in
// HPSEARCH_ARTIFACT_DIR are uploaded to the coordinator with the trial (up to max_artifact_bytes).
//
//
// Evaluate-only (final_stage.retrain_on: reuse, which the study allows only with
// runner.supports_evaluate: true): the final trial's command is started with
// HPSEARCH_TRIAL_KIND=evaluate, HPSEARCH_RETRAIN_ON=reuse, the best trial's parameters as usual,
// HPSEARCH_SOURCE_TRIAL_NUMBER (the best trial) and HPSEARCH_MODEL_DIR: a folder holding what the
// best trial's command left in its HPSEARCH_ARTIFACT_DIR, fetched from the coordinator (sha256
// checked) and removed after the run. The command must not train: it loads the model from there,
// evaluates it on the test data and prints one {"type":"test",...} line. A failed fetch fails
// the attempt before the command starts (retryable when the coordinator was unreachable).
//
// Thread-safety: Run() may be called from one thread at a time per instance.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "absl/time/time.h"
#include "base/clock.h"
#include "worker/runner.h"

namespace hpsearch::worker {

struct CommandRunnerOptions {
  // How much of the command's stderr is kept for error messages.
  size_t stderr_tail_bytes = 4096;
  // How often stop orders and the timeout are checked while the command runs.
  absl::Duration poll_interval = absl::Milliseconds(50);
  // Grace between SIGTERM and SIGKILL when the spec does not set runner.kill_grace_seconds.
  absl::Duration default_kill_grace = absl::Seconds(10);
  // A completed command's artifact folder is uploaded when it holds at most this many bytes (larger
  // ones stay on the worker's disk, with a log line).
  int64_t max_artifact_bytes = int64_t{256} << 20;
  // Set for every command over the worker's own environment; the study's runner.env wins where it
  // sets the same variable (worker/device_list.h: CommandDeviceEnvironment).
  std::map<std::string, std::string> environment;
  // The hpsearch-trial-reaper program; empty means the one beside this process's executable.
  std::string reaper_path;
  // Where a trial's elapsed time (its timeout, each epoch's wall time) is read; nullptr: the
  // system clock. Waiting for the command itself is always in real time. Not owned; must outlive
  // the runner.
  Clock* clock = nullptr;
};

class CommandRunner : public Runner {
 public:
  explicit CommandRunner(CommandRunnerOptions options = {}) : options_(std::move(options)) {}
  RunOutcome Run(const v1::TrialSpec& trial, TrialReporter* reporter) override;

 private:
  CommandRunnerOptions options_;
};

// The argv the command runner would start for `trial` (exposed for tests and `--dry-run` style
// checks).
std::vector<std::string> CommandArgv(const v1::TrialSpec& trial);
// A parameter value as it appears on the command line and in HPSEARCH_PARAM_*.
std::string ParamValueText(const v1::ParamValue& value);

}  // namespace hpsearch::worker
