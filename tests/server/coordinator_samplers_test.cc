// The coordinator with the samplers and pruners of a study: grid exhaustion, prune decisions in
// the ReportEpoch reply, pruned trials, and TPE's constant liar across concurrent acquires.
#include <catch2/catch.hpp>
#include <set>
#include <string>

#include "db/database.h"
#include "server/coordinator_fixture.h"

namespace hpsearch::server {
namespace {

using namespace coordinator_testing;

std::string Key(const v1::TrialSpec& trial) {
  std::string key;
  for (const auto& p : trial.params()) key += p.name() + "=" + p.value().ShortDebugString() + ";";
  return key;
}

absl::StatusOr<v1::TrialState> CompletePruned(Fixture* f, const std::string& lease) {
  v1::CompleteTrialRequest request;
  request.set_lease_id(lease);
  request.set_worker_id(f->HolderOf(lease));
  request.set_pruned(true);
  auto response = f->coordinator->CompleteTrial(request);
  if (!response.ok()) return response.status();
  return response->state();
}

TEST_CASE("A grid study ends when its grid is exhausted, below n_trials",
          "[server][coordinator][grid]") {
  Fixture f;
  v1::StudySpec spec = MakeSpec("grid", 10, 1);
  spec.mutable_sampler()->set_type(v1::SAMPLER_TYPE_GRID);
  auto* lr = spec.mutable_search_space(0)->mutable_float_range();
  lr->set_log(false);
  lr->set_low(1e-4);
  lr->set_high(3e-4);
  lr->set_step(1e-4);  // 3 values x 2 batch sizes = 6 points
  const std::string id = f.Submit(spec);
  const std::string worker = f.Register("w");
  std::set<std::string> seen;
  for (int i = 0; i < 6; ++i) {
    CHECK(f.Study(id).state() == v1::STUDY_STATE_SEARCHING);
    seen.insert(Key(f.RunTrial(worker, {0.5 + 0.01 * i})));
  }
  CHECK(seen.size() == 6);
  const v1::Study study = f.Study(id);
  CHECK(study.state() == v1::STUDY_STATE_FINALIZING);
  CHECK(study.best_trial_number() == 5);
  auto final_trial = f.Acquire(worker);
  REQUIRE(final_trial.has_value());
  CHECK(final_trial->kind() == v1::TRIAL_KIND_FINAL);
  CHECK(final_trial->trial_number() == 6);
}

TEST_CASE(
    "The median pruner's decision is the ReportEpoch reply, and a pruned trial keeps its epochs",
    "[server][coordinator][pruner]") {
  Fixture f;
  v1::StudySpec spec = MakeSpec("median", 4, 1);
  spec.mutable_pruner()->set_type(v1::PRUNER_TYPE_MEDIAN);
  spec.mutable_pruner()->set_n_startup_trials(2);
  const std::string id = f.Submit(spec);
  const std::string worker = f.Register("w");
  f.RunTrial(worker, {0.5, 0.6, 0.7});
  f.RunTrial(worker, {0.6, 0.7, 0.8});

  // Above the median at epoch 1: continue.
  auto good = f.Acquire(worker);
  REQUIRE(good.has_value());
  auto reply = f.Report(good->lease_id(), 1, 0.9);
  REQUIRE(reply.ok());
  CHECK(reply->decision() == v1::EPOCH_DECISION_CONTINUE);
  REQUIRE(f.Report(good->lease_id(), 2, 0.9).ok());
  REQUIRE(f.Report(good->lease_id(), 3, 0.9).ok());
  REQUIRE(f.Complete(good->lease_id()).ok());

  // Below it: prune, and the decision sticks for the rest of the attempt.
  auto bad = f.Acquire(worker);
  REQUIRE(bad.has_value());
  reply = f.Report(bad->lease_id(), 1, 0.1);
  REQUIRE(reply.ok());
  CHECK(reply->decision() == v1::EPOCH_DECISION_PRUNE);
  reply = f.Report(bad->lease_id(), 2, 0.95);
  REQUIRE(reply.ok());
  CHECK(reply->decision() == v1::EPOCH_DECISION_PRUNE);
  auto state = CompletePruned(&f, bad->lease_id());
  REQUIRE(state.ok());
  CHECK(*state == v1::TRIAL_STATE_PRUNED);
  auto trial = f.coordinator->GetTrial(id, bad->trial_number());
  REQUIRE(trial.ok());
  CHECK(trial->state() == v1::TRIAL_STATE_PRUNED);
  REQUIRE(trial->epochs_size() == 2);
  CHECK(trial->epochs(0).val_accuracy() == 0.1);
  CHECK(trial->epochs(1).val_accuracy() == 0.95);

  // The search is over; the final trial is never pruned, however it does.
  const v1::Study study = f.Study(id);
  REQUIRE(study.state() == v1::STUDY_STATE_FINALIZING);
  CHECK(study.best_trial_number() == good->trial_number());
  auto final_trial = f.Acquire(worker);
  REQUIRE(final_trial.has_value());
  reply = f.Report(final_trial->lease_id(), 1, 0.01);
  REQUIRE(reply.ok());
  CHECK(reply->decision() == v1::EPOCH_DECISION_CONTINUE);
}

TEST_CASE("ASHA prunes a trial that loses at the end of a rung", "[server][coordinator][pruner]") {
  Fixture f;
  v1::StudySpec spec = MakeSpec("asha", 5, 2);
  spec.mutable_pruner()->set_type(v1::PRUNER_TYPE_ASHA);  // rungs end at epochs 1, 3, 9
  f.Submit(spec);
  const std::string worker = f.Register("w");
  auto first = f.Acquire(worker);
  auto second = f.Acquire(worker);
  REQUIRE(first.has_value());
  REQUIRE(second.has_value());
  auto reply = f.Report(first->lease_id(), 1, 0.6);
  REQUIRE(reply.ok());
  CHECK(reply->decision() == v1::EPOCH_DECISION_CONTINUE);  // alone at the rung
  reply = f.Report(second->lease_id(), 1, 0.4);
  REQUIRE(reply.ok());
  CHECK(reply->decision() == v1::EPOCH_DECISION_PRUNE);  // not the best of fewer than three
  reply = f.Report(first->lease_id(), 2, 0.1);
  REQUIRE(reply.ok());
  CHECK(reply->decision() == v1::EPOCH_DECISION_CONTINUE);  // epoch 2 ends no rung
}

TEST_CASE("TPE with constant liar gives eight workers acquiring at once eight distinct trials",
          "[server][coordinator][tpe]") {
  Fixture f;
  v1::StudySpec spec = MakeSpec("tpe", 30, 8);
  spec.clear_search_space();
  auto* a = spec.add_search_space();
  a->set_name("a");
  a->mutable_int_range()->set_low(0);
  a->mutable_int_range()->set_high(9);
  a->mutable_int_range()->set_step(1);
  auto* b = spec.add_search_space();
  b->set_name("b");
  for (const char* c : {"x", "y", "z"})
    b->mutable_categorical()->add_choices()->set_string_value(c);
  spec.mutable_sampler()->set_type(v1::SAMPLER_TYPE_TPE);
  f.Submit(spec);
  const std::string worker = f.Register("w");
  std::set<std::string> seen;
  for (int i = 0; i < 12; ++i) {
    auto trial = f.Acquire(worker);
    REQUIRE(trial.has_value());
    seen.insert(Key(*trial));
    const double acc = trial->params(1).value().string_value() == "y" ? 0.9 : 0.5;
    REQUIRE(f.Report(trial->lease_id(), 1,
                     acc - 0.01 * std::abs(trial->params(0).value().int_value() - 4))
                .ok());
    REQUIRE(f.Complete(trial->lease_id()).ok());
  }
  REQUIRE(seen.size() == 12);
  for (int k = 0; k < 8; ++k) {
    auto trial = f.Acquire(worker);
    REQUIRE(trial.has_value());
    CHECK(seen.insert(Key(*trial)).second);
  }
  CHECK(seen.size() == 20);
}

TEST_CASE(
    "TPE studies stored before the floors and the weight window existed keep what they ran with",
    "[server][coordinator][tpe][restart]") {
  Fixture f;
  v1::StudySpec spec = MakeSpec("old-tpe", 10, 1);
  spec.mutable_sampler()->set_type(v1::SAMPLER_TYPE_TPE);
  const std::string old_id = f.Submit(spec);
  spec.set_name("floor-only-tpe");
  const std::string floor_only_id = f.Submit(spec);
  spec.set_name("new-tpe");
  const std::string new_id = f.Submit(spec);
  CHECK(f.Study(new_id).spec().sampler().bandwidth_floor() == 0.6);  // the validator's defaults
  CHECK(f.Study(new_id).spec().sampler().late_bandwidth_floor() == 0.3);
  CHECK(f.Study(new_id).spec().sampler().late_weight_window() == 10);
  // Rewrite the first study's stored spec as an hpsearch without these options stored it, and the
  // second's as one with bandwidth_floor but without late_bandwidth_floor or late_weight_window
  // (the spec column is written once, at submission).
  v1::StudySpec old_spec = f.Study(old_id).spec();
  old_spec.mutable_sampler()->clear_bandwidth_floor();
  old_spec.mutable_sampler()->clear_late_bandwidth_floor();
  old_spec.mutable_sampler()->clear_late_weight_window();
  v1::StudySpec floor_only_spec = f.Study(floor_only_id).spec();
  floor_only_spec.mutable_sampler()->clear_late_bandwidth_floor();
  floor_only_spec.mutable_sampler()->clear_late_weight_window();
  f.coordinator.reset();
  f.store.reset();
  {
    auto db = db::Database::Open((f.dir / "results.db").string(), {});
    REQUIRE(db.ok());
    for (const auto& [id, stored] :
         {std::pair{old_id, old_spec}, std::pair{floor_only_id, floor_only_spec}}) {
      auto update = (*db)->GetCachedStatement("UPDATE studies SET spec = ? WHERE study_id = ?");
      REQUIRE(update.ok());
      (*update)->BindBlob(1, stored.SerializeAsString());
      (*update)->BindText(2, id);
      REQUIRE((*update)->Run().ok());
    }
  }
  f.Start();
  CHECK(f.Study(old_id).spec().sampler().bandwidth_floor() == 1.0);
  CHECK(f.Study(old_id).spec().sampler().late_bandwidth_floor() == 1.0);
  CHECK(f.Study(floor_only_id).spec().sampler().bandwidth_floor() == 0.6);
  CHECK(f.Study(floor_only_id).spec().sampler().late_bandwidth_floor() == 0.6);
  CHECK(f.Study(old_id).spec().sampler().late_weight_window() == 25);  // Optuna's weights
  CHECK(f.Study(floor_only_id).spec().sampler().late_weight_window() == 25);
  CHECK(f.Study(new_id).spec().sampler().bandwidth_floor() == 0.6);
  CHECK(f.Study(new_id).spec().sampler().late_bandwidth_floor() == 0.3);
  CHECK(f.Study(new_id).spec().sampler().late_weight_window() == 10);
  // Resubmitting the old study's file to resume it names the difference instead of switching.
  v1::SubmitStudyRequest request;
  *request.mutable_spec() = spec;
  request.mutable_spec()->set_name("old-tpe");
  request.set_resume_if_exists(true);
  auto resumed = f.coordinator->SubmitStudy(request);
  CHECK(resumed.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(resumed.status().message()), Catch::Contains("sampler.bandwidth_floor"));
}

}  // namespace
}  // namespace hpsearch::server
