// AcquireLongPoll: parks AcquireTrial calls that found no trial, and answers each one as soon as a
// trial can be leased to it (the coordinator signals Notify()) or with an empty reply when its wait
// ends. Waiters are served first come, first served.
//
// Ownership: owns its thread and the parked reactors until they finish (a reactor deletes itself in
// OnDone). Thread-safety: thread-safe.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "hpsearch/v1/service.grpc.pb.h"
#include "server/coordinator.h"

namespace hpsearch::server {

class AcquireLongPoll {
 public:
  // REQUIRES: coordinator outlives this object.
  explicit AcquireLongPoll(Coordinator* coordinator);
  ~AcquireLongPoll();  // answers every parked call with an empty reply

  // Starts the reactor of one AcquireTrial call: tries at once, then parks it until `wait` passes.
  grpc::ServerUnaryReactor* Start(grpc::CallbackServerContext* context,
                                  const std::string& worker_id, absl::Duration wait,
                                  v1::AcquireTrialResponse* response);

  // Something changed that may let a parked call acquire a trial.
  void Notify();

 private:
  class Reactor;
  void Run();
  void Cancelled(Reactor* reactor);

  Coordinator* const coordinator_;
  absl::Mutex mu_;
  std::deque<Reactor*> waiters_ ABSL_GUARDED_BY(mu_);
  bool dirty_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace hpsearch::server
