// Pruning that says why and never wastes a finished trial, budget.max_failures, and extending a
// finished study with a larger n_trials: the coordinator over a real SQLite file and a manual
// clock.
#include <catch2/catch.hpp>

#include "db/database.h"
#include "server/coordinator_fixture.h"
#include "server/study_file/study_validator.h"
#include "server/study_file/study_view.h"

namespace hpsearch::server {
namespace {

using coordinator_testing::Fixture;
using coordinator_testing::MakeSpec;

// The median pruner, judging from the first complete trial on.
v1::StudySpec PrunedSpec(const std::string& name, int n_trials) {
  v1::StudySpec spec = MakeSpec(name, n_trials, 1);
  spec.mutable_pruner()->set_type(v1::PRUNER_TYPE_MEDIAN);
  spec.mutable_pruner()->set_n_startup_trials(1);
  spec.mutable_final_stage()->set_enabled(false);
  return spec;
}

absl::StatusOr<v1::ReportEpochResponse> ReportLast(Fixture& f, const std::string& lease, int epoch,
                                                   double accuracy, bool last) {
  v1::ReportEpochRequest request;
  request.set_lease_id(lease);
  request.set_worker_id(f.HolderOf(lease));
  request.mutable_metrics()->set_epoch(epoch);
  request.mutable_metrics()->set_val_accuracy(accuracy);
  request.mutable_metrics()->set_last(last);
  return f.coordinator->ReportEpoch(request);
}

std::string QueryText(const std::string& path, const char* sql) {
  db::DatabaseOptions options;
  options.read_only = true;
  auto db = db::Database::Open(path, options);
  REQUIRE(db.ok());
  auto stmt = (*db)->GetCachedStatement(sql);
  REQUIRE(stmt.ok());
  auto row = (*stmt)->Step();
  REQUIRE(row.ok());
  REQUIRE(*row);
  return (*stmt)->IsNull(0) ? "<null>" : (*stmt)->ColumnText(0);
}

TEST_CASE("A pruned trial stores the rule, the epoch, its value and the bar it missed",
          "[server][coordinator][prune]") {
  Fixture f;
  const std::string id = f.Submit(PrunedSpec("why", 3));
  const std::string worker = f.Register("w");
  f.RunTrial(worker, {0.8, 0.9});
  auto pruned = f.Acquire(worker);
  REQUIRE(pruned.has_value());
  auto decision = f.Report(pruned->lease_id(), 1, 0.25);
  REQUIRE(decision.ok());
  CHECK(decision->decision() == v1::EPOCH_DECISION_PRUNE);
  v1::CompleteTrialRequest stop = f.CompleteRequest(pruned->lease_id());
  stop.set_pruned(true);
  REQUIRE(f.coordinator->CompleteTrial(stop).ok());

  // A trial that was told to stop but completed anyway (a command that ignores the reply) keeps no
  // reason.
  auto ignored = f.Acquire(worker);
  REQUIRE(ignored.has_value());
  REQUIRE(f.Report(ignored->lease_id(), 1, 0.1)->decision() == v1::EPOCH_DECISION_PRUNE);
  REQUIRE(f.Report(ignored->lease_id(), 2, 0.95).ok());
  REQUIRE(f.Complete(ignored->lease_id()).value() == v1::TRIAL_STATE_COMPLETE);

  auto check = [&] {
    auto trial = f.coordinator->GetTrial(id, 1);
    REQUIRE(trial.ok());
    CHECK(trial->state() == v1::TRIAL_STATE_PRUNED);
    REQUIRE(trial->has_prune_reason());
    CHECK(trial->prune_reason().rule() == "median of 1 complete trials at epoch 1");
    CHECK(trial->prune_reason().epoch() == 1);
    CHECK(trial->prune_reason().value() == 0.25);
    CHECK(trial->prune_reason().threshold() == 0.8);
    auto completed = f.coordinator->GetTrial(id, 2);
    REQUIRE(completed.ok());
    CHECK(completed->state() == v1::TRIAL_STATE_COMPLETE);
    CHECK_FALSE(completed->has_prune_reason());
  };
  check();
  f.Restart();  // read back from the file
  check();
  const std::string db = (f.dir / "results.db").string();
  CHECK(QueryText(db,
                  "SELECT prune_rule || ' | ' || prune_epoch || ' | ' || prune_value || ' | ' || "
                  "prune_threshold FROM trial_summary WHERE trial_number = 1") ==
        "median of 1 complete trials at epoch 1 | 1 | 0.25 | 0.8");
  CHECK(QueryText(db, "SELECT COUNT(*) FROM trial_summary WHERE prune_rule IS NULL") == "2");
}

TEST_CASE("A trial reporting its last epoch is never pruned: it completes and competes for best",
          "[server][coordinator][prune]") {
  Fixture f;
  const std::string worker = f.Register("w");
  SECTION("the runner says it is the last epoch") {
    const std::string id = f.Submit(PrunedSpec("runner-says", 2));
    f.RunTrial(worker, {0.8, 0.9});
    auto trial = f.Acquire(worker);
    REQUIRE(trial.has_value());
    // Far below the bar, but the trial has finished its training: pruning would save nothing.
    auto reply = ReportLast(f, trial->lease_id(), 1, 0.3, /*last=*/true);
    REQUIRE(reply.ok());
    CHECK(reply->decision() == v1::EPOCH_DECISION_CONTINUE);
    REQUIRE(f.Complete(trial->lease_id()).value() == v1::TRIAL_STATE_COMPLETE);
    CHECK(f.coordinator->GetTrial(id, 1)->objective_value() == 0.3);
    // The same value on an epoch that is not the last is pruned.
    f.Submit(PrunedSpec("not-last", 2));
    f.RunTrial(worker, {0.8, 0.9});
    auto early = f.Acquire(worker);
    REQUIRE(early.has_value());
    CHECK(ReportLast(f, early->lease_id(), 1, 0.3, /*last=*/false)->decision() ==
          v1::EPOCH_DECISION_PRUNE);
  }
  SECTION("the trial's epochs parameter says it") {
    v1::StudySpec spec = PrunedSpec("epochs-param", 2);
    auto* epochs = spec.add_search_space();
    epochs->set_name("epochs");
    epochs->mutable_categorical()->add_choices()->set_int_value(1);
    f.Submit(spec);
    f.RunTrial(worker, {0.8});
    auto trial = f.Acquire(worker);
    REQUIRE(trial.has_value());
    CHECK(f.Report(trial->lease_id(), 1, 0.3)->decision() == v1::EPOCH_DECISION_CONTINUE);
    CHECK(f.Complete(trial->lease_id()).value() == v1::TRIAL_STATE_COMPLETE);
  }
  SECTION("pruner.max_epochs says it") {
    v1::StudySpec spec = PrunedSpec("max-epochs", 2);
    spec.mutable_pruner()->set_max_epochs(2);
    const std::string id = f.Submit(spec);
    f.RunTrial(worker, {0.8, 0.9});
    auto trial = f.Acquire(worker);
    REQUIRE(trial.has_value());
    CHECK(f.Report(trial->lease_id(), 1, 0.85)->decision() == v1::EPOCH_DECISION_CONTINUE);
    CHECK(f.Report(trial->lease_id(), 2, 0.95)->decision() == v1::EPOCH_DECISION_CONTINUE);
    CHECK(f.Complete(trial->lease_id()).value() == v1::TRIAL_STATE_COMPLETE);
    // It completed last and best: the search picks it.
    CHECK(f.Study(id).best_trial_number() == 1);
  }
}

TEST_CASE("budget.max_failures fails a doomed study early, saying why",
          "[server][coordinator][budget]") {
  Fixture f;
  const std::string worker = f.Register("w");
  auto fail = [&] {
    auto trial = f.Acquire(worker);
    REQUIRE(trial.has_value());
    REQUIRE(f.Fail(trial->lease_id(), /*retryable=*/false).ok());
  };
  SECTION("three in a row with max_failures 3") {
    v1::StudySpec spec = MakeSpec("doomed", 10, 1, 0);
    spec.mutable_budget()->set_max_failures(3);
    const std::string id = f.Submit(spec);
    fail();
    fail();
    f.RunTrial(worker, {0.5});  // a success resets the count
    fail();
    fail();
    CHECK(f.Study(id).state() == v1::STUDY_STATE_SEARCHING);
    fail();
    v1::Study study = f.Study(id);
    CHECK(study.state() == v1::STUDY_STATE_FAILED);
    CHECK(study.state_reason().find("the last 3 search trials failed in a row "
                                    "(budget.max_failures 3)") != std::string::npos);
    CHECK(study.state_reason().find("boom") != std::string::npos);
    CHECK(study.state_reason().find("hpsearch trials doomed --db ") != std::string::npos);
    CHECK(f.coordinator->ListTrials(id)->size() == 6);  // not the whole budget of 10
    CHECK_FALSE(f.Acquire(worker).has_value());
  }
  SECTION("a study stored without max_failures keeps running as it did") {
    const std::string id = f.Submit(MakeSpec("older", 7, 1, 0));
    for (int i = 0; i < 6; ++i) fail();
    CHECK(f.Study(id).state() == v1::STUDY_STATE_SEARCHING);
  }
  SECTION("a new study file gets the documented default") {
    v1::StudySpec spec = MakeSpec("new", 10, 1, 0);
    ValidationOptions options;
    options.check_files = false;
    NormalizeStudySpec(&spec, options);
    CHECK(spec.budget().max_failures() == kDefaultMaxFailures);
    CHECK(kDefaultMaxFailures == 5);
  }
}

TEST_CASE("A finished study is extended by a larger n_trials, its history kept",
          "[server][coordinator][extend]") {
  Fixture f;
  const std::string worker = f.Register("w");
  v1::StudySpec spec = MakeSpec("grow", 1, 1);
  const std::string id = f.Submit(spec);
  f.RunTrial(worker, {0.6});
  f.RunTrial(worker, {});  // the final trial
  REQUIRE(f.Study(id).state() == v1::STUDY_STATE_COMPLETE);
  REQUIRE(f.Study(id).final_trial_number() == 1);

  auto resubmit = [&](const v1::StudySpec& changed) {
    v1::SubmitStudyRequest request;
    *request.mutable_spec() = changed;
    request.set_resume_if_exists(true);
    request.set_extend_budget(true);
    return f.coordinator->SubmitStudy(request);
  };
  // Only the budget may differ.
  v1::StudySpec other = spec;
  other.mutable_budget()->set_n_trials(3);
  other.set_seed(7);
  auto refused = resubmit(other);
  CHECK(refused.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(refused.status().message().find("seed") != std::string::npos);

  v1::StudySpec grown = spec;
  grown.mutable_budget()->set_n_trials(2);
  // Without extend_budget a larger budget is a changed spec, as before.
  v1::SubmitStudyRequest plain;
  *plain.mutable_spec() = grown;
  plain.set_resume_if_exists(true);
  auto changed = f.coordinator->SubmitStudy(plain);
  CHECK(changed.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(changed.status().message().find("--n-trials N") != std::string::npos);
  auto extended = resubmit(grown);
  REQUIRE(extended.ok());
  CHECK(extended->resumed());
  v1::Study study = f.Study(id);
  CHECK(study.state() == v1::STUDY_STATE_SEARCHING);
  CHECK(study.spec().budget().n_trials() == 2);
  CHECK_FALSE(study.has_best_trial_number());
  f.RunTrial(worker, {0.9});
  REQUIRE(f.Study(id).state() == v1::STUDY_STATE_FINALIZING);
  // The final stage runs again, on the new best.
  auto final_trial = f.Acquire(worker);
  REQUIRE(final_trial.has_value());
  CHECK(final_trial->kind() == v1::TRIAL_KIND_FINAL);
  CHECK(final_trial->source_trial_number() == 2);
  REQUIRE(f.Complete(final_trial->lease_id()).ok());
  study = f.Study(id);
  CHECK(study.state() == v1::STUDY_STATE_COMPLETE);
  CHECK(study.best_trial_number() == 2);
  CHECK(study.final_trial_number() == 3);
  CHECK(f.coordinator->ListTrials(id)->size() == 4);  // the history stays

  // The stored spec carries the new budget after a restart; a smaller budget is refused.
  f.Restart();
  CHECK(f.Study(id).spec().budget().n_trials() == 2);
  v1::StudySpec shrunk = spec;
  shrunk.mutable_budget()->set_n_trials(1);
  CHECK(resubmit(shrunk).status().code() == absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace hpsearch::server
