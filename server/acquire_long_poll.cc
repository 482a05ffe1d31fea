#include "server/acquire_long_poll.h"

#include <algorithm>
#include <vector>

#include "server/grpc_status.h"

namespace hpsearch::server {

class AcquireLongPoll::Reactor : public grpc::ServerUnaryReactor {
 public:
  Reactor(AcquireLongPoll* owner, std::string worker_id, absl::Time deadline,
          v1::AcquireTrialResponse* response)
      : owner_(owner), worker_id_(std::move(worker_id)), deadline_(deadline), response_(response) {}

  const std::string& worker_id() const { return worker_id_; }
  absl::Time deadline() const { return deadline_; }

  void Answer(const absl::StatusOr<std::optional<v1::TrialSpec>>& trial) {
    if (!trial.ok()) {
      Finish(ToGrpcStatus(trial.status()));
      return;
    }
    if (trial->has_value()) *response_->mutable_trial() = **trial;
    Finish(grpc::Status::OK);
  }

  void OnCancel() override { owner_->Cancelled(this); }
  void OnDone() override { delete this; }

 private:
  AcquireLongPoll* owner_;
  std::string worker_id_;
  absl::Time deadline_;
  v1::AcquireTrialResponse* response_;
};

AcquireLongPoll::AcquireLongPoll(Coordinator* coordinator)
    : coordinator_(coordinator), thread_([this] { Run(); }) {}

AcquireLongPoll::~AcquireLongPoll() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

grpc::ServerUnaryReactor* AcquireLongPoll::Start(grpc::CallbackServerContext* context,
                                                 const std::string& worker_id, absl::Duration wait,
                                                 v1::AcquireTrialResponse* response) {
  auto* reactor = new Reactor(this, worker_id, absl::Now() + wait, response);
  absl::StatusOr<std::optional<v1::TrialSpec>> trial = coordinator_->TryAcquire(worker_id);
  if (!trial.ok() || trial->has_value() || wait <= absl::ZeroDuration()) {
    reactor->Answer(trial);
    return reactor;
  }
  absl::MutexLock lock(&mu_);
  if (stopping_) {
    reactor->Answer(std::optional<v1::TrialSpec>());
    return reactor;
  }
  waiters_.push_back(reactor);
  // A trial may have been freed between our attempt and parking: look again.
  dirty_ = true;
  return reactor;
}

void AcquireLongPoll::Notify() {
  absl::MutexLock lock(&mu_);
  dirty_ = true;
}

void AcquireLongPoll::Cancelled(Reactor* reactor) {
  {
    absl::MutexLock lock(&mu_);
    auto it = std::find(waiters_.begin(), waiters_.end(), reactor);
    if (it == waiters_.end()) return;  // being answered by Run(), which finishes it
    waiters_.erase(it);
  }
  reactor->Finish(grpc::Status::CANCELLED);
}

void AcquireLongPoll::Run() {
  while (true) {
    std::vector<Reactor*> expired;
    bool dirty = false;
    {
      absl::MutexLock lock(&mu_);
      auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return dirty_ || stopping_; };
      mu_.AwaitWithTimeout(absl::Condition(&wake), absl::Milliseconds(50));
      if (stopping_) {
        expired.assign(waiters_.begin(), waiters_.end());
        waiters_.clear();
      } else {
        absl::Time now = absl::Now();
        for (auto it = waiters_.begin(); it != waiters_.end();) {
          if ((*it)->deadline() <= now) {
            expired.push_back(*it);
            it = waiters_.erase(it);
          } else {
            ++it;
          }
        }
      }
      dirty = dirty_;
      dirty_ = false;
    }
    for (Reactor* reactor : expired) reactor->Answer(std::optional<v1::TrialSpec>());
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    if (!dirty) continue;
    // Serve parked calls in order until one finds nothing: the ones behind it would find nothing
    // too.
    while (true) {
      Reactor* reactor = nullptr;
      {
        absl::MutexLock lock(&mu_);
        if (waiters_.empty()) break;
        reactor = waiters_.front();
        waiters_.pop_front();
      }
      absl::StatusOr<std::optional<v1::TrialSpec>> trial =
          coordinator_->TryAcquire(reactor->worker_id());
      if (trial.ok() && !trial->has_value()) {
        absl::MutexLock lock(&mu_);
        waiters_.push_front(reactor);
        break;
      }
      reactor->Answer(trial);
    }
  }
}

}  // namespace hpsearch::server
