// Clock: where the coordinator and the worker read the time, injected so tests advance a
// ManualClock past a lease deadline instead of sleeping. RealClock reads the system clock.
// Only decisions and measurements read it: waiting itself (a condition variable, a poll, a gRPC
// deadline, a child process) is always in real time.
// Thread-safety: both implementations are thread-safe.
#pragma once

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace hpsearch {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() = 0;
};

class RealClock : public Clock {
 public:
  absl::Time Now() override { return absl::Now(); }
};

// The clock a `Clock* clock = nullptr` option names: that one (borrowed), or a RealClock of its own
// when the option is unset. Not copyable (it may point into itself); hold it as a member.
class ClockOrReal {
 public:
  explicit ClockOrReal(Clock* clock) : clock_(clock != nullptr ? clock : &real_) {}
  ClockOrReal(const ClockOrReal&) = delete;
  ClockOrReal& operator=(const ClockOrReal&) = delete;
  absl::Time Now() const { return clock_->Now(); }
  Clock* get() const { return clock_; }

 private:
  RealClock real_;
  Clock* const clock_;
};

// A clock that moves only when told to.
class ManualClock : public Clock {
 public:
  explicit ManualClock(absl::Time start = absl::FromUnixSeconds(1'700'000'000)) : now_(start) {}
  absl::Time Now() override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration duration) {
    absl::MutexLock lock(&mu_);
    now_ += duration;
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace hpsearch
