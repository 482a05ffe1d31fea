// QloraRunner: the built-in runner. It trains a trial with the training core (core/run.h) — qlora,
// lora or full fine-tuning — reporting each epoch's canonical metrics as soon as the epoch ends,
// obeying prune and cancel between steps, and reporting the final-stage figures. This file is the
// one place worker/ calls core/: the TrialSpec becomes a core::RunConfig through the proto's JSON
// form (which core reads), and an exception out of core becomes a failure through
// ClassifyTrainingFailure (worker/training_failure.h: out of memory and device errors are
// retryable, bad input is not).
//
// Stops: a cancel, lost lease or shutdown is checked after every optimizer step (the trainer's stop
// flag), a prune at every epoch end (the coordinator's answer to ReportEpoch); the attempt then
// ends without reporting further figures.
//
// Log: a progress line through TrialReporter::Progress on the first step and then every
// progress_interval_seconds (worker/progress_log.h), and one line per finished epoch.
//
// A final trial with retrain_on REUSE trains nothing: the runner fetches the source trial's stored
// model from the coordinator (TrialReporter::FetchModel) into the trial's artifact folder,
// evaluates it on test (core::RunEvaluation) and returns that folder, with its metrics.json
// rewritten for the final trial, as the final trial's artifact (so `hpsearch export` of the final
// trial works as after a retrain, at the cost of a second stored copy).
//
// The result's `extra` carries the data sizes the run saw: train_examples, validation_examples,
// num_labels and, with a test evaluation, test_examples (the report's set-up section shows them).
//
// Thread-safety: one Run at a time (the core sets process-wide LibTorch state).
#pragma once

#include <string>

#include "worker/runner.h"

namespace hpsearch::worker {

struct QloraRunnerOptions {
  // LibTorch intra-op threads; 0 leaves LibTorch's default.
  int threads = 0;
  // cpu or cuda:K, given to the core as it is (core::RunOptions::device): cuda:K is LibTorch's K-th
  // visible GPU. A cuda device needs a CUDA LibTorch (QloraRunnerCanRunOn); the core refuses it
  // otherwise.
  std::string device = "cpu";
  // Seconds between progress lines in the worker log.
  double progress_interval_seconds = 10;
};

class QloraRunner : public Runner {
 public:
  explicit QloraRunner(QloraRunnerOptions options) : options_(std::move(options)) {}
  RunOutcome Run(const v1::TrialSpec& trial, TrialReporter* reporter) override;

 private:
  RunOutcome Reuse(const v1::TrialSpec& trial, TrialReporter* reporter);

  QloraRunnerOptions options_;
};

// Whether this build can train on `device` ("cpu" or "cuda:K"): the CPU always; a GPU only when
// hpsearch was built against a CUDA LibTorch (core::BuiltWithTorchCuda). A device is trusted as
// given: this does not look for the GPU itself. A worker that cannot runs command trials alone.
bool QloraRunnerCanRunOn(const std::string& device);

// The core's configuration for a trial, or INVALID_ARGUMENT naming the key.
absl::StatusOr<std::string> TrialSpecToRunConfigJson(const v1::TrialSpec& trial);

}  // namespace hpsearch::worker
