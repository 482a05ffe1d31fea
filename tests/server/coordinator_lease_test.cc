// The coordinator's answers on ended leases (before and after a restart), CompleteTrial carrying
// the next trial and the last epoch, data hashes on resubmission, and a time limit that skips
// coordinator downtime.
#include <catch2/catch.hpp>
#include <cmath>
#include <set>
#include <string>

#include "server/coordinator.h"
#include "server/coordinator_fixture.h"

namespace hpsearch::server {
namespace {

using namespace coordinator_testing;

const std::string kHashA(64, 'a');
const std::string kHashB(64, 'b');

v1::HeartbeatResponse Beat(Fixture& f, const std::string& worker, const std::string& lease) {
  v1::HeartbeatRequest request;
  request.set_worker_id(worker);
  request.add_lease_ids(lease);
  auto response = f.coordinator->Heartbeat(request);
  REQUIRE(response.ok());
  REQUIRE(response->leases_size() == 1);
  return *response;
}

absl::StatusOr<v1::SubmitStudyResponse> Submit(
    Fixture& f, const v1::StudySpec& spec, bool resume,
    const std::vector<std::pair<std::string, std::string>>& hashes) {
  v1::SubmitStudyRequest request;
  *request.mutable_spec() = spec;
  request.set_resume_if_exists(resume);
  for (const auto& [path, sha256] : hashes) (*request.mutable_data_sha256())[path] = sha256;
  return f.coordinator->SubmitStudy(request);
}

TEST_CASE("Ended leases get the same answers after a restart, from the database",
          "[server][coordinator][restart][lease]") {
  Fixture f;
  std::string id = f.Submit(MakeSpec("ended", 6, 4, /*max_retries=*/1));
  std::string worker = f.Register("w");
  v1::TrialSpec completed = f.RunTrial(worker, {0.5});
  auto failed = f.Acquire(worker);
  REQUIRE(f.Fail(failed->lease_id(), /*retryable=*/true).ok());  // back to WAITING, attempt 2
  auto expired = f.Acquire(worker);  // takes the waiting trial 1 again (attempt 2)
  auto other = f.Acquire(worker);
  REQUIRE(other.has_value());
  f.clock.Advance(absl::Seconds(11));  // past the 10 s ttl: both leases expire
  REQUIRE(f.coordinator->Tick().ok());
  REQUIRE(f.coordinator->CancelStudy(id, "enough").ok());

  for (int restart = 0; restart < 2; ++restart) {
    INFO((restart == 0 ? "before" : "after") << " a restart");
    // A retried CompleteTrial or FailTrial whose reply was lost gets the first answer again.
    auto again = f.Complete(completed.lease_id());
    REQUIRE(again.ok());
    CHECK(*again == v1::TRIAL_STATE_COMPLETE);
    auto fail_again = f.Fail(failed->lease_id(), true);
    REQUIRE(fail_again.ok());
    CHECK(*fail_again == v1::TRIAL_STATE_WAITING);
    // Any other call on an ended lease: FAILED_PRECONDITION saying how it ended.
    auto late = f.Report(completed.lease_id(), 2, 0.6);
    CHECK(late.status().code() == absl::StatusCode::kFailedPrecondition);
    CHECK_THAT(std::string(late.status().message()), Catch::Contains("ended complete"));
    auto stale = f.Report(expired->lease_id(), 1, 0.6);
    CHECK(stale.status().code() == absl::StatusCode::kFailedPrecondition);
    CHECK_THAT(std::string(stale.status().message()), Catch::Contains("lease expired"));
    CHECK(f.Complete(expired->lease_id()).status().code() == absl::StatusCode::kFailedPrecondition);
    v1::HeartbeatResponse beat = Beat(f, worker, expired->lease_id());
    CHECK(beat.leases(0).order() == v1::LEASE_ORDER_LOST);
    CHECK_THAT(beat.leases(0).reason(), Catch::Contains("lease expired"));
    // A lease that never existed stays NOT_FOUND.
    CHECK(f.Report("ls-never", 1, 0.5).status().code() == absl::StatusCode::kNotFound);
    f.Restart();
  }
  // The retries changed nothing.
  v1::Study study = f.Study(id);
  CHECK(study.trial_counts().at("complete") == 1);
  auto trial = f.coordinator->GetTrial(id, 0);
  REQUIRE(trial.ok());
  CHECK(trial->epochs_size() == 1);
}

TEST_CASE("A cancelled study's leases are cancel orders after a restart too",
          "[server][coordinator][restart][lease]") {
  Fixture f;
  std::string id = f.Submit(MakeSpec("cancelled", 3, 1));
  std::string worker = f.Register("w");
  auto trial = f.Acquire(worker);
  REQUIRE(f.coordinator->CancelStudy(id, "wrong data").ok());
  f.Restart();
  v1::HeartbeatResponse beat = Beat(f, worker, trial->lease_id());
  CHECK(beat.leases(0).order() == v1::LEASE_ORDER_CANCEL);
  CHECK_THAT(beat.leases(0).reason(), Catch::Contains("wrong data"));
  CHECK(f.Complete(trial->lease_id()).status().code() == absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("Old ended leases are answered without being kept in memory",
          "[server][coordinator][lease]") {
  // The coordinator keeps no per-attempt record once a lease ends: a retry for the first of many
  // finished trials is answered from the store, exactly as one for the last.
  Fixture f;
  f.Submit(MakeSpec("many", 300, 1));
  std::string worker = f.Register("w");
  std::vector<std::string> leases;
  for (int i = 0; i < 300; ++i) leases.push_back(f.RunTrial(worker, {0.001 * i}).lease_id());
  CHECK(f.coordinator->LiveLeaseCount() == 0);
  for (const std::string& lease : {leases.front(), leases[150], leases.back()}) {
    auto again = f.Complete(lease);
    REQUIRE(again.ok());
    CHECK(*again == v1::TRIAL_STATE_COMPLETE);
    auto late = f.Report(lease, 2, 0.5);
    CHECK(late.status().code() == absl::StatusCode::kFailedPrecondition);
  }
  CHECK(f.coordinator->LiveLeaseCount() == 0);
}

TEST_CASE("CompleteTrial leases the worker its next trial in the same call",
          "[server][coordinator][acquire]") {
  Fixture f;
  std::string id = f.Submit(MakeSpec("chain", 3, 1));
  std::string worker = f.Register("w");
  auto first = f.Acquire(worker);
  REQUIRE(first.has_value());
  std::set<int> numbers = {first->trial_number()};
  v1::CompleteTrialRequest request;
  request.set_lease_id(first->lease_id());
  request.set_worker_id(worker);
  request.set_lease_next(true);
  std::string lease = first->lease_id();
  for (int i = 0; i < 2; ++i) {
    REQUIRE(f.Report(lease, 1, 0.1 * (i + 1)).ok());
    request.set_lease_id(lease);
    auto response = f.coordinator->CompleteTrial(request);
    REQUIRE(response.ok());
    CHECK(response->state() == v1::TRIAL_STATE_COMPLETE);
    // Parallelism 1: the slot the completion freed is the one the next trial takes.
    REQUIRE(response->has_next_trial());
    lease = response->next_trial().lease_id();
    f.holders[lease] = worker;
    numbers.insert(response->next_trial().trial_number());
    auto running = f.coordinator->GetTrial(id, response->next_trial().trial_number());
    CHECK(running->state() == v1::TRIAL_STATE_RUNNING);
    CHECK(running->worker_id() == worker);
  }
  CHECK(numbers == std::set<int>{0, 1, 2});
  // The budget is spent: the last completion starts the final stage, whose trial comes next.
  REQUIRE(f.Report(lease, 1, 0.9).ok());
  request.set_lease_id(lease);
  auto last = f.coordinator->CompleteTrial(request);
  REQUIRE(last.ok());
  REQUIRE(last->has_next_trial());
  CHECK(last->next_trial().kind() == v1::TRIAL_KIND_FINAL);
  CHECK(last->next_trial().source_trial_number() == 2);
  // A retry of that completion (its reply was lost) answers the same state and hands out the same
  // next trial under the same lease: nothing is leased twice, and nothing is left to expire.
  auto retried = f.coordinator->CompleteTrial(request);
  REQUIRE(retried.ok());
  CHECK(retried->state() == v1::TRIAL_STATE_COMPLETE);
  REQUIRE(retried->has_next_trial());
  CHECK(retried->next_trial().lease_id() == last->next_trial().lease_id());
  CHECK(retried->next_trial().trial_number() == last->next_trial().trial_number());
  CHECK(f.coordinator->LiveLeaseCount() == 1);
  CHECK(f.Study(id).trial_counts().at("running") == 1);
  // Nothing left to hand out: the completion alone.
  request.set_lease_id(last->next_trial().lease_id());
  auto final_done = f.coordinator->CompleteTrial(request);
  REQUIRE(final_done.ok());
  CHECK_FALSE(final_done->has_next_trial());
  CHECK(f.Study(id).state() == v1::STUDY_STATE_COMPLETE);
  CHECK(f.Study(id).trial_counts().at("complete") == 4);
}

TEST_CASE("CompleteTrial records the last epoch it carries, in the same commit",
          "[server][coordinator][acquire]") {
  Fixture f;
  std::string id = f.Submit(MakeSpec("last-epoch", 3, 1));
  std::string worker = f.Register("w");
  auto trial = f.Acquire(worker);
  REQUIRE(trial.has_value());
  REQUIRE(f.Report(trial->lease_id(), 1, 0.25).ok());
  v1::CompleteTrialRequest request = f.CompleteRequest(trial->lease_id());

  SECTION("a valid last epoch is stored and counts as the objective") {
    request.mutable_last_epoch()->set_epoch(2);
    request.mutable_last_epoch()->set_val_accuracy(0.75);
    auto done = f.coordinator->CompleteTrial(request);
    REQUIRE(done.ok());
    CHECK(done->state() == v1::TRIAL_STATE_COMPLETE);
    auto stored = f.coordinator->GetTrial(id, trial->trial_number());
    REQUIRE(stored->epochs_size() == 2);
    CHECK(stored->epochs(1).val_accuracy() == 0.75);
    CHECK(stored->objective_value() == 0.75);
    // A retry after a lost reply: the same answer, and the epoch is not stored twice.
    auto retried = f.coordinator->CompleteTrial(request);
    REQUIRE(retried.ok());
    CHECK(retried->state() == v1::TRIAL_STATE_COMPLETE);
    CHECK(f.coordinator->GetTrial(id, trial->trial_number())->epochs_size() == 2);
  }
  SECTION("an epoch already reported is a duplicate, and the first report stands") {
    request.mutable_last_epoch()->set_epoch(1);
    request.mutable_last_epoch()->set_val_accuracy(0.99);
    REQUIRE(f.coordinator->CompleteTrial(request).ok());
    auto stored = f.coordinator->GetTrial(id, trial->trial_number());
    REQUIRE(stored->epochs_size() == 1);
    CHECK(stored->epochs(0).val_accuracy() == 0.25);
  }
  SECTION("an epoch out of order or a NaN metric refuses the completion and records nothing") {
    request.mutable_last_epoch()->set_epoch(3);
    request.mutable_last_epoch()->set_val_accuracy(0.5);
    request.mutable_result()->mutable_extra()->insert({"tokens", 7.0});
    auto skipped = f.coordinator->CompleteTrial(request);
    CHECK(skipped.status().code() == absl::StatusCode::kOutOfRange);
    CHECK(skipped.status().message().find("expected 2") != std::string::npos);
    request.mutable_last_epoch()->set_epoch(2);
    request.mutable_last_epoch()->set_val_accuracy(std::nan(""));
    auto nan = f.coordinator->CompleteTrial(request);
    CHECK(nan.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(nan.status().message().find("val_accuracy is NaN") != std::string::npos);
    auto stored = f.coordinator->GetTrial(id, trial->trial_number());
    CHECK(stored->state() == v1::TRIAL_STATE_RUNNING);
    CHECK(stored->epochs_size() == 1);
    CHECK(stored->result().extra().empty());
    // The worker still holds the lease and can complete properly.
    request.mutable_last_epoch()->set_val_accuracy(0.5);
    auto done = f.coordinator->CompleteTrial(request);
    REQUIRE(done.ok());
    CHECK(done->state() == v1::TRIAL_STATE_COMPLETE);
  }
}

TEST_CASE("Data hashes are stored with a study and a resubmission must match them",
          "[server][coordinator][submit]") {
  Fixture f;
  v1::StudySpec spec = MakeSpec("hashed", 2, 1);
  auto created = Submit(f, spec, false, {{"data/train.csv", kHashA}, {"data/test.csv", kHashB}});
  REQUIRE(created.ok());
  f.Restart();
  CHECK(f.Study("hashed").data_sha256().at("data/train.csv") == kHashA);

  SECTION("the same hashes (any case) resume") {
    std::string upper(64, 'A');
    auto resumed = Submit(f, spec, true, {{"data/train.csv", upper}, {"data/test.csv", kHashB}});
    REQUIRE(resumed.ok());
    CHECK(resumed->resumed());
    CHECK(resumed->study_id() == created->study_id());
  }
  SECTION("a client that sends none is not checked") { CHECK(Submit(f, spec, true, {}).ok()); }
  SECTION("a changed file is refused, naming it and both hashes") {
    auto changed = Submit(f, spec, true, {{"data/train.csv", kHashB}, {"data/test.csv", kHashB}});
    CHECK(changed.status().code() == absl::StatusCode::kFailedPrecondition);
    CHECK_THAT(std::string(changed.status().message()),
               Catch::Contains("data: data/train.csv: sha256 " + kHashA + " at submission, " +
                               kHashB + " now"));
  }
  SECTION("a file missing or added is refused") {
    auto missing = Submit(f, spec, true, {{"data/train.csv", kHashA}});
    CHECK(missing.status().code() == absl::StatusCode::kFailedPrecondition);
    CHECK_THAT(std::string(missing.status().message()),
               Catch::Contains("data/test.csv: hashed at submission, not sent now"));
    auto added = Submit(f, spec, true,
                        {{"data/train.csv", kHashA}, {"data/test.csv", kHashB}, {"x.csv", kHashA}});
    CHECK_THAT(std::string(added.status().message()),
               Catch::Contains("x.csv: not hashed at submission, sent now"));
  }
  SECTION("spec and data differences are named together") {
    v1::StudySpec changed_spec = spec;
    changed_spec.set_seed(7);
    auto both = Submit(f, changed_spec, true, {{"data/train.csv", kHashB}});
    CHECK(both.status().code() == absl::StatusCode::kFailedPrecondition);
    CHECK_THAT(std::string(both.status().message()),
               Catch::Contains("spec: modified: seed: 42 -> 7") && Catch::Contains("data: "));
  }
  SECTION("a malformed hash is refused before anything is compared") {
    auto bad = Submit(f, spec, true, {{"data/train.csv", "abc"}});
    CHECK(bad.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(bad.status().message()),
               Catch::Contains("data_sha256['data/train.csv']: 'abc' is not a sha256"));
  }
  SECTION("without resume an existing name stays ALREADY_EXISTS") {
    auto again = Submit(f, spec, false, {{"data/train.csv", kHashA}, {"data/test.csv", kHashB}});
    CHECK(again.status().code() == absl::StatusCode::kAlreadyExists);
  }
}

TEST_CASE("A study stored without hashes adopts the first ones sent", "[server][coordinator]") {
  Fixture f;
  v1::StudySpec spec = MakeSpec("adopt", 2, 1);
  REQUIRE(Submit(f, spec, false, {}).ok());
  REQUIRE(Submit(f, spec, true, {{"train.csv", kHashA}}).ok());
  f.Restart();
  CHECK(f.Study("adopt").data_sha256().at("train.csv") == kHashA);
  CHECK(Submit(f, spec, true, {{"train.csv", kHashB}}).status().code() ==
        absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("A study's time limit does not count coordinator downtime",
          "[server][coordinator][timeout][restart]") {
  Fixture f;
  v1::StudySpec spec = MakeSpec("limited", 50, 1);
  spec.mutable_budget()->set_time_limit_seconds(100);
  std::string id = f.Submit(spec);
  std::string worker = f.Register("w");
  f.RunTrial(worker, {0.5});
  f.clock.Advance(absl::Seconds(60));
  REQUIRE(f.coordinator->Tick().ok());  // the alive mark at t = 60 s
  // Down for an hour: the study has used 60 s of its 100.
  f.Restart(absl::Hours(1));
  CHECK(f.Study(id).downtime_ms() == 3600 * 1000);
  worker = f.Register("w");
  f.clock.Advance(absl::Seconds(30));
  REQUIRE(f.coordinator->Tick().ok());
  f.RunTrial(worker, {0.6});  // t = 90 s of served time: still searching
  CHECK(f.Study(id).state() == v1::STUDY_STATE_SEARCHING);
  f.clock.Advance(absl::Seconds(11));
  REQUIRE(f.coordinator->Tick().ok());
  // 101 s served: no trial starts, and with none running the search ends.
  v1::Study study = f.Study(id);
  CHECK(study.state() == v1::STUDY_STATE_FINALIZING);
  CHECK(study.trial_counts().at("complete") == 2);
  auto final_trial = f.Acquire(worker);
  REQUIRE(final_trial.has_value());
  CHECK(final_trial->kind() == v1::TRIAL_KIND_FINAL);
}

TEST_CASE("A stop by the user hands the trial back at no cost to its retries, across restarts",
          "[server][coordinator][lease]") {
  Fixture f;
  std::string id = f.Submit(MakeSpec("exp", 1, 1, /*max_retries=*/1));
  std::string worker = f.Register("w");
  // Stopped three times (more than max_retries + 1): each time it waits again.
  for (int stop = 1; stop <= 3; ++stop) {
    auto trial = f.Acquire(worker);
    REQUIRE(trial.has_value());
    CHECK(trial->attempt() == stop);
    auto state = f.Stop(trial->lease_id());
    REQUIRE(state.ok());
    CHECK(*state == v1::TRIAL_STATE_WAITING);
    f.Restart();  // as `hpsearch run` does after a Ctrl-C; the marks are read back from the file
    worker = f.Register("w");
  }
  auto stored = f.coordinator->GetTrial(id, 0);
  REQUIRE(stored.ok());
  REQUIRE(stored->attempts_size() == 3);
  for (const v1::TrialAttempt& a : stored->attempts()) {
    CHECK(a.stopped());
    CHECK(a.error().find("stopped by the user") != std::string::npos);
  }
  // Its retries are all still there: one failure is retried, the second fails it.
  auto trial = f.Acquire(worker);
  REQUIRE(trial.has_value());
  auto state = f.Fail(trial->lease_id(), /*retryable=*/true);
  REQUIRE(state.ok());
  CHECK(*state == v1::TRIAL_STATE_WAITING);
  trial = f.Acquire(worker);
  REQUIRE(trial.has_value());
  state = f.Fail(trial->lease_id(), /*retryable=*/true);
  REQUIRE(state.ok());
  CHECK(*state == v1::TRIAL_STATE_FAILED);
  stored = f.coordinator->GetTrial(id, 0);
  REQUIRE(stored.ok());
  CHECK(stored->error().find("failed attempt 2 of 2, no retry left") != std::string::npos);
  CHECK_FALSE(stored->attempts(3).stopped());
}

// Found by bench/soak.py: a completion that also leased the next trial (lease_next) committed,
// then the coordinator was SIGKILLed before its reply left; the worker's retry, answered by the
// next life, got COMPLETE but no trial, and the lease waited out the restart grace with a worker
// that never heard of it.
TEST_CASE("A retried completion gets the trial its lost reply leased, after a restart too",
          "[server][coordinator][restart][lease]") {
  Fixture f;
  f.Submit(MakeSpec("regrant", 4, 1));
  std::string worker = f.Register("w");
  auto first = f.Acquire(worker);
  REQUIRE(first.has_value());
  REQUIRE(f.Report(first->lease_id(), 1, 0.5).ok());
  v1::CompleteTrialRequest request = f.CompleteRequest(first->lease_id());
  request.set_lease_next(true);
  auto lost = f.coordinator->CompleteTrial(request);  // committed; its reply never arrives
  REQUIRE(lost.ok());
  REQUIRE(lost->has_next_trial());
  const std::string granted = lost->next_trial().lease_id();

  for (int restart = 0; restart < 2; ++restart) {
    INFO((restart == 0 ? "before" : "after") << " a restart");
    auto retried = f.coordinator->CompleteTrial(request);
    REQUIRE(retried.ok());
    CHECK(retried->state() == v1::TRIAL_STATE_COMPLETE);
    REQUIRE(retried->has_next_trial());
    CHECK(retried->next_trial().lease_id() == granted);
    CHECK(retried->next_trial().trial_number() == lost->next_trial().trial_number());
    f.clock.Advance(absl::Seconds(1));
    f.Restart();
  }
}

}  // namespace
}  // namespace hpsearch::server
