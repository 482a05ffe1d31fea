#include "worker/lease_heartbeat.h"

#include "spdlog/spdlog.h"

namespace hpsearch::worker {

LeaseHeartbeat::LeaseHeartbeat(CoordinatorClient* client)
    : client_(client), thread_([this] { Loop(); }) {}

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
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++generation_;
    active_ = true;
    worker_id_ = worker_id;
    lease_id_ = lease_id;
    interval_ = interval;
    label_ = label;
    on_order_ = std::move(on_order);
  }
  cv_.notify_all();
}

void LeaseHeartbeat::End() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++generation_;
    active_ = false;
    on_order_ = nullptr;
  }
  cv_.notify_all();
}

void LeaseHeartbeat::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    if (!active_) {
      cv_.wait(lock, [this] { return stop_ || active_; });
      continue;
    }
    // One interval after Begin or the last heartbeat, unless the lease changes or we stop.
    uint64_t generation = generation_;
    if (cv_.wait_for(lock, absl::ToChronoMilliseconds(interval_),
                     [&] { return stop_ || generation_ != generation; })) {
      continue;
    }
    v1::HeartbeatRequest request;
    request.set_worker_id(worker_id_);
    request.add_lease_ids(lease_id_);
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
