#include "worker/lease_heartbeat.h"

#include <algorithm>

#include "spdlog/spdlog.h"

namespace hpsearch::worker {

LeaseHeartbeat::LeaseHeartbeat(CoordinatorClient* client, Clock* clock)
    : client_(client), clock_(clock), thread_([this] { Loop(); }) {}

LeaseHeartbeat::~LeaseHeartbeat() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void LeaseHeartbeat::Begin(const std::string& worker_id, const std::string& lease_id,
                           absl::Duration interval, const std::string& label,
                           OrderCallback on_order) {
  std::lock_guard<std::mutex> lock(mu_);
  ++generation_;
  active_ = true;
  worker_id_ = worker_id;
  lease_id_ = lease_id;
  has_progress_ = false;
  interval_ = interval;
  due_ = clock_.Now() + interval;
  label_ = label;
  on_order_ = std::move(on_order);
}

void LeaseHeartbeat::SetProgress(const v1::TrialProgress& progress) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!active_) return;
  progress_ = progress;
  has_progress_ = true;
}

void LeaseHeartbeat::End() {
  std::lock_guard<std::mutex> lock(mu_);
  ++generation_;
  active_ = false;
  has_progress_ = false;
  on_order_ = nullptr;
}

void LeaseHeartbeat::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    // Wake every half interval (Begin and End do not notify), or at the current lease's due time.
    absl::Time now = clock_.Now();
    absl::Duration sleep = std::max(interval_ / 2, absl::Milliseconds(10));
    if (active_) sleep = std::min(sleep, due_ - now);
    if (!active_ || sleep > absl::ZeroDuration()) {
      cv_.wait_for(lock, absl::ToChronoMicroseconds(sleep), [this] { return stop_; });
      continue;
    }
    // Active and due: heartbeat this lease.
    uint64_t generation = generation_;
    due_ = now + interval_;
    v1::HeartbeatRequest request;
    request.set_worker_id(worker_id_);
    request.add_lease_ids(lease_id_);
    if (has_progress_) *request.mutable_progress() = progress_;
    lock.unlock();
    absl::StatusOr<v1::HeartbeatResponse> response = client_->Heartbeat(request);
    lock.lock();
    if (generation_ != generation) continue;  // the trial ended while we asked
    if (!response.ok()) {
      spdlog::warn("{}: heartbeat failed ({}); retrying", label_,
                   std::string(response.status().message()));
    } else if (response->leases_size() == 1 && on_order_) {
      on_order_(response->leases(0));
    }
  }
}

}  // namespace hpsearch::worker
