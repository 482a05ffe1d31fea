// RecordingReporter: a TrialReporter for runner tests. It records what a runner reports and answers
// like a coordinator would: continue, or prune from an epoch on; it can also order a cancel after a
// number of progress lines about steps. Header-only.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "worker/runner.h"

namespace hpsearch::testing {

class RecordingReporter : public worker::TrialReporter {
 public:
  absl::StatusOr<bool> ReportEpoch(const v1::EpochMetrics& metrics) override {
    epochs.push_back(metrics);
    return prune_from_epoch == 0 || metrics.epoch() < prune_from_epoch;
  }
  absl::Status ReportTrain(const v1::TrainSummary& train) override {
    trains.push_back(train);
    return absl::OkStatus();
  }
  absl::Status ReportTest(const v1::TestMetrics& test) override {
    tests.push_back(test);
    return absl::OkStatus();
  }
  worker::StopReason stop_reason() const override { return stop.load(); }
  void Log(const std::string& line) override { logs.push_back(line); }
  void Progress(const std::string& line) override {
    if (line.rfind("warning: ", 0) == 0) return;  // e.g. about the data; not what is tested here
    progress.push_back(line);
    if (line.rfind("epoch ", 0) == 0 && line.find(" step ") != std::string::npos &&
        ++steps_seen == cancel_after_steps) {
      stop = worker::StopReason::kCancel;
    }
  }

  int prune_from_epoch = 0;    // 0: never prune
  int cancel_after_steps = 0;  // 0: never cancel
  int steps_seen = 0;
  std::atomic<worker::StopReason> stop{worker::StopReason::kNone};
  std::vector<v1::EpochMetrics> epochs;
  std::vector<v1::TrainSummary> trains;
  std::vector<v1::TestMetrics> tests;
  std::vector<std::string> logs;
  std::vector<std::string> progress;
};

}  // namespace hpsearch::testing
