// The Coordinator keeps every worker to the leases it acquired (docs/security.md).
#include <catch2/catch.hpp>

#include "server/coordinator.h"
#include "server/coordinator_fixture.h"

namespace hpsearch::server {
namespace {

using namespace coordinator_testing;

TEST_CASE("A worker cannot act on a lease another worker holds", "[server][coordinator][lease]") {
  Fixture f;
  std::string id = f.Submit(MakeSpec("holders", 2, 2));
  std::string holder = f.Register("holder");
  std::string intruder = f.Register("intruder");
  auto trial = f.Acquire(holder);
  REQUIRE(trial.has_value());
  const std::string lease = trial->lease_id();
  // 128 bits from the kernel's CSPRNG, hex.
  CHECK(lease.size() == 3 + 32);

  v1::ReportEpochRequest report;
  report.set_lease_id(lease);
  report.set_worker_id(intruder);
  report.mutable_metrics()->set_epoch(1);
  report.mutable_metrics()->set_val_accuracy(0.9);
  auto reported = f.coordinator->ReportEpoch(report);
  CHECK(reported.status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(reported.status().message().find("not held by " + intruder) != std::string::npos);
  v1::ReportResultRequest result;
  result.set_lease_id(lease);
  result.set_worker_id(intruder);
  result.mutable_test()->set_test_accuracy(1.0);
  CHECK(f.coordinator->ReportResult(result).code() == absl::StatusCode::kPermissionDenied);
  v1::CompleteTrialRequest complete;
  complete.set_lease_id(lease);
  complete.set_worker_id(intruder);
  CHECK(f.coordinator->CompleteTrial(complete).status().code() ==
        absl::StatusCode::kPermissionDenied);
  v1::FailTrialRequest fail;
  fail.set_lease_id(lease);
  fail.set_worker_id(intruder);
  fail.set_error("not mine");
  CHECK(f.coordinator->FailTrial(fail).status().code() == absl::StatusCode::kPermissionDenied);
  // A request that names no worker is refused as malformed.
  report.set_worker_id("");
  CHECK(f.coordinator->ReportEpoch(report).status().code() == absl::StatusCode::kInvalidArgument);
  // Tell acts only on leases its own client took through Ask.
  v1::TellRequest tell;
  tell.set_lease_id(lease);
  tell.set_client_name("notebook");
  tell.set_state(v1::TRIAL_STATE_COMPLETE);
  CHECK(f.coordinator->Tell(tell).status().code() == absl::StatusCode::kPermissionDenied);

  // None of it touched the holder's trial: still running, no epoch, and its holder finishes it.
  auto stored = f.coordinator->GetTrial(id, trial->trial_number());
  REQUIRE(stored.ok());
  CHECK(stored->state() == v1::TRIAL_STATE_RUNNING);
  CHECK(stored->worker_id() == holder);
  CHECK(stored->epochs_size() == 0);
  REQUIRE(f.Report(lease, 1, 0.5).ok());
  auto state = f.Complete(lease);
  REQUIRE(state.ok());
  CHECK(*state == v1::TRIAL_STATE_COMPLETE);
}

}  // namespace
}  // namespace hpsearch::server
