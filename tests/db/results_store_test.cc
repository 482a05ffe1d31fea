#include "db/results_store.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "db/database.h"
#include "db/schema.h"
#include "proto/canonical_metrics.h"
#include "testing/testing.h"

namespace hpsearch::db {
namespace {

using hpsearch::testing::TempDir;

DatabaseOptions CoordinatorOptions(Durability durability = Durability::kNormal) {
  DatabaseOptions options;
  options.durability = durability;
  options.exclusive_lock = true;
  return options;
}

std::unique_ptr<ResultsStore> OpenStore(const std::string& path,
                                        Durability durability = Durability::kNormal) {
  auto store = ResultsStore::Open(path, CoordinatorOptions(durability));
  REQUIRE(store.ok());
  return std::move(*store);
}

// A schema version 1 file holding study 'old' (id s1) in `study_state`, its complete trial 0 and
// that trial's one attempt under lease ls-old.
void WriteVersion1File(const std::string& path, const std::string& study_state) {
  auto db = Database::Open(path);
  REQUIRE(db.ok());
  REQUIRE(MigrateTo(db->get(), 1).ok());
  REQUIRE((*db)
              ->Execute(
                  "INSERT INTO studies (study_id, name, state, spec, spec_json, objective_metric, "
                  "direction, from_epoch, n_trials, parallelism, max_retries, seed, sampler, "
                  "pruner, runner, created_ms) VALUES ('s1', 'old', '" +
                  study_state +
                  "', x'', '{}', 'val_accuracy', 'maximize', 'last', 3, 1, 0, 1, 'random', "
                  "'none', 'command', 5);"
                  "INSERT INTO trials (trial_id, study_id, number, kind, state, attempt, seed, "
                  "created_ms) VALUES (1, 's1', 0, 'search', 'complete', 1, 1, 5);"
                  "INSERT INTO trial_attempts (trial_id, attempt, state, worker_id, lease_id, "
                  "started_ms, ended_ms) VALUES (1, 1, 'complete', 'w', 'ls-old', 6, 7)")
              .ok());
}

// Runs a one-value query on a separate connection, the way an outside sqlite3 reader would see the
// file.
std::string QueryText(const std::string& path, const char* sql) {
  DatabaseOptions options;
  options.read_only = true;
  auto db = Database::Open(path, options);
  REQUIRE(db.ok());
  auto stmt = (*db)->GetCachedStatement(sql);
  REQUIRE(stmt.ok());
  auto row = (*stmt)->Step();
  REQUIRE(row.ok());
  if (!*row) return "<no row>";
  return (*stmt)->IsNull(0) ? "<null>" : (*stmt)->ColumnText(0);
}

v1::Study MakeStudy(const std::string& id, const std::string& name, v1::Direction direction) {
  v1::Study study;
  study.set_id(id);
  study.set_state(v1::STUDY_STATE_SEARCHING);
  study.set_created_unix_ms(1000);
  v1::StudySpec* spec = study.mutable_spec();
  spec->set_name(name);
  spec->set_seed(42);
  spec->mutable_objective()->set_metric("val_accuracy");
  spec->mutable_objective()->set_direction(direction);
  spec->mutable_budget()->set_n_trials(5);
  spec->mutable_budget()->set_parallelism(2);
  spec->mutable_budget()->set_max_retries(2);
  return study;
}

v1::Trial MakeTrial(const std::string& study_id, int number, double learning_rate,
                    int64_t batch_size) {
  v1::Trial trial;
  trial.set_study_id(study_id);
  trial.set_number(number);
  trial.set_kind(v1::TRIAL_KIND_SEARCH);
  trial.set_state(v1::TRIAL_STATE_WAITING);
  trial.set_attempt(1);
  trial.set_seed(0xfedcba9876543210ULL + number);
  trial.set_source_trial_number(-1);
  trial.set_created_unix_ms(2000 + number);
  v1::ParamAssignment* lr = trial.add_params();
  lr->set_name("learning_rate");
  lr->mutable_value()->set_double_value(learning_rate);
  v1::ParamAssignment* bs = trial.add_params();
  bs->set_name("batch_size");
  bs->mutable_value()->set_int_value(batch_size);
  v1::ParamAssignment* opt = trial.add_params();
  opt->set_name("optimizer");
  opt->mutable_value()->set_string_value(
      "123");  // a string that looks like a number stays a string
  return trial;
}

v1::EpochMetrics Epoch(int epoch, double accuracy) {
  v1::EpochMetrics metrics;
  metrics.set_epoch(epoch);
  metrics.set_train_loss(1.0 / epoch);
  metrics.set_val_accuracy(accuracy);
  metrics.set_step(epoch * 100);
  (*metrics.mutable_extra())["lr_now"] = 0.5 / epoch;
  return metrics;
}

// Leases attempt `attempt` of a trial and records its epochs.
void RunAttempt(ResultsStore* store, int64_t trial_id, v1::Trial* trial, int attempt,
                const std::vector<double>& accuracies, v1::TrialState end) {
  std::string lease = "lease-" + std::to_string(trial_id) + "-" + std::to_string(attempt);
  v1::TrialAttempt record;
  record.set_attempt(attempt);
  record.set_state(v1::TRIAL_STATE_RUNNING);
  record.set_worker_id("w1");
  record.set_started_unix_ms(3000);
  REQUIRE(store->PutAttempt(trial_id, record, lease, std::nullopt).ok());
  for (size_t i = 0; i < accuracies.size(); ++i) {
    auto inserted = store->InsertEpoch(trial_id, attempt, lease,
                                       Epoch(static_cast<int>(i) + 1, accuracies[i]), 4000);
    REQUIRE(inserted.ok());
    REQUIRE(*inserted);
  }
  record.set_state(end);
  record.set_ended_unix_ms(5000);
  REQUIRE(store
              ->PutAttempt(trial_id, record, lease,
                           end == v1::TRIAL_STATE_COMPLETE ? LeaseEnd::kWorker : LeaseEnd::kExpired)
              .ok());
  trial->set_attempt(attempt);
  trial->set_state(end == v1::TRIAL_STATE_COMPLETE ? end : v1::TRIAL_STATE_WAITING);
  if (end == v1::TRIAL_STATE_COMPLETE) trial->set_objective_value(accuracies.back());
  REQUIRE(store->UpdateTrial(trial_id, *trial, "", 0).ok());
}

TEST_CASE("ResultsStore creates the schema at the current version with WAL and foreign keys",
          "[db][schema]") {
  TempDir dir;
  std::string path = (dir / "results.db").string();
  auto store = OpenStore(path);
  CHECK(QueryText(path, "PRAGMA user_version") == std::to_string(kSchemaVersion));
  CHECK(QueryText(path, "PRAGMA journal_mode") == "wal");
  for (const char* name :
       {"studies", "trials", "trial_params", "trial_attempts", "epochs", "final_results", "workers",
        "events", "trial_summary", "epoch_metrics", "best_trial"}) {
    INFO(name);
    std::string sql = std::string("SELECT name FROM sqlite_schema WHERE name = '") + name + "'";
    DatabaseOptions options;
    options.read_only = true;
    auto db = Database::Open(path, options);
    REQUIRE(db.ok());
    auto stmt = (*db)->GetCachedStatement(sql.c_str());
    REQUIRE(stmt.ok());
    CHECK(*(*stmt)->Step());
  }
}

TEST_CASE("Database sets synchronous per durability and enforces foreign keys", "[db][database]") {
  TempDir dir;
  auto durability = GENERATE(Durability::kNormal, Durability::kFull);
  DatabaseOptions options;
  options.durability = durability;
  auto db = Database::Open((dir / "x.db").string(), options);
  REQUIRE(db.ok());
  auto stmt = (*db)->GetCachedStatement("PRAGMA synchronous");
  REQUIRE(stmt.ok());
  REQUIRE(*(*stmt)->Step());
  CHECK((*stmt)->ColumnInt64(0) == (durability == Durability::kFull ? 2 : 1));
  REQUIRE(MigrateToCurrent(db->get()).ok());
  absl::Status orphan = (*db)->Execute(
      "INSERT INTO trials (study_id, number, kind, state, attempt, seed, created_ms) "
      "VALUES ('nope', 0, 'search', 'waiting', 1, 0, 0)");
  CHECK_FALSE(orphan.ok());
  CHECK(orphan.message().find("FOREIGN KEY") != std::string::npos);
}

TEST_CASE("A second coordinator on the same file is refused until the first closes", "[db][lock]") {
  TempDir dir;
  std::string path = (dir / "results.db").string();
  auto first = OpenStore(path);
  auto second = ResultsStore::Open(path, CoordinatorOptions());
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(second.status().message().find("another coordinator") != std::string::npos);
  // Readers (reports) need no lock.
  DatabaseOptions reader;
  reader.read_only = true;
  CHECK(ResultsStore::Open(path, reader).ok());
  first.reset();
  CHECK(ResultsStore::Open(path, CoordinatorOptions()).ok());
}

TEST_CASE("A file from a newer schema is refused and left untouched", "[db][schema]") {
  TempDir dir;
  std::string path = (dir / "results.db").string();
  {
    auto db = Database::Open(path);
    REQUIRE(db.ok());
    REQUIRE((*db)->SetUserVersion(kSchemaVersion + 1).ok());
  }
  auto store = ResultsStore::Open(path, CoordinatorOptions());
  REQUIRE_FALSE(store.ok());
  CHECK(store.status().message().find("newer hpsearch") != std::string::npos);
  CHECK(QueryText(path, "PRAGMA user_version") == std::to_string(kSchemaVersion + 1));
}

TEST_CASE("A version 1 file is migrated to the current schema keeping its rows", "[db][schema]") {
  TempDir dir;
  std::string path = (dir / "results.db").string();
  WriteVersion1File(path, "searching");
  auto store = OpenStore(path);
  CHECK(QueryText(path, "PRAGMA user_version") == std::to_string(kSchemaVersion));
  auto loaded = store->LoadStudy("old");
  REQUIRE(loaded.ok());
  CHECK(loaded->study.data_sha256().empty());
  CHECK(loaded->study.downtime_ms() == 0);
  auto lease = store->FindLease("ls-old");
  REQUIRE(lease.ok());
  REQUIRE(lease->has_value());
  CHECK((*lease)->attempt_state == v1::TRIAL_STATE_COMPLETE);
  CHECK_FALSE((*lease)->ended_by.has_value());  // not recorded before version 2
}

TEST_CASE("Read-only, an older file is read through a migrated copy and left as it was",
          "[db][schema]") {
  TempDir dir;
  std::string path = (dir / "results.db").string();
  WriteVersion1File(path, "complete");
  const std::string before = QueryText(path, "SELECT group_concat(name) FROM sqlite_master");
  DatabaseOptions reader;
  reader.read_only = true;
  auto store = ResultsStore::Open(path, reader);
  REQUIRE(store.ok());
  CHECK((*store)->copied_from_version() == 1);
  auto loaded = (*store)->LoadStudy("old");
  REQUIRE(loaded.ok());
  CHECK(loaded->study.state() == v1::STUDY_STATE_COMPLETE);
  REQUIRE(loaded->trials.size() == 1);
  CHECK(loaded->trials[0].trial.state() == v1::TRIAL_STATE_COMPLETE);
  // The file is still version 1 with the same tables; the current one is read in place.
  CHECK(QueryText(path, "PRAGMA user_version") == "1");
  CHECK(QueryText(path, "SELECT group_concat(name) FROM sqlite_master") == before);
  store->reset();
  { auto writer = OpenStore(path); }
  auto current = ResultsStore::Open(path, reader);
  REQUIRE(current.ok());
  CHECK((*current)->copied_from_version() == 0);
}

TEST_CASE("Ended leases, data hashes, downtime and the alive mark are stored", "[db][store]") {
  TempDir dir;
  std::string path = (dir / "results.db").string();
  {
    auto store = OpenStore(path);
    v1::Study study = MakeStudy("s1", "demo", v1::DIRECTION_MAXIMIZE);
    (*study.mutable_data_sha256())["data/train.csv"] = std::string(64, 'c');
    study.set_downtime_ms(1234);
    REQUIRE(store->PutStudy(study).ok());
    v1::Trial trial = MakeTrial("s1", 0, 0.1, 8);
    auto trial_id = store->InsertTrial(trial);
    REQUIRE(trial_id.ok());
    RunAttempt(store.get(), *trial_id, &trial, 1, {0.5}, v1::TRIAL_STATE_FAILED);
    RunAttempt(store.get(), *trial_id, &trial, 2, {0.6}, v1::TRIAL_STATE_COMPLETE);
    auto none = store->LoadAlive();
    REQUIRE(none.ok());
    CHECK_FALSE(none->has_value());
    REQUIRE(store->PutAlive(77).ok());
    REQUIRE(store->PutAlive(88).ok());
    REQUIRE(store->SyncAll().ok());
  }
  auto store = OpenStore(path);
  auto loaded = store->LoadStudy("demo");
  REQUIRE(loaded.ok());
  CHECK(loaded->study.data_sha256().at("data/train.csv") == std::string(64, 'c'));
  CHECK(loaded->study.downtime_ms() == 1234);
  auto alive = store->LoadAlive();
  REQUIRE(alive.ok());
  CHECK(alive->value_or(0) == 88);
  auto first = store->FindLease("lease-1-1");
  REQUIRE(first.ok());
  REQUIRE(first->has_value());
  CHECK((*first)->study_id == "s1");
  CHECK((*first)->trial_number == 0);
  CHECK((*first)->attempt == 1);
  CHECK((*first)->attempt_state == v1::TRIAL_STATE_FAILED);
  CHECK((*first)->ended_by == LeaseEnd::kExpired);
  CHECK((*first)->trial_attempt == 2);
  auto second = store->FindLease("lease-1-2");
  REQUIRE(second.ok());
  REQUIRE(second->has_value());
  CHECK((*second)->ended_by == LeaseEnd::kWorker);
  CHECK(QueryText(path, "SELECT ended_by FROM trial_attempts WHERE attempt = 2") == "worker");
  auto unknown = store->FindLease("lease-none");
  REQUIRE(unknown.ok());
  CHECK_FALSE(unknown->has_value());
}

TEST_CASE("Transaction rolls back when destroyed uncommitted", "[db][transaction]") {
  auto db = Database::Open(":memory:");
  REQUIRE(db.ok());
  REQUIRE((*db)->Execute("CREATE TABLE t (x INTEGER)").ok());
  {
    Transaction transaction(db->get());
    REQUIRE(transaction.Begin().ok());
    REQUIRE((*db)->Execute("INSERT INTO t VALUES (1)").ok());
  }
  {
    Transaction transaction(db->get());
    REQUIRE(transaction.Begin().ok());
    REQUIRE((*db)->Execute("INSERT INTO t VALUES (2)").ok());
    REQUIRE(transaction.Commit().ok());
  }
  auto stmt = (*db)->GetCachedStatement("SELECT group_concat(x) FROM t");
  REQUIRE(stmt.ok());
  REQUIRE(*(*stmt)->Step());
  CHECK((*stmt)->ColumnText(0) == "2");
}

TEST_CASE("ResultsStore round-trips a study with attempts, epochs and final results",
          "[db][store]") {
  TempDir dir;
  std::string path = (dir / "results.db").string();
  {
    auto store = OpenStore(path);
    v1::Study study = MakeStudy("s1", "demo", v1::DIRECTION_MAXIMIZE);
    REQUIRE(store->PutStudy(study).ok());
    v1::Trial trial = MakeTrial("s1", 0, 3e-4, 8);
    auto trial_id = store->InsertTrial(trial);
    REQUIRE(trial_id.ok());
    RunAttempt(store.get(), *trial_id, &trial, 1, {0.1}, v1::TRIAL_STATE_FAILED);
    RunAttempt(store.get(), *trial_id, &trial, 2, {0.5, 0.7}, v1::TRIAL_STATE_COMPLETE);
    v1::TrainSummary train;
    train.set_global_steps(4004);
    train.set_train_loss(0.5311);
    train.set_total_flos(7.5417e15);
    REQUIRE(store->PutTrainSummary(*trial_id, train).ok());
    v1::TestMetrics test;
    test.set_test_accuracy(0.9351);
    test.set_runtime_seconds(43.5);
    REQUIRE(store->PutTestMetrics(*trial_id, test).ok());
    REQUIRE(store->SyncAll().ok());
  }
  DatabaseOptions reader;
  reader.read_only = true;
  auto store = ResultsStore::Open(path, reader);
  REQUIRE(store.ok());
  auto loaded = (*store)->LoadStudy("demo");
  REQUIRE(loaded.ok());
  CHECK(loaded->study.id() == "s1");
  CHECK(loaded->study.spec().budget().n_trials() == 5);
  REQUIRE(loaded->trials.size() == 1);
  const v1::Trial& trial = loaded->trials[0].trial;
  CHECK(trial.seed() == 0xfedcba9876543210ULL);
  CHECK(trial.state() == v1::TRIAL_STATE_COMPLETE);
  CHECK(trial.attempt() == 2);
  REQUIRE(trial.params_size() == 3);
  CHECK(trial.params(0).value().double_value() == 3e-4);
  CHECK(trial.params(1).value().int_value() == 8);
  CHECK(trial.params(2).value().string_value() == "123");
  REQUIRE(trial.epochs_size() == 2);
  CHECK(trial.epochs(1).val_accuracy() == 0.7);
  CHECK(trial.epochs(1).extra().at("lr_now") == 0.25);
  CHECK_FALSE(trial.epochs(1).has_val_loss());
  REQUIRE(trial.attempts_size() == 1);
  CHECK(trial.attempts(0).state() == v1::TRIAL_STATE_FAILED);
  CHECK(trial.attempts(0).epochs_size() == 1);
  CHECK(trial.result().train().global_steps() == 4004);
  CHECK(trial.result().test().test_accuracy() == 0.9351);
  CHECK_FALSE(trial.result().test().has_test_loss());
}

TEST_CASE("Every canonical metric is stored in its own column and read back", "[db][store]") {
  // The SQL is computed from proto/canonical_metrics.h: each metric, set to a value of its own,
  // must come back under the same field, and an unreported one must stay unreported.
  TempDir dir;
  std::string path = (dir / "results.db").string();
  auto store = OpenStore(path);
  REQUIRE(store->PutStudy(MakeStudy("s1", "demo", v1::DIRECTION_MAXIMIZE)).ok());
  v1::Trial trial = MakeTrial("s1", 0, 0.1, 8);
  auto trial_id = store->InsertTrial(trial);
  REQUIRE(trial_id.ok());
  v1::TrialAttempt attempt;
  attempt.set_attempt(1);
  attempt.set_state(v1::TRIAL_STATE_RUNNING);
  attempt.set_worker_id("w");
  REQUIRE(store->PutAttempt(*trial_id, attempt, "L", std::nullopt).ok());
  v1::EpochMetrics epoch;
  epoch.set_epoch(1);
  epoch.set_step(17);
  epoch.set_samples_per_second(3.5);
  double value = 0.125;
  for (proto::MetricField field : proto::EpochMetricFields()) {
    proto::SetMetric(&epoch, field, value);
    value += 1;
  }
  REQUIRE(store->InsertEpoch(*trial_id, 1, "L", epoch, 1).ok());
  v1::TestMetrics test;
  test.set_runtime_seconds(2.5);
  value = 10.25;
  for (proto::MetricField field : proto::TestMetricFields()) {
    if (field->name() == "test_loss") continue;  // left unreported
    proto::SetMetric(&test, field, value);
    value += 1;
  }
  REQUIRE(store->PutTestMetrics(*trial_id, test).ok());
  REQUIRE(store->SyncAll().ok());

  auto loaded = store->LoadStudy("demo");
  REQUIRE(loaded.ok());
  REQUIRE(loaded->trials.size() == 1);
  REQUIRE(loaded->trials[0].trial.epochs_size() == 1);
  const v1::EpochMetrics& read = loaded->trials[0].trial.epochs(0);
  CHECK(read.step() == 17);
  CHECK(read.samples_per_second() == 3.5);
  for (proto::MetricField field : proto::EpochMetricFields()) {
    INFO(field->name());
    CHECK(proto::GetMetric(read, field) == proto::GetMetric(epoch, field));
  }
  const v1::TestMetrics& read_test = loaded->trials[0].trial.result().test();
  CHECK(read_test.runtime_seconds() == 2.5);
  for (proto::MetricField field : proto::TestMetricFields()) {
    INFO(field->name());
    CHECK(proto::GetMetric(read_test, field) == proto::GetMetric(test, field));
  }
  CHECK_FALSE(read_test.has_test_loss());
}

TEST_CASE("InsertEpoch is idempotent on (trial, attempt, epoch)", "[db][store]") {
  TempDir dir;
  auto store = OpenStore((dir / "results.db").string());
  REQUIRE(store->PutStudy(MakeStudy("s1", "demo", v1::DIRECTION_MAXIMIZE)).ok());
  auto trial_id = store->InsertTrial(MakeTrial("s1", 0, 0.1, 8));
  REQUIRE(trial_id.ok());
  v1::TrialAttempt attempt;
  attempt.set_attempt(1);
  attempt.set_state(v1::TRIAL_STATE_RUNNING);
  attempt.set_worker_id("w");
  REQUIRE(store->PutAttempt(*trial_id, attempt, "L", std::nullopt).ok());
  auto first = store->InsertEpoch(*trial_id, 1, "L", Epoch(1, 0.5), 1);
  auto again = store->InsertEpoch(*trial_id, 1, "L", Epoch(1, 0.9), 2);
  REQUIRE(first.ok());
  REQUIRE(again.ok());
  CHECK(*first);
  CHECK_FALSE(*again);
  auto loaded = store->LoadStudy("s1");
  REQUIRE(loaded.ok());
  REQUIRE(loaded->trials[0].trial.epochs_size() == 1);
  CHECK(loaded->trials[0].trial.epochs(0).val_accuracy() == 0.5);
}

TEST_CASE("Views show one row per trial, the finished attempt's epochs and the best trial",
          "[db][views]") {
  TempDir dir;
  std::string path = (dir / "results.db").string();
  auto direction = GENERATE(v1::DIRECTION_MAXIMIZE, v1::DIRECTION_MINIMIZE);
  auto store = OpenStore(path);
  REQUIRE(store->PutStudy(MakeStudy("s1", "demo", direction)).ok());
  std::vector<std::vector<double>> curves = {{0.2, 0.4}, {0.9}, {0.1, 0.3, 0.6}};
  for (int number = 0; number < 3; ++number) {
    v1::Trial trial = MakeTrial("s1", number, 0.01 * (number + 1), 8 << number);
    auto trial_id = store->InsertTrial(trial);
    REQUIRE(trial_id.ok());
    if (number == 0) {
      RunAttempt(store.get(), *trial_id, &trial, 1, {0.05, 0.06, 0.07}, v1::TRIAL_STATE_FAILED);
      RunAttempt(store.get(), *trial_id, &trial, 2, curves[0], v1::TRIAL_STATE_COMPLETE);
    } else {
      RunAttempt(store.get(), *trial_id, &trial, 1, curves[number], v1::TRIAL_STATE_COMPLETE);
    }
  }
  REQUIRE(store->SyncAll().ok());
  CHECK(QueryText(path, "SELECT COUNT(*) FROM trial_summary") == "3");
  CHECK(QueryText(path, "SELECT params FROM trial_summary WHERE trial_number = 1") ==
        R"({"learning_rate":0.02,"batch_size":16,"optimizer":"123"})");
  CHECK(QueryText(path,
                  "SELECT json_extract(params, '$.batch_size') FROM trial_summary "
                  "WHERE trial_number = 2") == "32");
  // Trial 0's failed first attempt had 3 epochs; the view shows only the finishing attempt's 2.
  CHECK(QueryText(path, "SELECT COUNT(*) FROM epoch_metrics WHERE trial_number = 0") == "2");
  CHECK(QueryText(path, "SELECT epochs FROM trial_summary WHERE trial_number = 0") == "2");
  CHECK(QueryText(path, "SELECT COUNT(*) FROM epochs WHERE trial_id = 1") == "5");
  std::string expected = direction == v1::DIRECTION_MAXIMIZE ? "1" : "0";
  CHECK(QueryText(path, "SELECT trial_number FROM best_trial WHERE study_name = 'demo'") ==
        expected);
}

TEST_CASE("Writes become visible to other readers only after Sync", "[db][store]") {
  TempDir dir;
  std::string path = (dir / "results.db").string();
  auto store = OpenStore(path);
  REQUIRE(store->PutStudy(MakeStudy("s1", "demo", v1::DIRECTION_MAXIMIZE)).ok());
  CHECK(QueryText(path, "SELECT COUNT(*) FROM studies") == "0");
  REQUIRE(store->Sync(store->Sequence()).ok());
  CHECK(QueryText(path, "SELECT COUNT(*) FROM studies") == "1");
}

TEST_CASE("Concurrent writers share commits and every synced write is on disk",
          "[db][store][group-commit]") {
  TempDir dir;
  std::string path = (dir / "results.db").string();
  auto durability = GENERATE(Durability::kNormal, Durability::kFull);
  auto store = OpenStore(path, durability);
  REQUIRE(store->PutStudy(MakeStudy("s1", "demo", v1::DIRECTION_MAXIMIZE)).ok());
  REQUIRE(store->SyncAll().ok());
  constexpr int kThreads = 8;
  constexpr int kEventsPerThread = 100;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEventsPerThread; ++i) {
        if (!store->AddEvent(i, "s1", t, 1, "w", "test", "x").ok()) ++failures;
        if (!store->Sync(store->Sequence()).ok()) ++failures;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  CHECK(failures == 0);
  CHECK(QueryText(path, "SELECT COUNT(*) FROM events") ==
        std::to_string(kThreads * kEventsPerThread));
}

TEST_CASE("A commit waits for the operation that holds the store's operation lock",
          "[db][store][group-commit]") {
  TempDir dir;
  std::string path = (dir / "results.db").string();
  auto store = OpenStore(path);
  REQUIRE(store->PutStudy(MakeStudy("s1", "demo", v1::DIRECTION_MAXIMIZE)).ok());
  REQUIRE(store->SyncAll().ok());
  absl::Mutex operation_lock;
  store->SetOperationLock(&operation_lock);
  std::atomic<bool> synced{false};
  std::thread committer;
  {
    absl::MutexLock operation(&operation_lock);
    REQUIRE(store->AddEvent(1, "s1", 0, 1, "w", "first", "x").ok());
    const uint64_t first = store->Sequence();
    committer = std::thread([&store, &synced, first] { synced = store->Sync(first).ok(); });
    // Give the other thread every chance to commit the first write alone; it must not.
    for (int i = 0; i < 30 && !synced; ++i) absl::SleepFor(absl::Milliseconds(10));
    CHECK_FALSE(synced);
    CHECK(QueryText(path, "SELECT COUNT(*) FROM events") == "0");
    REQUIRE(store->AddEvent(2, "s1", 0, 1, "w", "second", "x").ok());
  }
  committer.join();
  CHECK(synced);
  CHECK(QueryText(path, "SELECT COUNT(*) FROM events") == "2");  // the whole operation, at once
  store->SetOperationLock(nullptr);
  REQUIRE(store->AddEvent(3, "s1", 0, 1, "w", "third", "x").ok());
  REQUIRE(store->SyncAll().ok());
  CHECK(QueryText(path, "SELECT COUNT(*) FROM events") == "3");
}

}  // namespace
}  // namespace hpsearch::db
