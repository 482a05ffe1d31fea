// The one estimate of a study's progress (server/report/study_progress.h): trial time left from a
// progress row or finished epochs, and the study's ETA over lanes, pending trials and the final
// stage.
#include "server/report/study_progress.h"

#include <catch2/catch.hpp>

namespace hpsearch {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

int64_t MsBefore(double seconds) { return absl::ToUnixMillis(kNow - absl::Seconds(seconds)); }

v1::Study MakeStudy(int n_trials, int parallelism) {
  v1::Study study;
  study.set_id("s1");
  study.set_state(v1::STUDY_STATE_SEARCHING);
  study.set_created_unix_ms(MsBefore(1000));
  study.mutable_spec()->set_name("s");
  study.mutable_spec()->mutable_budget()->set_n_trials(n_trials);
  study.mutable_spec()->mutable_budget()->set_parallelism(parallelism);
  study.mutable_spec()->mutable_final_stage()->set_enabled(false);
  return study;
}

v1::Trial Ended(int number, double seconds, double ended_ago) {
  v1::Trial t;
  t.set_number(number);
  t.set_kind(v1::TRIAL_KIND_SEARCH);
  t.set_state(v1::TRIAL_STATE_COMPLETE);
  t.set_started_unix_ms(MsBefore(ended_ago + seconds));
  t.set_ended_unix_ms(MsBefore(ended_ago));
  return t;
}

v1::Trial Running(int number, double running_for) {
  v1::Trial t;
  t.set_number(number);
  t.set_kind(v1::TRIAL_KIND_SEARCH);
  t.set_state(v1::TRIAL_STATE_RUNNING);
  t.set_started_unix_ms(MsBefore(running_for));
  return t;
}

std::vector<const v1::Trial*> Pointers(const std::vector<v1::Trial>& trials) {
  std::vector<const v1::Trial*> out;
  for (const v1::Trial& t : trials) out.push_back(&t);
  return out;
}

TEST_CASE("A running trial's time left is its worker's ETA less the time since it was received",
          "[study_progress]") {
  v1::StudySpec spec;
  v1::Trial t = Running(0, 30);
  v1::TrialProgress* p = t.mutable_progress();
  p->set_epoch(1);
  p->set_epochs(2);
  p->set_step(10);
  p->set_total_steps(40);
  p->set_eta_seconds(90);
  p->set_updated_unix_ms(MsBefore(5));
  REQUIRE(server::TrialRemainingSeconds(spec, t, kNow) == Approx(85));
  p->set_updated_unix_ms(MsBefore(500));  // a stale row never goes below zero
  REQUIRE(*server::TrialRemainingSeconds(spec, t, kNow) == 0);
  t.set_state(v1::TRIAL_STATE_COMPLETE);
  REQUIRE_FALSE(server::TrialRemainingSeconds(spec, t, kNow));
}

TEST_CASE("Without a progress row, a trial's time left follows the pace of its finished epochs",
          "[study_progress]") {
  v1::StudySpec spec;
  v1::ParameterSpec* epochs = spec.add_search_space();
  epochs->set_name("epochs");
  epochs->mutable_int_range()->set_low(1);
  epochs->mutable_int_range()->set_high(4);
  v1::Trial t = Running(0, 30);
  v1::ParamAssignment* a = t.add_params();
  a->set_name("epochs");
  a->mutable_value()->set_int_value(4);
  REQUIRE_FALSE(server::TrialRemainingSeconds(spec, t, kNow));  // nothing finished yet
  v1::EpochMetrics* e = t.add_epochs();
  e->set_epoch(1);
  e->set_wall_time_seconds(20);
  REQUIRE(server::TrialRemainingSeconds(spec, t, kNow) == Approx(60));  // 3 more epochs of 20 s
  e->set_last(true);
  REQUIRE(*server::TrialRemainingSeconds(spec, t, kNow) == 0);
}

TEST_CASE("The study ETA runs pending trials in parallel lanes at the mean ended duration",
          "[study_progress]") {
  v1::Study study = MakeStudy(/*n_trials=*/6, /*parallelism=*/2);
  std::vector<v1::Trial> trials = {Ended(0, 100, 300), Ended(1, 100, 200)};
  trials.push_back(Running(2, 40));  // no progress row: mean 100 less 40 → 60 left
  v1::Trial with_row = Running(3, 10);
  with_row.mutable_progress()->set_total_steps(100);
  with_row.mutable_progress()->set_step(10);
  with_row.mutable_progress()->set_eta_seconds(20);
  with_row.mutable_progress()->set_updated_unix_ms(MsBefore(0));
  trials.push_back(with_row);  // 20 s left
  const server::StudyProgress p = server::EstimateStudyProgress(study, Pointers(trials), kNow);
  CHECK(p.search_ended == 2);
  CHECK(p.search_running == 2);
  CHECK(p.search_budget == 6);
  CHECK(p.elapsed_seconds == Approx(1000));
  // Lanes free at 20 and 60; two pending trials of 100 s each take them: 120 and 160.
  REQUIRE(p.eta_seconds);
  CHECK(*p.eta_seconds == Approx(160));
}

TEST_CASE("The final stage adds the best trial's duration; an ended study has no ETA",
          "[study_progress]") {
  v1::Study study = MakeStudy(/*n_trials=*/2, /*parallelism=*/1);
  study.mutable_spec()->mutable_final_stage()->clear_enabled();  // default: on
  study.mutable_spec()->mutable_final_stage()->set_retrain_on(v1::RETRAIN_ON_TRAIN_VALIDATION);
  std::vector<v1::Trial> trials = {Ended(0, 50, 300), Ended(1, 150, 100)};
  study.set_best_trial_number(1);
  study.set_state(v1::STUDY_STATE_FINALIZING);
  server::StudyProgress p = server::EstimateStudyProgress(study, Pointers(trials), kNow);
  REQUIRE(p.eta_seconds);
  CHECK(*p.eta_seconds == Approx(150));  // the final trial, not yet leased, retrains trial 1

  v1::Trial final_trial = Running(2, 100);
  final_trial.set_kind(v1::TRIAL_KIND_FINAL);
  trials.push_back(final_trial);
  p = server::EstimateStudyProgress(study, Pointers(trials), kNow);
  REQUIRE(p.eta_seconds);
  CHECK(*p.eta_seconds == Approx(50));
  CHECK(p.search_ended == 2);  // the final trial is not a search trial

  // A final stage that reuses the stored model only evaluates: nothing is added for it.
  trials.pop_back();
  study.mutable_spec()->mutable_final_stage()->set_retrain_on(v1::RETRAIN_ON_REUSE);
  p = server::EstimateStudyProgress(study, Pointers(trials), kNow);
  REQUIRE(p.eta_seconds);
  CHECK(*p.eta_seconds == 0);

  study.set_state(v1::STUDY_STATE_COMPLETE);
  study.set_ended_unix_ms(MsBefore(10));
  p = server::EstimateStudyProgress(study, Pointers(trials), kNow);
  CHECK_FALSE(p.eta_seconds);
  CHECK(p.elapsed_seconds == Approx(990));
}

TEST_CASE(
    "Before any trial ends or reports progress there is no ETA; no trial starts past the time "
    "limit",
    "[study_progress]") {
  v1::Study study = MakeStudy(/*n_trials=*/10, /*parallelism=*/2);
  std::vector<v1::Trial> trials = {Running(0, 5), Running(1, 5)};
  CHECK_FALSE(server::EstimateStudyProgress(study, Pointers(trials), kNow).eta_seconds);

  trials = {Ended(0, 1000, 10)};
  study.mutable_spec()->mutable_budget()->set_time_limit_seconds(1200);
  const server::StudyProgress p = server::EstimateStudyProgress(study, Pointers(trials), kNow);
  REQUIRE(p.eta_seconds);
  // 200 s are left to start trials: one per lane starts now and runs its 1,000 s; no more start.
  CHECK(*p.eta_seconds == Approx(1000));
}

}  // namespace
}  // namespace hpsearch
