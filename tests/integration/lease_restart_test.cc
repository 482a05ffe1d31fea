// Late and retried calls on ended leases, against a real coordinator process that is SIGKILLed and
// restarted on the same file between the end of the leases and the calls: a retried completion by
// the lease's holder gets its first answer, anything else FAILED_PRECONDITION saying how the lease
// ended (not NOT_FOUND, which is kept for leases that never existed), and nothing is written.
#include <signal.h>

#include <catch2/catch.hpp>

#include "integration/cluster.h"

namespace hpsearch::testing {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<grpc::ClientContext> LeaseCallContext() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return context;
}

TEST_CASE("A restarted coordinator answers calls on ended leases with FAILED_PRECONDITION",
          "[integration][faults][grpc][restart]") {
  Cluster cluster;
  StudyOptions options;
  options.name = "late";
  options.n_trials = 3;
  options.parallelism = 2;
  options.final_stage = false;
  std::string id = cluster.Submit(options);
  v1::RegisterRequest reg;
  reg.mutable_info()->set_name("raw");
  v1::RegisterResponse registered;
  REQUIRE(cluster.workers->Register(LeaseCallContext().get(), reg, &registered).ok());
  auto acquire = [&] {
    v1::AcquireTrialRequest request;
    request.set_worker_id(registered.worker_id());
    request.set_wait_ms(1000);
    v1::AcquireTrialResponse response;
    REQUIRE(cluster.workers->AcquireTrial(LeaseCallContext().get(), request, &response).ok());
    REQUIRE_FALSE(response.trial().lease_id().empty());
    return response.trial();
  };
  auto report = [&](const std::string& lease_id, int epoch) {
    v1::ReportEpochRequest request;
    request.set_lease_id(lease_id);
    request.set_worker_id(registered.worker_id());
    request.mutable_metrics()->set_epoch(epoch);
    request.mutable_metrics()->set_val_accuracy(0.5);
    v1::ReportEpochResponse response;
    return cluster.workers->ReportEpoch(LeaseCallContext().get(), request, &response);
  };
  auto complete = [&](const std::string& lease_id, v1::CompleteTrialResponse* response) {
    v1::CompleteTrialRequest request;
    request.set_lease_id(lease_id);
    request.set_worker_id(registered.worker_id());
    return cluster.workers->CompleteTrial(LeaseCallContext().get(), request, response);
  };

  // One lease ends COMPLETE, another expires (the ttl is 2 s and nobody heartbeats it).
  v1::TrialSpec done = acquire();
  REQUIRE(report(done.lease_id(), 1).ok());
  v1::CompleteTrialResponse completed;
  REQUIRE(complete(done.lease_id(), &completed).ok());
  REQUIRE(completed.state() == v1::TRIAL_STATE_COMPLETE);
  v1::TrialSpec lapsed = acquire();
  REQUIRE(report(lapsed.lease_id(), 1).ok());
  auto give_up = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < give_up &&
         cluster.GetTrial(id, lapsed.trial_number())->attempt() < 2) {
    std::this_thread::sleep_for(50ms);
  }
  REQUIRE(cluster.GetTrial(id, lapsed.trial_number())->state() == v1::TRIAL_STATE_WAITING);

  cluster.coordinator().Kill(SIGKILL);
  cluster.coordinator().Wait(5s);
  cluster.StartCoordinator(cluster.port());

  // The holder's retried completion: the first answer again.
  v1::CompleteTrialResponse again;
  grpc::Status retried = complete(done.lease_id(), &again);
  INFO(retried.error_message());
  REQUIRE(retried.ok());
  CHECK(again.state() == v1::TRIAL_STATE_COMPLETE);
  // A late report on the completed lease, and every call on the expired one.
  grpc::Status late = report(done.lease_id(), 2);
  CHECK(late.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK_THAT(late.error_message(),
             Catch::Contains("is no longer valid") && Catch::Contains("ended complete"));
  grpc::Status stale = report(lapsed.lease_id(), 2);
  CHECK(stale.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK_THAT(stale.error_message(), Catch::Contains("lease expired"));
  v1::CompleteTrialResponse unused;
  grpc::Status stale_complete = complete(lapsed.lease_id(), &unused);
  CHECK(stale_complete.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK_THAT(stale_complete.error_message(), Catch::Contains("lease expired"));
  v1::FailTrialRequest fail;
  fail.set_lease_id(lapsed.lease_id());
  fail.set_worker_id(registered.worker_id());
  fail.set_retryable(true);
  v1::FailTrialResponse failed;
  CHECK(cluster.workers->FailTrial(LeaseCallContext().get(), fail, &failed).error_code() ==
        grpc::StatusCode::FAILED_PRECONDITION);
  v1::HeartbeatRequest heartbeat;
  heartbeat.set_worker_id(registered.worker_id());
  heartbeat.add_lease_ids(lapsed.lease_id());
  v1::HeartbeatResponse beat;
  REQUIRE(cluster.workers->Heartbeat(LeaseCallContext().get(), heartbeat, &beat).ok());
  REQUIRE(beat.leases_size() == 1);
  CHECK(beat.leases(0).order() == v1::LEASE_ORDER_LOST);
  // A lease that never existed is still NOT_FOUND.
  CHECK(report("ls-never-issued", 1).error_code() == grpc::StatusCode::NOT_FOUND);

  // Nothing was written by the refused calls.
  CHECK(cluster.Query("SELECT COUNT(*) FROM epochs") == "2");
  CHECK(cluster.Query("SELECT COUNT(*) FROM trial_attempts WHERE state = 'complete'") == "1");
  CHECK(cluster.Query("SELECT group_concat(ended_by) FROM (SELECT ended_by FROM trial_attempts "
                      "ORDER BY trial_id, attempt)") == "worker,expired");
  CHECK(cluster.GetTrial(id, lapsed.trial_number())->state() == v1::TRIAL_STATE_WAITING);
}

}  // namespace
}  // namespace hpsearch::testing
