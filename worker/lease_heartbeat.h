// LeaseHeartbeat: keeps the running trial's lease alive. One thread for the worker's whole life
// heartbeats whichever lease is current (a thread per trial cost a clone, a stack, TLS set-up and a
// join for every trial), and hands the coordinator's cancel/lost orders to the trial's callback.
// Begin() and End() do not wake the thread (two wake-ups per trial, which cost as much as the
// trial's own calls when trials are short): it wakes on its own at least every half interval and
// heartbeats a lease once it has been current for an interval without one, so the first heartbeat
// of a lease comes between 1 and 1.5 intervals after Begin, later ones every interval.
//
// Ownership: owns its thread; borrows the client. Thread-safety: thread-safe. The order callback
// runs on the heartbeat thread with the internal lock held, only between Begin() and End() of its
// lease: after End() returns it is never called again. It must not call back into this object.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "absl/time/time.h"
#include "base/clock.h"
#include "hpsearch/v1/service.pb.h"
#include "worker/coordinator_client.h"

namespace hpsearch::worker {

class LeaseHeartbeat {
 public:
  using OrderCallback = std::function<void(const v1::LeaseStatus&)>;

  // REQUIRES: client outlives this object; so does `clock`, where heartbeats fall due (nullptr: the
  // system clock; the thread itself sleeps in real time, at most half an interval at once).
  explicit LeaseHeartbeat(CoordinatorClient* client, Clock* clock = nullptr);
  ~LeaseHeartbeat();  // stops and joins the thread

  // Starts heartbeating `lease_id` for `worker_id` every `interval` (the first one interval from
  // now). `label` names the trial in log lines. Replaces any current lease.
  void Begin(const std::string& worker_id, const std::string& lease_id, absl::Duration interval,
             const std::string& label, OrderCallback on_order);
  // Stops heartbeating the current lease.
  void End();
  // The current lease's latest step progress: sent with its next heartbeat (a newer one replaces
  // it). Ignored when no lease is current.
  void SetProgress(const v1::TrialProgress& progress);

 private:
  void Loop();

  CoordinatorClient* const client_;
  ClockOrReal clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t generation_ = 0;  // bumped by Begin and End: a reply for an older lease is dropped
  bool active_ = false;
  bool stop_ = false;
  std::string worker_id_;
  std::string lease_id_;
  std::string label_;
  absl::Duration interval_ = absl::Seconds(1);  // the current (else the last) lease's
  absl::Time due_;                              // when the current lease's next heartbeat is due
  OrderCallback on_order_;
  bool has_progress_ = false;
  v1::TrialProgress progress_;
  std::thread thread_;  // last: starts after every member above is constructed
};

}  // namespace hpsearch::worker
