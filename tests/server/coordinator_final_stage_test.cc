// The coordinator's final-trial spec: which retrain_on the final trial is leased with (train, or
// reuse when the best trial's stored model makes a retrain a repeat), and what the study says.
#include <catch2/catch.hpp>
#include <string>

#include "server/coordinator.h"
#include "server/coordinator_fixture.h"
#include "server/study_file/study_view.h"

namespace hpsearch::server {
namespace {

using namespace coordinator_testing;

v1::StudySpec BuiltInSpec(const std::string& name) {
  v1::StudySpec spec = MakeSpec(name, 2, 1);
  spec.mutable_runner()->Clear();
  spec.mutable_runner()->set_type(v1::RUNNER_TYPE_QLORA);
  spec.mutable_final_stage()->set_retrain_on(v1::RETRAIN_ON_TRAIN);
  return spec;
}

// Runs one search trial to COMPLETE with `accuracy`; with `upload`, records a stored model for
// it under its lease first (as a worker's UploadArtifact does before it completes).
void RunSearchTrial(Fixture& f, const std::string& worker, double accuracy, bool upload) {
  auto trial = f.Acquire(worker);
  REQUIRE(trial.has_value());
  REQUIRE(trial->kind() == v1::TRIAL_KIND_SEARCH);
  REQUIRE(f.Report(trial->lease_id(), 1, accuracy).ok());
  if (upload) {
    auto owner = f.coordinator->ArtifactOwnerOf(trial->lease_id(), worker);
    REQUIRE(owner.ok());
    db::ArtifactRecord record;
    record.trial_id = owner->trial_id;
    record.attempt = owner->attempt;
    record.lease_id = trial->lease_id();
    record.dir = "artifacts/stored/x/trial-" + std::to_string(trial->trial_number());
    record.uploaded_ms = 1;
    record.files.push_back({"adapter_model.safetensors", 10, std::string(64, 'a')});
    REQUIRE(f.coordinator->RecordArtifact(trial->lease_id(), worker, record).ok());
  }
  REQUIRE(f.Complete(trial->lease_id()).ok());
}

TEST_CASE("Coordinator leases the final trial as reuse when a retrain on train would repeat it",
          "[server][coordinator][final_stage]") {
  Fixture f;
  std::string id = f.Submit(BuiltInSpec("reuse-converted"));
  std::string worker = f.Register("w1");
  RunSearchTrial(f, worker, 0.6, /*upload=*/true);
  RunSearchTrial(f, worker, 0.8, /*upload=*/true);
  v1::Study study = f.Study(id);
  REQUIRE(study.state() == v1::STUDY_STATE_FINALIZING);
  CHECK(study.best_trial_number() == 1);
  INFO(study.state_reason());
  CHECK(study.state_reason().find("final trial 2 reuses trial 1's stored model instead of "
                                  "retraining it (a retrain on the same data with the same seed "
                                  "would repeat it exactly)") != std::string::npos);
  // The decision is read back from the database: a restarted coordinator leases it the same way.
  SECTION("as leased") {}
  SECTION("after a restart") {
    f.Restart();
    worker = f.Register("w1");  // a restarted coordinator knows no worker until it registers
  }
  auto final_trial = f.Acquire(worker);
  REQUIRE(final_trial.has_value());
  CHECK(final_trial->kind() == v1::TRIAL_KIND_FINAL);
  CHECK(final_trial->source_trial_number() == 1);
  CHECK(final_trial->retrain_on() == v1::RETRAIN_ON_REUSE);
  CHECK(final_trial->evaluate_test());
  // No epochs: the final trial completes with its test metrics alone.
  v1::ReportResultRequest result;
  result.set_lease_id(final_trial->lease_id());
  result.set_worker_id(worker);
  result.mutable_test()->set_test_accuracy(0.81);
  REQUIRE(f.coordinator->ReportResult(result).ok());
  REQUIRE(f.Complete(final_trial->lease_id()).ok());
  study = f.Study(id);
  CHECK(study.state() == v1::STUDY_STATE_COMPLETE);
  auto record = f.coordinator->GetTrial(id, 2);
  REQUIRE(record.ok());
  CHECK(record->epochs_size() == 0);
  bool converted = false;
  CHECK(FinalTrialReused(study.spec(), *record, &converted));
  CHECK(converted);
}

TEST_CASE("Coordinator retrains on train when the best trial's model is not stored",
          "[server][coordinator][final_stage]") {
  Fixture f;
  std::string id = f.Submit(BuiltInSpec("reuse-missing"));
  std::string worker = f.Register("w1");
  RunSearchTrial(f, worker, 0.9, /*upload=*/false);  // the best: its upload failed
  RunSearchTrial(f, worker, 0.7, /*upload=*/true);
  v1::Study study = f.Study(id);
  REQUIRE(study.state() == v1::STUDY_STATE_FINALIZING);
  INFO(study.state_reason());
  CHECK(study.state_reason().find("final trial 2 retrains it with the same parameters and seed "
                                  "on train (its model is not stored, so it cannot be reused)") !=
        std::string::npos);
  auto final_trial = f.Acquire(worker);
  REQUIRE(final_trial.has_value());
  CHECK(final_trial->source_trial_number() == 0);
  CHECK(final_trial->retrain_on() == v1::RETRAIN_ON_TRAIN);
}

TEST_CASE("Coordinator converts neither command trials nor train_validation",
          "[server][coordinator][final_stage]") {
  Fixture f;
  v1::StudySpec spec = GENERATE(as<int>{}, 0, 1) == 0 ? MakeSpec("command-train", 1, 1)
                                                      : BuiltInSpec("train-validation");
  if (spec.runner().type() == v1::RUNNER_TYPE_QLORA) {
    spec.mutable_final_stage()->set_retrain_on(v1::RETRAIN_ON_TRAIN_VALIDATION);
  }
  spec.mutable_budget()->set_n_trials(1);
  std::string id = f.Submit(spec);
  std::string worker = f.Register("w1");
  RunSearchTrial(f, worker, 0.9, /*upload=*/true);
  auto final_trial = f.Acquire(worker);
  REQUIRE(final_trial.has_value());
  CHECK(final_trial->retrain_on() == (spec.runner().type() == v1::RUNNER_TYPE_QLORA
                                          ? v1::RETRAIN_ON_TRAIN_VALIDATION
                                          : v1::RETRAIN_ON_TRAIN));
  CHECK(f.Study(id).state_reason().find("reuse") == std::string::npos);
}

TEST_CASE("Coordinator leases an explicit reuse final trial of a command study",
          "[server][coordinator][final_stage]") {
  Fixture f;
  v1::StudySpec spec = MakeSpec("command-reuse", 1, 1);
  spec.mutable_runner()->set_supports_evaluate(true);
  spec.mutable_final_stage()->set_retrain_on(v1::RETRAIN_ON_REUSE);
  std::string id = f.Submit(spec);
  std::string worker = f.Register("w1");
  RunSearchTrial(f, worker, 0.9, /*upload=*/true);
  INFO(f.Study(id).state_reason());
  CHECK(f.Study(id).state_reason().find(
            "final trial 1 evaluates trial 0's stored model on test without retraining") !=
        std::string::npos);
  auto final_trial = f.Acquire(worker);
  REQUIRE(final_trial.has_value());
  CHECK(final_trial->retrain_on() == v1::RETRAIN_ON_REUSE);
  CHECK(final_trial->params_size() == 2);  // the best trial's parameters, for the command's argv
}

TEST_CASE("FinalRetrainOn turns train into reuse only for the built-in trainer with a stored model",
          "[server][study_view][final_stage]") {
  v1::StudySpec spec = BuiltInSpec("rule");
  CHECK(FinalRetrainOn(spec, true) == v1::RETRAIN_ON_REUSE);
  CHECK(FinalRetrainConverted(spec, true));
  CHECK(FinalRetrainOn(spec, false) == v1::RETRAIN_ON_TRAIN);
  spec.mutable_final_stage()->clear_retrain_on();  // unset means train
  CHECK(FinalRetrainOn(spec, true) == v1::RETRAIN_ON_REUSE);
  spec.mutable_final_stage()->set_retrain_on(v1::RETRAIN_ON_REUSE);
  CHECK(FinalRetrainOn(spec, false) == v1::RETRAIN_ON_REUSE);  // asked for: the worker reports
  CHECK_FALSE(FinalRetrainConverted(spec, true));
  v1::StudySpec command = MakeSpec("rule-command", 1, 1);
  CHECK(FinalRetrainOn(command, true) == v1::RETRAIN_ON_TRAIN);
}

}  // namespace
}  // namespace hpsearch::server
