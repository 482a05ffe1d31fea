#include "server/coordinator.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "server/coordinator_fixture.h"
#include "testing/testing.h"

namespace hpsearch::server {
namespace {

using namespace coordinator_testing;

TEST_CASE("Coordinator runs a study through search and final stage", "[server][coordinator]") {
  Fixture f;
  std::string id = f.Submit(MakeSpec("demo", 3, 2));
  std::string worker = f.Register("w1");
  v1::TrialSpec t0 = f.RunTrial(worker, {0.5, 0.6});
  v1::TrialSpec t1 = f.RunTrial(worker, {0.7, 0.9});
  CHECK(f.Study(id).state() == v1::STUDY_STATE_SEARCHING);
  v1::TrialSpec t2 = f.RunTrial(worker, {0.8});
  CHECK(t0.trial_number() == 0);
  CHECK(t1.trial_number() == 1);
  CHECK(t0.attempt() == 1);
  CHECK(t0.seed() == 42);
  CHECK(t1.seed() == 43);
  CHECK(t1.kind() == v1::TRIAL_KIND_SEARCH);
  // Parameters reach the training section too.
  CHECK(t1.training().learning_rate() == t1.params(0).value().double_value());

  v1::Study study = f.Study(id);
  REQUIRE(study.state() == v1::STUDY_STATE_FINALIZING);
  CHECK(study.best_trial_number() == 1);
  CHECK(study.best_objective_value() == 0.9);
  CHECK(study.state_reason().find("trial 1 is the best: val_accuracy 0.9") != std::string::npos);
  auto final_trial = f.Acquire(worker);
  REQUIRE(final_trial.has_value());
  CHECK(final_trial->kind() == v1::TRIAL_KIND_FINAL);
  CHECK(final_trial->trial_number() == 3);
  CHECK(final_trial->source_trial_number() == 1);
  CHECK(final_trial->seed() == t1.seed());
  CHECK(final_trial->params(0).SerializeAsString() == t1.params(0).SerializeAsString());
  CHECK(final_trial->retrain_on() == v1::RETRAIN_ON_TRAIN);
  CHECK(final_trial->evaluate_test());
  REQUIRE(f.Report(final_trial->lease_id(), 1, 0.7).ok());
  v1::ReportResultRequest result;
  result.set_lease_id(final_trial->lease_id());
  result.set_worker_id(worker);
  result.mutable_test()->set_test_accuracy(0.93);
  REQUIRE(f.coordinator->ReportResult(result).ok());
  REQUIRE(f.Complete(final_trial->lease_id()).ok());
  study = f.Study(id);
  CHECK(study.state() == v1::STUDY_STATE_COMPLETE);
  CHECK(study.final_trial_number() == 3);
  CHECK(study.trial_counts().at("complete") == 4);
  CHECK_FALSE(f.Acquire(worker).has_value());
  auto final_record = f.coordinator->GetTrial(id, 3);
  REQUIRE(final_record.ok());
  CHECK(final_record->result().test().test_accuracy() == 0.93);
}

TEST_CASE("Coordinator hands out enqueued trials first, then sampled ones",
          "[server][coordinator]") {
  Fixture f;
  v1::StudySpec spec = MakeSpec("enq", 3, 1);
  auto* enqueued = spec.add_enqueue()->add_params();
  enqueued->set_name("learning_rate");
  enqueued->mutable_value()->set_double_value(3e-4);
  f.Submit(spec);
  std::string worker = f.Register("w");
  auto first = f.RunTrial(worker, {0.1});
  CHECK(first.params(0).value().double_value() == 3e-4);
  CHECK(first.params(1).name() == "batch_size");
  auto second = f.RunTrial(worker, {0.1});
  CHECK(second.params(0).value().double_value() != 3e-4);
}

TEST_CASE("Coordinator caps concurrent leases at the study's parallelism",
          "[server][coordinator]") {
  Fixture f;
  f.Submit(MakeSpec("par", 10, 2));
  std::string worker = f.Register("w");
  auto a = f.Acquire(worker);
  auto b = f.Acquire(worker);
  auto c = f.Acquire(worker);
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  CHECK_FALSE(c.has_value());
  REQUIRE(f.Report(a->lease_id(), 1, 0.5).ok());
  REQUIRE(f.Complete(a->lease_id()).ok());
  CHECK(f.Acquire(worker).has_value());
}

TEST_CASE("An expired lease returns the trial to WAITING with attempt + 1, then FAILS",
          "[server][coordinator][lease]") {
  Fixture f;
  std::string id = f.Submit(MakeSpec("exp", 1, 1, /*max_retries=*/1));
  std::string worker = f.Register("w");
  auto first = f.Acquire(worker);
  REQUIRE(first.has_value());
  REQUIRE(f.Report(first->lease_id(), 1, 0.3).ok());
  f.clock.Advance(absl::Seconds(9));
  REQUIRE(f.coordinator->Tick().ok());
  auto trial = f.coordinator->GetTrial(id, 0);
  CHECK(trial->state() == v1::TRIAL_STATE_RUNNING);
  f.clock.Advance(absl::Seconds(2));
  REQUIRE(f.coordinator->Tick().ok());
  trial = f.coordinator->GetTrial(id, 0);
  CHECK(trial->state() == v1::TRIAL_STATE_WAITING);
  CHECK(trial->attempt() == 2);
  CHECK(trial->epochs_size() == 0);
  REQUIRE(trial->attempts_size() == 1);
  CHECK(trial->attempts(0).epochs_size() == 1);
  CHECK(trial->error().find("lease expired") != std::string::npos);
  // The old lease is refused precisely; its heartbeat says LOST.
  auto stale = f.Report(first->lease_id(), 2, 0.4);
  CHECK(stale.status().code() == absl::StatusCode::kFailedPrecondition);
  v1::HeartbeatRequest heartbeat;
  heartbeat.set_worker_id(worker);
  heartbeat.add_lease_ids(first->lease_id());
  auto beat = f.coordinator->Heartbeat(heartbeat);
  REQUIRE(beat.ok());
  CHECK(beat->leases(0).order() == v1::LEASE_ORDER_LOST);

  auto second = f.Acquire(worker);
  REQUIRE(second.has_value());
  CHECK(second->attempt() == 2);
  CHECK(second->seed() == first->seed());
  f.clock.Advance(absl::Seconds(11));
  REQUIRE(f.coordinator->Tick().ok());
  trial = f.coordinator->GetTrial(id, 0);
  CHECK(trial->state() == v1::TRIAL_STATE_FAILED);
  CHECK(trial->error().find("failed attempt 2 of 2, no retry left") != std::string::npos);
  v1::Study study = f.Study(id);
  CHECK(study.state() == v1::STUDY_STATE_FAILED);
  CHECK_FALSE(study.has_final_trial_number());
  CHECK(study.state_reason().find("no search trial completed") != std::string::npos);
}

TEST_CASE("Heartbeats keep a lease alive past its ttl", "[server][coordinator][lease]") {
  Fixture f;
  std::string id = f.Submit(MakeSpec("hb", 1, 1));
  std::string worker = f.Register("w");
  auto trial = f.Acquire(worker);
  REQUIRE(trial.has_value());
  for (int i = 0; i < 5; ++i) {
    f.clock.Advance(absl::Seconds(8));
    v1::HeartbeatRequest heartbeat;
    heartbeat.set_worker_id(worker);
    heartbeat.add_lease_ids(trial->lease_id());
    auto beat = f.coordinator->Heartbeat(heartbeat);
    REQUIRE(beat.ok());
    CHECK(beat->leases(0).order() == v1::LEASE_ORDER_CONTINUE);
    REQUIRE(f.coordinator->Tick().ok());
  }
  CHECK(f.coordinator->GetTrial(id, 0)->state() == v1::TRIAL_STATE_RUNNING);
}

TEST_CASE("Bad reports get precise statuses and change nothing", "[server][coordinator][faults]") {
  Fixture f;
  std::string id = f.Submit(MakeSpec("bad", 2, 1));
  std::string worker = f.Register("w");
  auto trial = f.Acquire(worker);
  REQUIRE(trial.has_value());
  REQUIRE(f.Report(trial->lease_id(), 1, 0.5).ok());

  auto again = f.Report(trial->lease_id(), 1, 0.99);
  REQUIRE(again.ok());
  CHECK(again->duplicate());
  auto skipped = f.Report(trial->lease_id(), 3, 0.5);
  CHECK(skipped.status().code() == absl::StatusCode::kOutOfRange);
  CHECK(skipped.status().message().find("expected 2") != std::string::npos);
  auto nan = f.Report(trial->lease_id(), 2, std::nan(""));
  CHECK(nan.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(nan.status().message().find("val_accuracy is NaN") != std::string::npos);
  v1::ReportEpochRequest inf;
  inf.set_lease_id(trial->lease_id());
  inf.set_worker_id(worker);
  inf.mutable_metrics()->set_epoch(2);
  (*inf.mutable_metrics()->mutable_extra())["tokens"] = std::numeric_limits<double>::infinity();
  CHECK(f.coordinator->ReportEpoch(inf).status().code() == absl::StatusCode::kInvalidArgument);
  auto unknown = f.Report("ls-nope", 1, 0.5);
  CHECK(unknown.status().code() == absl::StatusCode::kNotFound);

  auto stored = f.coordinator->GetTrial(id, 0);
  REQUIRE(stored->epochs_size() == 1);
  CHECK(stored->epochs(0).val_accuracy() == 0.5);
}

TEST_CASE("A retried CompleteTrial is idempotent and the trial completes once",
          "[server][coordinator][faults]") {
  Fixture f;
  std::string id = f.Submit(MakeSpec("idem", 2, 1));
  std::string worker = f.Register("w");
  auto trial = f.Acquire(worker);
  REQUIRE(f.Report(trial->lease_id(), 1, 0.5).ok());
  auto first = f.Complete(trial->lease_id());
  auto second = f.Complete(trial->lease_id());
  REQUIRE(first.ok());
  REQUIRE(second.ok());
  CHECK(*first == v1::TRIAL_STATE_COMPLETE);
  CHECK(*second == v1::TRIAL_STATE_COMPLETE);
  CHECK(f.Study(id).trial_counts().at("complete") == 1);
}

TEST_CASE("A trial that completes without its objective metric fails", "[server][coordinator]") {
  Fixture f;
  std::string id = f.Submit(MakeSpec("noobj", 1, 1));
  std::string worker = f.Register("w");
  auto trial = f.Acquire(worker);
  auto state = f.Complete(trial->lease_id());
  REQUIRE(state.ok());
  CHECK(*state == v1::TRIAL_STATE_FAILED);
  CHECK(f.coordinator->GetTrial(id, 0)->error().find("val_accuracy") != std::string::npos);
}

TEST_CASE("Retryable failures retry and non-retryable ones fail at once", "[server][coordinator]") {
  Fixture f;
  std::string id = f.Submit(MakeSpec("fail", 2, 1, /*max_retries=*/2));
  std::string worker = f.Register("w");
  auto a = f.Acquire(worker);
  auto state = f.Fail(a->lease_id(), true);
  REQUIRE(state.ok());
  CHECK(*state == v1::TRIAL_STATE_WAITING);
  auto b = f.Acquire(worker);
  CHECK(b->trial_number() == 0);
  CHECK(b->attempt() == 2);
  state = f.Fail(b->lease_id(), false);
  REQUIRE(state.ok());
  CHECK(*state == v1::TRIAL_STATE_FAILED);
  CHECK(f.coordinator->GetTrial(id, 0)->attempts_size() == 1);
}

TEST_CASE("n_trials is never exceeded with many workers at once", "[server][coordinator]") {
  Fixture f;
  std::string id = f.Submit(MakeSpec("race", 25, 8));
  constexpr int kWorkers = 12;
  std::vector<std::string> workers;
  for (int i = 0; i < kWorkers; ++i) workers.push_back(f.Register("w" + std::to_string(i)));
  std::mutex seen_mu;
  std::multiset<int> seen;
  std::atomic<int> concurrent{0};
  std::atomic<int> max_concurrent{0};
  std::atomic<int> finals{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kWorkers; ++i) {
    threads.emplace_back([&, i] {
      for (int spins = 0; spins < 2000; ++spins) {
        auto trial = f.coordinator->TryAcquire(workers[i]);
        if (!trial.ok()) return;
        if (!trial->has_value()) {
          auto study = f.coordinator->GetStudy(id);
          if (study->state() != v1::STUDY_STATE_SEARCHING) return;
          std::this_thread::yield();
          continue;
        }
        if ((*trial)->kind() == v1::TRIAL_KIND_FINAL) {
          ++finals;
          return;
        }
        int now = ++concurrent;
        int prev = max_concurrent.load();
        while (now > prev && !max_concurrent.compare_exchange_weak(prev, now)) {
        }
        {
          std::lock_guard<std::mutex> lock(seen_mu);
          seen.insert((*trial)->trial_number());
        }
        v1::ReportEpochRequest report;
        report.set_lease_id((*trial)->lease_id());
        report.set_worker_id(workers[i]);
        report.mutable_metrics()->set_epoch(1);
        report.mutable_metrics()->set_val_accuracy(0.01 * (*trial)->trial_number());
        f.coordinator->ReportEpoch(report).IgnoreError();
        --concurrent;
        v1::CompleteTrialRequest complete;
        complete.set_lease_id((*trial)->lease_id());
        complete.set_worker_id(workers[i]);
        f.coordinator->CompleteTrial(complete).IgnoreError();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  v1::Study study = f.Study(id);
  CHECK(study.state() == v1::STUDY_STATE_FINALIZING);
  CHECK(study.trial_counts().at("complete") == 25);
  CHECK(seen.size() == 25);
  CHECK(std::set<int>(seen.begin(), seen.end()).size() == 25);
  CHECK(max_concurrent <= 8);
  CHECK(study.best_trial_number() == 24);
  CHECK(finals == 1);
}

TEST_CASE("A restarted coordinator re-arms stored leases with a grace period",
          "[server][coordinator][restart]") {
  Fixture f;
  std::string id = f.Submit(MakeSpec("restart", 2, 2));
  std::string worker = f.Register("w");
  auto running = f.Acquire(worker);
  REQUIRE(running.has_value());
  REQUIRE(f.Report(running->lease_id(), 1, 0.4).ok());
  auto done = f.RunTrial(worker, {0.8});
  f.Restart();
  // The worker is unknown after a restart until it registers again under its id.
  CHECK(f.coordinator->TryAcquire(worker).status().code() == absl::StatusCode::kNotFound);
  f.clock.Advance(absl::Seconds(30));  // past the ttl, within the grace
  REQUIRE(f.coordinator->Tick().ok());
  auto trial = f.coordinator->GetTrial(id, 0);
  REQUIRE(trial.ok());
  CHECK(trial->state() == v1::TRIAL_STATE_RUNNING);
  CHECK(trial->epochs_size() == 1);
  auto duplicate = f.Report(running->lease_id(), 1, 0.4);
  REQUIRE(duplicate.ok());
  CHECK(duplicate->duplicate());
  REQUIRE(f.Report(running->lease_id(), 2, 0.5).ok());
  REQUIRE(f.Complete(running->lease_id()).ok());
  v1::Study study = f.Study(id);
  CHECK(study.state() == v1::STUDY_STATE_FINALIZING);
  CHECK(study.best_trial_number() == 1);
  CHECK(study.trial_counts().at("complete") == 2);
}

TEST_CASE("A lease left by a dead worker expires after the restart grace",
          "[server][coordinator][restart]") {
  Fixture f;
  std::string id = f.Submit(MakeSpec("grace", 1, 1));
  std::string worker = f.Register("w");
  auto running = f.Acquire(worker);
  f.Restart();
  f.clock.Advance(absl::Seconds(59));
  REQUIRE(f.coordinator->Tick().ok());
  CHECK(f.coordinator->GetTrial(id, 0)->state() == v1::TRIAL_STATE_RUNNING);
  f.clock.Advance(absl::Seconds(2));
  REQUIRE(f.coordinator->Tick().ok());
  auto trial = f.coordinator->GetTrial(id, 0);
  CHECK(trial->state() == v1::TRIAL_STATE_WAITING);
  CHECK(trial->attempt() == 2);
}

TEST_CASE("Cancelling a study orders its workers to stop and refuses their reports",
          "[server][coordinator][cancel]") {
  Fixture f;
  std::string id = f.Submit(MakeSpec("cancel", 5, 2));
  std::string worker = f.Register("w");
  auto trial = f.Acquire(worker);
  auto cancelled = f.coordinator->CancelStudy("cancel", "user asked");
  REQUIRE(cancelled.ok());
  CHECK(cancelled->state() == v1::STUDY_STATE_CANCELLED);
  v1::HeartbeatRequest heartbeat;
  heartbeat.set_worker_id(worker);
  heartbeat.add_lease_ids(trial->lease_id());
  auto beat = f.coordinator->Heartbeat(heartbeat);
  CHECK(beat->leases(0).order() == v1::LEASE_ORDER_CANCEL);
  auto report = f.Report(trial->lease_id(), 1, 0.5);
  CHECK(report.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(report.status().message().find("was cancelled") != std::string::npos);
  CHECK_FALSE(f.Acquire(worker).has_value());
  CHECK(f.coordinator->CancelStudy(id, "").status().code() ==
        absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("A trial past its timeout is cancelled and retried", "[server][coordinator][timeout]") {
  Fixture f;
  v1::StudySpec spec = MakeSpec("slow", 1, 1);
  spec.mutable_budget()->set_trial_timeout_seconds(20);
  std::string id = f.Submit(spec);
  std::string worker = f.Register("w");
  auto trial = f.Acquire(worker);
  CHECK(trial->timeout_seconds() == 20);
  for (int i = 0; i < 3; ++i) {
    f.clock.Advance(absl::Seconds(8));
    v1::HeartbeatRequest heartbeat;
    heartbeat.set_worker_id(worker);
    heartbeat.add_lease_ids(trial->lease_id());
    REQUIRE(f.coordinator->Heartbeat(heartbeat).ok());
    REQUIRE(f.coordinator->Tick().ok());
  }
  v1::HeartbeatRequest heartbeat;
  heartbeat.set_worker_id(worker);
  heartbeat.add_lease_ids(trial->lease_id());
  auto beat = f.coordinator->Heartbeat(heartbeat);
  CHECK(beat->leases(0).order() == v1::LEASE_ORDER_CANCEL);
  CHECK(beat->leases(0).reason().find("timed out") != std::string::npos);
  auto stored = f.coordinator->GetTrial(id, 0);
  CHECK(stored->state() == v1::TRIAL_STATE_WAITING);
  CHECK(stored->attempt() == 2);
}

TEST_CASE("No trial starts after the study's time limit", "[server][coordinator][timeout]") {
  Fixture f;
  v1::StudySpec spec = MakeSpec("limit", 10, 1);
  spec.mutable_budget()->set_time_limit_seconds(100);
  std::string id = f.Submit(spec);
  std::string worker = f.Register("w");
  f.RunTrial(worker, {0.5});
  auto running = f.Acquire(worker);
  for (int i = 0; i < 11; ++i) {
    f.clock.Advance(absl::Seconds(9.2));
    v1::HeartbeatRequest heartbeat;
    heartbeat.set_worker_id(worker);
    heartbeat.add_lease_ids(running->lease_id());
    REQUIRE(f.coordinator->Heartbeat(heartbeat).ok());
    REQUIRE(f.coordinator->Tick().ok());
  }
  CHECK(f.Study(id).state() == v1::STUDY_STATE_SEARCHING);  // the running trial may finish
  REQUIRE(f.Report(running->lease_id(), 1, 0.7).ok());
  REQUIRE(f.Complete(running->lease_id()).ok());
  v1::Study study = f.Study(id);
  CHECK(study.state() == v1::STUDY_STATE_FINALIZING);
  CHECK(study.best_trial_number() == 1);
  auto final_trial = f.Acquire(worker);
  REQUIRE(final_trial.has_value());
  CHECK(final_trial->kind() == v1::TRIAL_KIND_FINAL);
}

TEST_CASE("Resubmitting a study resumes it only when its spec is unchanged",
          "[server][coordinator]") {
  Fixture f;
  v1::StudySpec spec = MakeSpec("resume", 3, 1);
  std::string id = f.Submit(spec);
  v1::SubmitStudyRequest request;
  *request.mutable_spec() = spec;
  CHECK(f.coordinator->SubmitStudy(request).status().code() == absl::StatusCode::kAlreadyExists);
  request.set_resume_if_exists(true);
  auto resumed = f.coordinator->SubmitStudy(request);
  REQUIRE(resumed.ok());
  CHECK(resumed->resumed());
  CHECK(resumed->study_id() == id);
  request.mutable_spec()->mutable_budget()->set_n_trials(4);
  auto changed = f.coordinator->SubmitStudy(request);
  CHECK(changed.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(changed.status().message()),
             Catch::Contains("budget.n_trials: 3 -> 4") && Catch::Contains("under another name"));
}

TEST_CASE("Ask and Tell run a trial for an external client", "[server][coordinator][ask]") {
  Fixture f;
  std::string id = f.Submit(MakeSpec("ask", 1, 1));
  v1::AskRequest ask;
  ask.set_study("ask");
  ask.set_client_name("notebook");
  auto trial = f.coordinator->Ask(ask);
  REQUIRE(trial.ok());
  // Its one trial is running: the budget is spent (not a passing condition, so not UNAVAILABLE).
  CHECK(f.coordinator->Ask(ask).status().code() == absl::StatusCode::kOutOfRange);
  v1::TellRequest tell;
  tell.set_lease_id(trial->lease_id());
  tell.set_client_name("notebook");
  tell.set_state(v1::TRIAL_STATE_COMPLETE);
  auto* epoch = tell.add_epochs();
  epoch->set_epoch(1);
  epoch->set_val_accuracy(0.75);
  auto told = f.coordinator->Tell(tell);
  REQUIRE(told.ok());
  CHECK(told->state() == v1::TRIAL_STATE_COMPLETE);
  CHECK(told->objective_value() == 0.75);
  CHECK(f.Study(id).state() == v1::STUDY_STATE_FINALIZING);
}

TEST_CASE("Subscribers see trial and epoch events in order", "[server][coordinator][watch]") {
  Fixture f;
  std::string id = f.Submit(MakeSpec("watch", 1, 1));
  std::vector<v1::StudyEvent> events;
  v1::Study snapshot;
  std::vector<v1::Trial> trials;
  auto token = f.coordinator->Subscribe(
      id, [&](const v1::StudyEvent& event) { events.push_back(event); }, &snapshot, &trials);
  REQUIRE(token.ok());
  CHECK(snapshot.state() == v1::STUDY_STATE_SEARCHING);
  std::string worker = f.Register("w");
  f.RunTrial(worker, {0.5});
  f.coordinator->Unsubscribe(*token);
  f.Acquire(worker);
  std::vector<std::string> kinds;
  for (const auto& event : events) {
    if (event.has_trial()) kinds.push_back("trial:" + db::TrialStateName(event.trial().state()));
    if (event.has_epoch()) kinds.push_back("epoch");
    if (event.has_study()) kinds.push_back("study:" + db::StudyStateName(event.study().state()));
  }
  CHECK(kinds == std::vector<std::string>{"trial:waiting", "trial:running", "epoch",
                                          "trial:complete", "trial:waiting", "study:finalizing"});
}

}  // namespace
}  // namespace hpsearch::server
