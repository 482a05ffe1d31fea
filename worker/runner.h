// Runner: runs one attempt of one trial on this worker. The worker owns one runner per runner type
// and calls Run() from its trial thread; the runner reports through TrialReporter as figures arrive
// and returns how the attempt ended. Runners behind this interface: `command` (an external process
// per trial, here); `qlora` (the built-in trainer over core/, added by the trainer issue).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "hpsearch/v1/service.pb.h"

namespace hpsearch::worker {

// Why a running trial must stop before it finishes.
enum class StopReason {
  kNone,
  kCancel,    // the coordinator ordered it (study cancelled, trial timed out)
  kLost,      // the lease is gone: do not report any further
  kShutdown,  // this worker is exiting (SIGTERM)
};

// The runner's line back to the coordinator. Implementations retry transient failures themselves.
// Thread-safety: called from the runner's thread only; stop_reason() may be read at any time.
class TrialReporter {
 public:
  virtual ~TrialReporter() = default;
  // Reports an epoch: true to go on, false when the pruner says stop. An error means the lease is
  // gone.
  virtual absl::StatusOr<bool> ReportEpoch(const v1::EpochMetrics& metrics) = 0;
  // Reports the run's last epoch when only the end of the run follows it (no further epoch, no
  // long evaluation): the worker may send it with the trial's completion, one round trip less,
  // since a pruning decision no longer matters. If the run then fails or stops instead, the worker
  // reports the epoch on its own before saying so. The default reports it at once as an ordinary
  // epoch and ignores the decision.
  virtual absl::Status ReportLastEpoch(const v1::EpochMetrics& metrics) {
    return ReportEpoch(metrics).status();
  }
  virtual absl::Status ReportTrain(const v1::TrainSummary& train) = 0;
  virtual absl::Status ReportTest(const v1::TestMetrics& test) = 0;
  // Checked often by the runner: anything but kNone means stop now.
  virtual StopReason stop_reason() const = 0;
  // A line of the trial's own log (non-protocol output), for the worker's log (shown with -v).
  virtual void Log(const std::string& line) = 0;
  // A progress or milestone line (epoch, step/total, loss, samples/s, ETA), shown in the worker's
  // log at its default level. Runners throttle these themselves.
  virtual void Progress(const std::string& line) { Log(line); }
  // The trial's step progress (epoch, step of total, throughput, ETA): cheap, call it as often as
  // it changes; the latest one travels with the next heartbeat.
  virtual void StepProgress(const v1::TrialProgress& progress) {}
  // Fetches the stored model (uploaded artifact) of trial `trial_number` of this trial's study
  // from the coordinator into `dir`, replacing whatever is there; the final stage's
  // `retrain_on: reuse` evaluates it. Every file's sha256 is checked on arrival. NOT_FOUND when
  // the coordinator has none.
  virtual absl::Status FetchModel(int trial_number, const std::string& dir) {
    return absl::UnimplementedError("this reporter cannot fetch stored models");
  }
  // A note on this attempt worth keeping (resumed from a checkpoint, started over): logged and
  // recorded in the study's events table. Best effort: a failure to record is only logged.
  virtual void Note(const std::string& kind, const std::string& message) {
    Log(kind + ": " + message);
  }
};

struct RunOutcome {
  enum class Kind {
    kComplete,  // ran to the end
    kPruned,    // stopped because ReportEpoch said prune
    kFailed,    // failed; `retryable` says whether another attempt may succeed
    kStopped,   // stopped on a StopReason; the worker decides what to tell the coordinator
  };
  Kind kind = Kind::kFailed;
  bool retryable = false;
  std::string error;  // what failed, with the command's stderr tail where there is one
  // The failure left this process unable to run further trials (a sticky CUDA error): the worker
  // reports it, then exits so that a supervisor starts a fresh process.
  bool restart_worker = false;
  v1::TrialResult result;
  StopReason stop_reason = StopReason::kNone;
  // kComplete: a folder of files to upload to the coordinator as the trial's artifact (the
  // adapter, metrics.json); empty: nothing to upload.
  std::string artifact_dir;
};

class Runner {
 public:
  virtual ~Runner() = default;
  virtual RunOutcome Run(const v1::TrialSpec& trial, TrialReporter* reporter) = 0;
};

}  // namespace hpsearch::worker
