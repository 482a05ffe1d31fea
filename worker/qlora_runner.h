// QloraRunner: the built-in runner. It trains a trial with the training core (core/run.h) — qlora,
// lora or full fine-tuning — reporting each epoch's canonical metrics as soon as the epoch ends,
// obeying prune and cancel between steps, and reporting the final-stage figures. This file is the
// one place worker/ calls core/: the TrialSpec becomes a core::RunConfig through the proto's JSON
// form (which core reads), and a core::Error becomes a failure whose retryability follows its code.
//
// Thread-safety: one Run at a time (the core sets process-wide LibTorch state).
#pragma once

#include <string>

#include "worker/runner.h"

namespace hpsearch::worker {

struct QloraRunnerOptions {
  // LibTorch intra-op threads; 0 leaves LibTorch's default.
  int threads = 0;
  // cpu or cuda:K. Only cpu runs with Debian's LibTorch.
  std::string device = "cpu";
  // Seconds between progress lines in the worker log.
  double progress_interval_seconds = 10;
};

class QloraRunner : public Runner {
 public:
  explicit QloraRunner(QloraRunnerOptions options) : options_(std::move(options)) {}
  RunOutcome Run(const v1::TrialSpec& trial, TrialReporter* reporter) override;

 private:
  QloraRunnerOptions options_;
};

// The core's configuration for a trial, or INVALID_ARGUMENT naming the key.
absl::StatusOr<std::string> TrialSpecToRunConfigJson(const v1::TrialSpec& trial);

}  // namespace hpsearch::worker
