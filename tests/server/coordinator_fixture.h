// The coordinator test fixture shared by every coordinator test (coordinator_test.cc,
// coordinator_samplers_test.cc, coordinator_lease_test.cc): a Coordinator over a temp-file
// ResultsStore and a ManualClock, with helpers that play a worker and restart the coordinator.
#pragma once

#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "db/results_store.h"
#include "server/coordinator.h"
#include "testing/testing.h"

namespace hpsearch::server {
namespace coordinator_testing {

using hpsearch::testing::TempDir;

inline v1::StudySpec MakeSpec(const std::string& name, int n_trials, int parallelism,
                              int max_retries = 1) {
  v1::StudySpec spec;
  spec.set_name(name);
  spec.set_seed(42);
  auto* lr = spec.add_search_space();
  lr->set_name("learning_rate");
  lr->mutable_float_range()->set_low(1e-5);
  lr->mutable_float_range()->set_high(1e-3);
  lr->mutable_float_range()->set_log(true);
  auto* bs = spec.add_search_space();
  bs->set_name("batch_size");
  for (int64_t v : {8, 16}) bs->mutable_categorical()->add_choices()->set_int_value(v);
  spec.mutable_objective()->set_metric("val_accuracy");
  spec.mutable_objective()->set_direction(v1::DIRECTION_MAXIMIZE);
  spec.mutable_budget()->set_n_trials(n_trials);
  spec.mutable_budget()->set_parallelism(parallelism);
  spec.mutable_budget()->set_max_retries(max_retries);
  spec.mutable_runner()->set_type(v1::RUNNER_TYPE_COMMAND);
  spec.mutable_runner()->add_command("true");
  return spec;
}

// A coordinator over a temp-file store and a manual clock, re-creatable on the same file (a
// restart).
struct Fixture {
  TempDir dir;
  ManualClock clock;
  CoordinatorOptions options;
  std::unique_ptr<db::ResultsStore> store;
  std::unique_ptr<Coordinator> coordinator;
  // lease id -> the worker that acquired it, so reports name their lease's holder.
  std::map<std::string, std::string> holders;

  Fixture() {
    options.lease_ttl = absl::Seconds(10);
    options.heartbeat_interval = absl::Seconds(2);
    options.restart_grace = absl::Seconds(60);
    Start();
  }
  void Start() {
    db::DatabaseOptions db_options;
    db_options.exclusive_lock = true;
    auto opened = db::ResultsStore::Open((dir / "results.db").string(), db_options);
    REQUIRE(opened.ok());
    store = std::move(*opened);
    auto created = Coordinator::Create(store.get(), &clock, options);
    REQUIRE(created.ok());
    coordinator = std::move(*created);
  }
  // Stops the coordinator and starts a new one on the same file, `downtime` later.
  void Restart(absl::Duration downtime = absl::ZeroDuration()) {
    coordinator.reset();
    store.reset();
    clock.Advance(downtime);
    Start();
  }
  std::string Submit(const v1::StudySpec& spec) {
    v1::SubmitStudyRequest request;
    *request.mutable_spec() = spec;
    auto response = coordinator->SubmitStudy(request);
    REQUIRE(response.ok());
    return response->study_id();
  }
  std::string Register(const std::string& name) {
    v1::RegisterRequest request;
    request.mutable_info()->set_name(name);
    auto response = coordinator->Register(request);
    REQUIRE(response.ok());
    return response->worker_id();
  }
  std::optional<v1::TrialSpec> Acquire(const std::string& worker) {
    auto trial = coordinator->TryAcquire(worker);
    REQUIRE(trial.ok());
    if (trial->has_value()) holders[(*trial)->lease_id()] = worker;
    return *trial;
  }
  std::string HolderOf(const std::string& lease) {
    auto it = holders.find(lease);
    return it == holders.end() ? "wk-unknown" : it->second;
  }
  absl::StatusOr<v1::ReportEpochResponse> Report(const std::string& lease, int epoch, double acc) {
    v1::ReportEpochRequest request;
    request.set_lease_id(lease);
    request.set_worker_id(HolderOf(lease));
    request.mutable_metrics()->set_epoch(epoch);
    request.mutable_metrics()->set_val_accuracy(acc);
    request.mutable_metrics()->set_train_loss(1.0 / epoch);
    return coordinator->ReportEpoch(request);
  }
  // A completion of `lease` by the worker that holds it.
  v1::CompleteTrialRequest CompleteRequest(const std::string& lease) {
    v1::CompleteTrialRequest request;
    request.set_lease_id(lease);
    request.set_worker_id(HolderOf(lease));
    return request;
  }
  absl::StatusOr<v1::TrialState> Complete(const std::string& lease) {
    auto response = coordinator->CompleteTrial(CompleteRequest(lease));
    if (!response.ok()) return response.status();
    return response->state();
  }
  absl::StatusOr<v1::TrialState> Fail(const std::string& lease, bool retryable) {
    v1::FailTrialRequest request;
    request.set_lease_id(lease);
    request.set_worker_id(HolderOf(lease));
    request.set_error("boom");
    request.set_retryable(retryable);
    return coordinator->FailTrial(request);
  }
  // The worker holding `lease` is stopped (SIGTERM, Ctrl-C) and hands the trial back.
  absl::StatusOr<v1::TrialState> Stop(const std::string& lease) {
    v1::FailTrialRequest request;
    request.set_lease_id(lease);
    request.set_worker_id(HolderOf(lease));
    request.set_error("stopped by the user");
    request.set_retryable(true);
    request.set_stopped(true);
    return coordinator->FailTrial(request);
  }
  // Runs one trial to COMPLETE with the given per-epoch accuracies.
  v1::TrialSpec RunTrial(const std::string& worker, const std::vector<double>& accuracies) {
    auto trial = Acquire(worker);
    REQUIRE(trial.has_value());
    for (size_t i = 0; i < accuracies.size(); ++i) {
      REQUIRE(Report(trial->lease_id(), static_cast<int>(i) + 1, accuracies[i]).ok());
    }
    auto state = Complete(trial->lease_id());
    REQUIRE(state.ok());
    return *trial;
  }
  v1::Study Study(const std::string& id) {
    auto study = coordinator->GetStudy(id);
    REQUIRE(study.ok());
    return *study;
  }
};

}  // namespace coordinator_testing
}  // namespace hpsearch::server
