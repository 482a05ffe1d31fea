// The training progress line of the worker log, and how often it is written.
//   epoch 1/4 step 120/4004 (3%) loss 2.3456 41.2 samples/s ETA 25m10s
// ProgressThrottle lets the first step through (so a trial shows it started and at what rate),
// then one line per interval; epoch ends are logged separately by the runner.
//
// Thread-safety: FormatProgressLine is pure; a ProgressThrottle is used by one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace hpsearch::worker {

struct ProgressSnapshot {
  int64_t epoch = 0;   // 1-based
  int64_t epochs = 0;  // 0: unknown
  int64_t step = 0;    // global step just finished
  int64_t total_steps = 0;
  double loss = 0;
  double samples_per_second = 0;
  double eta_seconds = 0;
};

std::string FormatProgressLine(const ProgressSnapshot& p);

// "42s", "25m10s", "1h02m".
std::string FormatDuration(double seconds);

class ProgressThrottle {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  // REQUIRES: interval_seconds >= 0 (0 lets every step through).
  explicit ProgressThrottle(double interval_seconds, Clock clock = std::chrono::steady_clock::now)
      : interval_(interval_seconds), clock_(std::move(clock)) {}

  // True when a line should be written now; then the interval starts again.
  bool ShouldLog();

 private:
  double interval_;
  Clock clock_;
  bool started_ = false;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace hpsearch::worker
