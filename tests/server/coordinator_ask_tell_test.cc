// The ask/tell contract: `runner: {type: none}` studies, Tell's objective value, a second Tell, and
// what Ask says when it hands out no trial.
#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <limits>

#include "server/coordinator_fixture.h"
#include "server/study_file/study_file.h"
#include "server/study_file/study_validator.h"
#include "testing/testing.h"

namespace hpsearch::server {
namespace {

using namespace coordinator_testing;

// An ask/tell study as the validator normalises it: objective `value`, minimised, no final stage.
v1::StudySpec AskTellSpec(const std::string& name, int n_trials) {
  v1::StudySpec spec;
  spec.set_name(name);
  spec.mutable_runner()->set_type(v1::RUNNER_TYPE_NONE);
  auto* x = spec.add_search_space();
  x->set_name("x");
  x->mutable_float_range()->set_low(-1);
  x->mutable_float_range()->set_high(1);
  auto* momentum = spec.add_search_space();  // no parameter of the built-in trainer
  momentum->set_name("momentum");
  momentum->mutable_float_range()->set_low(0);
  momentum->mutable_float_range()->set_high(1);
  spec.mutable_budget()->set_n_trials(n_trials);
  ValidationOptions options;
  options.check_files = false;
  auto issues = NormalizeStudySpec(&spec, options);
  INFO(IssuesToStatus(issues).message());
  REQUIRE_FALSE(HasErrors(issues));
  return spec;
}

v1::AskRequest AskFor(const std::string& study) {
  v1::AskRequest ask;
  ask.set_study(study);
  ask.set_client_name("notebook");
  return ask;
}

v1::TellRequest TellOf(const v1::TrialSpec& trial, std::optional<double> value,
                       v1::TrialState state = v1::TRIAL_STATE_COMPLETE) {
  v1::TellRequest tell;
  tell.set_lease_id(trial.lease_id());
  tell.set_client_name("notebook");
  tell.set_state(state);
  if (value) tell.set_value(*value);
  return tell;
}

std::string Message(const absl::Status& status) { return std::string(status.message()); }

TEST_CASE("runner none needs no model or data and takes any parameter names",
          "[server][validator][ask]") {
  v1::StudySpec spec = AskTellSpec("free", 5);
  CHECK(spec.objective().metric() == "value");
  CHECK(spec.objective().direction() == v1::DIRECTION_MINIMIZE);
  CHECK_FALSE(spec.final_stage().enabled());
  CHECK(spec.budget().parallelism() == 5);  // the client decides how many run at once
  CHECK_FALSE(spec.has_data());
  CHECK_FALSE(spec.has_training());
  // A missing runner stays the built-in trainer, which still refuses both.
  v1::StudySpec trainer = spec;
  trainer.clear_runner();
  trainer.clear_objective();
  trainer.clear_final_stage();
  ValidationOptions options;
  options.check_files = false;
  std::string errors = Message(IssuesToStatus(NormalizeStudySpec(&trainer, options)));
  CHECK_THAT(errors, Catch::Contains("model:") && Catch::Contains("data.train_file") &&
                         Catch::Contains("the qlora runner has no parameter 'momentum'"));
}

TEST_CASE("A study file says `runner: none` and the coordinator's reader accepts it",
          "[server][validator][ask]") {
  testing::TempDir dir;
  std::string path = (dir / "ask.yaml").string();
  std::ofstream(path) << "name: asked\nrunner: {type: none}\nsearch_space:\n"
                         "  width: {type: int, low: 1, high: 8}\nbudget: {n_trials: 3}\n";
  auto loaded = LoadStudyFile(path, {});
  REQUIRE(loaded.ok());
  std::string issues;
  for (const auto& issue : loaded->issues) issues += issue.field + ": " + issue.message + "\n";
  INFO(issues);
  CHECK(loaded->issues.empty());
  CHECK(loaded->spec.runner().type() == v1::RUNNER_TYPE_NONE);
}

TEST_CASE("Tell carries the objective value in a field of its own", "[server][coordinator][ask]") {
  Fixture f;
  std::string id = f.Submit(AskTellSpec("told", 2));
  auto first = f.coordinator->Ask(AskFor("told"));
  REQUIRE(first.ok());
  CHECK(first->params_size() == 2);
  auto told = f.coordinator->Tell(TellOf(*first, 0.25));
  REQUIRE(told.ok());
  CHECK(told->state() == v1::TRIAL_STATE_COMPLETE);
  CHECK(told->objective_value() == 0.25);
  auto second = f.coordinator->Ask(AskFor("told"));
  REQUIRE(second.ok());
  REQUIRE(f.coordinator->Tell(TellOf(*second, -0.5)).ok());
  v1::Study study = f.Study(id);
  CHECK(study.state() == v1::STUDY_STATE_COMPLETE);  // no final stage: the search ends the study
  CHECK(study.best_trial_number() == 1);             // minimised
  CHECK(study.best_objective_value() == -0.5);
}

TEST_CASE("A Tell without an objective, or with a non-finite one, is refused and changes nothing",
          "[server][coordinator][ask]") {
  Fixture f;
  f.Submit(AskTellSpec("novalue", 1));
  auto trial = f.coordinator->Ask(AskFor("novalue"));
  REQUIRE(trial.ok());
  absl::Status missing = f.coordinator->Tell(TellOf(*trial, std::nullopt)).status();
  CHECK(missing.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(Message(missing),
             Catch::StartsWith("value: trial 0 told COMPLETE without an objective"));
  absl::Status nan =
      f.coordinator->Tell(TellOf(*trial, std::numeric_limits<double>::quiet_NaN())).status();
  CHECK(nan.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(Message(nan), Catch::StartsWith("value: is NaN"));
  absl::Status failed_with_value =
      f.coordinator->Tell(TellOf(*trial, 1.0, v1::TRIAL_STATE_FAILED)).status();
  CHECK(failed_with_value.code() == absl::StatusCode::kInvalidArgument);
  auto still = f.coordinator->GetTrial("novalue", 0);
  REQUIRE(still.ok());
  CHECK(still->state() == v1::TRIAL_STATE_RUNNING);
  CHECK(f.coordinator->Tell(TellOf(*trial, 3.0)).ok());
}

TEST_CASE("A second Tell repeats the first or is refused naming it", "[server][coordinator][ask]") {
  Fixture f;
  f.Submit(AskTellSpec("twice", 3));
  auto trial = f.coordinator->Ask(AskFor("twice"));
  REQUIRE(trial.ok());
  REQUIRE(f.coordinator->Tell(TellOf(*trial, 0.5)).ok());
  // The same Tell again (a retry whose reply was lost) gets the trial.
  auto again = f.coordinator->Tell(TellOf(*trial, 0.5));
  REQUIRE(again.ok());
  CHECK(again->objective_value() == 0.5);
  absl::Status other_value = f.coordinator->Tell(TellOf(*trial, 0.75)).status();
  CHECK(other_value.code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(Message(other_value),
             Catch::Contains("trial 0 was already told complete with value 0.5") &&
                 Catch::Contains("with value 0.75"));
  absl::Status other_state =
      f.coordinator->Tell(TellOf(*trial, std::nullopt, v1::TRIAL_STATE_FAILED)).status();
  CHECK(other_state.code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(Message(other_state), Catch::Contains("already told complete"));
  auto stored = f.coordinator->GetTrial("twice", 0);
  REQUIRE(stored.ok());
  CHECK(stored->objective_value() == 0.5);
}

TEST_CASE("Ask names the missing field", "[server][coordinator][ask]") {
  Fixture f;
  f.Submit(AskTellSpec("fields", 1));
  v1::AskRequest no_client = AskFor("fields");
  no_client.clear_client_name();
  absl::Status status = f.coordinator->Ask(no_client).status();
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(Message(status), Catch::StartsWith("client_name: is empty"));
  status = f.coordinator->Ask(AskFor("")).status();
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(Message(status), Catch::StartsWith("study: is empty"));
  status = f.coordinator->Ask(AskFor("nope")).status();
  CHECK(status.code() == absl::StatusCode::kNotFound);
  CHECK_THAT(Message(status), Catch::Contains("'nope'"));
  auto trial = f.coordinator->Ask(AskFor("fields"));
  REQUIRE(trial.ok());
  v1::TellRequest no_lease = TellOf(*trial, 1.0);
  no_lease.clear_lease_id();
  CHECK_THAT(Message(f.coordinator->Tell(no_lease).status()), Catch::StartsWith("lease_id:"));
  v1::TellRequest anonymous = TellOf(*trial, 1.0);
  anonymous.clear_client_name();
  CHECK_THAT(Message(f.coordinator->Tell(anonymous).status()), Catch::StartsWith("client_name:"));
}

TEST_CASE("Ask on an exhausted, finished or cancelled study says which, never UNAVAILABLE",
          "[server][coordinator][ask]") {
  Fixture f;
  f.Submit(AskTellSpec("spent", 1));
  auto trial = f.coordinator->Ask(AskFor("spent"));
  REQUIRE(trial.ok());
  absl::Status exhausted = f.coordinator->Ask(AskFor("spent")).status();
  CHECK(exhausted.code() == absl::StatusCode::kOutOfRange);
  CHECK_THAT(Message(exhausted),
             Catch::Contains("exhausted") && Catch::Contains("1 still running"));
  REQUIRE(f.coordinator->Tell(TellOf(*trial, 1.0)).ok());
  absl::Status complete = f.coordinator->Ask(AskFor("spent")).status();
  CHECK(complete.code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(Message(complete), Catch::Contains("study 'spent' is complete"));

  f.Submit(AskTellSpec("stopped", 5));
  REQUIRE(f.coordinator->CancelStudy("stopped", "enough").ok());
  absl::Status cancelled = f.coordinator->Ask(AskFor("stopped")).status();
  CHECK(cancelled.code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(Message(cancelled), Catch::Contains("study 'stopped' is cancelled"));

  // budget.parallelism reached is the one passing condition: UNAVAILABLE, and it says so.
  v1::StudySpec capped = AskTellSpec("capped", 5);
  capped.mutable_budget()->set_parallelism(1);
  f.Submit(capped);
  REQUIRE(f.coordinator->Ask(AskFor("capped")).ok());
  absl::Status busy = f.coordinator->Ask(AskFor("capped")).status();
  CHECK(busy.code() == absl::StatusCode::kUnavailable);
  CHECK_THAT(Message(busy), Catch::Contains("budget.parallelism 1"));
}

TEST_CASE("Ask hands out the final trial only when asked for it", "[server][coordinator][ask]") {
  Fixture f;
  v1::StudySpec spec = MakeSpec("finalask", 1, 1);  // a command study with a final stage
  std::string id = f.Submit(spec);
  auto trial = f.coordinator->Ask(AskFor("finalask"));
  REQUIRE(trial.ok());
  REQUIRE(f.coordinator->Tell(TellOf(*trial, 0.5)).ok());
  REQUIRE(f.Study(id).state() == v1::STUDY_STATE_FINALIZING);
  absl::Status refused = f.coordinator->Ask(AskFor("finalask")).status();
  CHECK(refused.code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(Message(refused), Catch::Contains("include_final"));
  v1::AskRequest with_final = AskFor("finalask");
  with_final.set_include_final(true);
  auto final_trial = f.coordinator->Ask(with_final);
  REQUIRE(final_trial.ok());
  CHECK(final_trial->kind() == v1::TRIAL_KIND_FINAL);
  CHECK(final_trial->source_trial_number() == 0);
}

TEST_CASE("Workers never acquire a trial of an ask/tell study", "[server][coordinator][ask]") {
  Fixture f;
  f.Submit(AskTellSpec("clients-only", 3));
  std::string worker = f.Register("w");
  CHECK_FALSE(f.Acquire(worker).has_value());
  CHECK(f.coordinator->Ask(AskFor("clients-only")).ok());
}

}  // namespace
}  // namespace hpsearch::server
