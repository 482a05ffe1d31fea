#include "db/results_store.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "db/results_store_sql.h"
#include "db/schema.h"
#include "proto/canonical_metrics.h"

namespace hpsearch::db {
namespace {

// Binds each canonical metric of `message` (NULL when not reported) to parameters `first`,
// `first` + 1, ... in the order of `fields`.
void BindMetrics(Statement* stmt, int first, const std::vector<proto::MetricField>& fields,
                 const google::protobuf::Message& message) {
  int index = first;
  for (proto::MetricField field : fields) {
    if (std::optional<double> value = proto::GetMetric(message, field)) {
      stmt->BindDouble(index++, *value);
    } else {
      stmt->BindNull(index++);
    }
  }
}

// "SAMPLER_TYPE_RANDOM" -> "random".
std::string EnumWord(const std::string& full_name, const std::string& prefix) {
  std::string word = full_name.rfind(prefix, 0) == 0 ? full_name.substr(prefix.size()) : full_name;
  std::transform(word.begin(), word.end(), word.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return word;
}

std::string MapToJson(const google::protobuf::Map<std::string, double>& map) {
  nlohmann::json json = nlohmann::json::object();
  for (const auto& [key, value] : map) json[key] = value;
  return json.dump();
}

std::optional<int64_t> NonZero(int64_t value) {
  if (value == 0) return std::nullopt;
  return value;
}

int64_t SeedToColumn(uint64_t seed) { return static_cast<int64_t>(seed); }

}  // namespace

std::string LeaseEndName(LeaseEnd end) {
  switch (end) {
    case LeaseEnd::kWorker:
      return "worker";
    case LeaseEnd::kExpired:
      return "expired";
    case LeaseEnd::kTimeout:
      return "timeout";
    case LeaseEnd::kCancelled:
      return "cancelled";
  }
  return "worker";
}

std::string TrialStateName(v1::TrialState state) {
  static const std::vector<std::string>* names = [] {
    auto* table = new std::vector<std::string>();
    for (int i = 0; i <= v1::TrialState_MAX; ++i) {
      table->push_back(
          v1::TrialState_IsValid(i)
              ? EnumWord(v1::TrialState_Name(static_cast<v1::TrialState>(i)), "TRIAL_STATE_")
              : "unknown");
    }
    return table;
  }();
  return state >= 0 && state < static_cast<int>(names->size()) ? (*names)[state] : "unknown";
}
v1::TrialState ParseTrialState(const std::string& name) {
  for (int i = v1::TrialState_MIN; i <= v1::TrialState_MAX; ++i) {
    if (v1::TrialState_IsValid(i) && TrialStateName(static_cast<v1::TrialState>(i)) == name) {
      return static_cast<v1::TrialState>(i);
    }
  }
  return v1::TRIAL_STATE_UNSPECIFIED;
}
std::string StudyStateName(v1::StudyState state) {
  return EnumWord(v1::StudyState_Name(state), "STUDY_STATE_");
}
v1::StudyState ParseStudyState(const std::string& name) {
  for (int i = v1::StudyState_MIN; i <= v1::StudyState_MAX; ++i) {
    if (v1::StudyState_IsValid(i) && StudyStateName(static_cast<v1::StudyState>(i)) == name) {
      return static_cast<v1::StudyState>(i);
    }
  }
  return v1::STUDY_STATE_UNSPECIFIED;
}
std::string TrialKindName(v1::TrialKind kind) {
  return EnumWord(v1::TrialKind_Name(kind), "TRIAL_KIND_");
}
v1::TrialKind ParseTrialKind(const std::string& name) {
  if (name == "search") return v1::TRIAL_KIND_SEARCH;
  if (name == "final") return v1::TRIAL_KIND_FINAL;
  return v1::TRIAL_KIND_UNSPECIFIED;
}

absl::StatusOr<std::unique_ptr<ResultsStore>> ResultsStore::Open(const std::string& path,
                                                                 const DatabaseOptions& options) {
  absl::StatusOr<std::unique_ptr<Database>> db = Database::Open(path, options);
  if (!db.ok()) return db.status();
  if (options.read_only) {
    const int version = (*db)->UserVersion();
    if (version > 0 && version < kSchemaVersion) {
      // Reading must not change the file (it may be a copy on a laptop, or still served by an
      // older coordinator): migrate a copy in memory instead.
      absl::StatusOr<std::unique_ptr<Database>> copy = (*db)->CopyToMemory();
      if (!copy.ok()) return copy.status();
      if (absl::Status status = MigrateToCurrent(copy->get()); !status.ok()) return status;
      return std::unique_ptr<ResultsStore>(
          new ResultsStore(std::move(*copy), options.durability, path, version));
    }
  }
  absl::Status status =
      options.read_only ? CheckSchemaVersion(db->get()) : MigrateToCurrent(db->get());
  if (!status.ok()) return status;
  return std::unique_ptr<ResultsStore>(new ResultsStore(std::move(*db), options.durability, path));
}

ResultsStore::~ResultsStore() {
  {
    absl::MutexLock lock(&commit_mu_);
    stop_committer_ = true;
  }
  if (committer_.joinable()) committer_.join();  // it answers every waiter before it stops
  absl::MutexLock lock(&db_mu_);
  if (db_->in_transaction()) db_->Execute("COMMIT").IgnoreError();
}

absl::Status ResultsStore::BeginWrite() {
  if (!broken_.ok()) return broken_;
  ++write_sequence_;
  if (db_->in_transaction()) return absl::OkStatus();
  absl::StatusOr<Statement*> begin = db_->GetCachedStatement(sql::kBeginSql);
  if (!begin.ok()) return begin.status();
  return (*begin)->Run();
}

absl::Status ResultsStore::PutStudy(const v1::Study& study) {
  absl::MutexLock lock(&db_mu_);
  HPSEARCH_RETURN_IF_ERROR(BeginWrite());
  HPSEARCH_ASSIGN_STATEMENT(stmt, sql::kPutStudySql);
  const v1::StudySpec& spec = study.spec();
  std::string spec_json;
  google::protobuf::util::JsonPrintOptions json_options;
  json_options.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(spec, &spec_json, json_options).ok()) {
    spec_json = "{}";
  }
  stmt->BindText(1, study.id());
  stmt->BindText(2, spec.name());
  stmt->BindText(3, StudyStateName(study.state()));
  stmt->BindText(4, study.state_reason());
  stmt->BindBlob(5, spec.SerializeAsString());
  stmt->BindText(6, spec_json);
  stmt->BindText(7, spec.objective().metric());
  stmt->BindText(8,
                 spec.objective().direction() == v1::DIRECTION_MINIMIZE ? "minimize" : "maximize");
  stmt->BindText(9, spec.objective().from_epoch() == v1::EPOCH_SELECTION_BEST ? "best" : "last");
  stmt->BindInt64(10, spec.budget().n_trials());
  stmt->BindInt64(11, spec.budget().parallelism());
  stmt->BindInt64(12, spec.budget().max_retries());
  stmt->BindInt64(13, SeedToColumn(spec.seed()));
  stmt->BindText(14, EnumWord(v1::SamplerType_Name(spec.sampler().type()), "SAMPLER_TYPE_"));
  stmt->BindText(15, EnumWord(v1::PrunerType_Name(spec.pruner().type()), "PRUNER_TYPE_"));
  stmt->BindText(16, EnumWord(v1::RunnerType_Name(spec.runner().type()), "RUNNER_TYPE_"));
  if (study.has_best_trial_number()) {
    stmt->BindInt64(17, study.best_trial_number());
  } else {
    stmt->BindNull(17);
  }
  if (study.has_best_objective_value()) {
    stmt->BindDouble(18, study.best_objective_value());
  } else {
    stmt->BindNull(18);
  }
  if (study.has_final_trial_number()) {
    stmt->BindInt64(19, study.final_trial_number());
  } else {
    stmt->BindNull(19);
  }
  stmt->BindInt64(20, study.created_unix_ms());
  stmt->BindOptionalInt64(21, NonZero(study.ended_unix_ms()));
  nlohmann::json hashes = nlohmann::json::object();
  for (const auto& [path, sha256] : study.data_sha256()) hashes[path] = sha256;
  stmt->BindText(22, hashes.dump());
  stmt->BindInt64(23, study.downtime_ms());
  return stmt->Run();
}

absl::StatusOr<int64_t> ResultsStore::InsertTrial(const v1::Trial& trial) {
  absl::MutexLock lock(&db_mu_);
  HPSEARCH_RETURN_IF_ERROR(BeginWrite());
  HPSEARCH_ASSIGN_STATEMENT(stmt, sql::kInsertTrialSql);
  stmt->BindText(1, trial.study_id());
  stmt->BindInt64(2, trial.number());
  stmt->BindText(3, TrialKindName(trial.kind()));
  stmt->BindText(4, TrialStateName(trial.state()));
  stmt->BindInt64(5, trial.attempt());
  stmt->BindInt64(6, SeedToColumn(trial.seed()));
  if (trial.source_trial_number() >= 0) {
    stmt->BindInt64(7, trial.source_trial_number());
  } else {
    stmt->BindNull(7);
  }
  stmt->BindNull(8);
  stmt->BindNull(9);
  stmt->BindNull(10);
  if (trial.has_objective_value()) {
    stmt->BindDouble(11, trial.objective_value());
  } else {
    stmt->BindNull(11);
  }
  stmt->BindText(12, trial.error());
  stmt->BindInt64(13, trial.created_unix_ms());
  stmt->BindOptionalInt64(14, NonZero(trial.started_unix_ms()));
  stmt->BindOptionalInt64(15, NonZero(trial.ended_unix_ms()));
  HPSEARCH_RETURN_IF_ERROR(stmt->Run());
  int64_t trial_id = db_->LastInsertRowId();
  for (int i = 0; i < trial.params_size(); ++i) {
    const v1::ParamAssignment& param = trial.params(i);
    HPSEARCH_ASSIGN_STATEMENT(param_stmt, sql::kInsertParamSql);
    param_stmt->BindInt64(1, trial_id);
    param_stmt->BindInt64(2, i);
    param_stmt->BindText(3, param.name());
    switch (param.value().kind_case()) {
      case v1::ParamValue::kDoubleValue:
        param_stmt->BindText(4, "float");
        param_stmt->BindDouble(5, param.value().double_value());
        break;
      case v1::ParamValue::kIntValue:
        param_stmt->BindText(4, "int");
        param_stmt->BindInt64(5, param.value().int_value());
        break;
      case v1::ParamValue::kBoolValue:
        param_stmt->BindText(4, "bool");
        param_stmt->BindInt64(5, param.value().bool_value() ? 1 : 0);
        break;
      default:
        param_stmt->BindText(4, "string");
        param_stmt->BindText(5, param.value().string_value());
        break;
    }
    HPSEARCH_RETURN_IF_ERROR(param_stmt->Run());
  }
  return trial_id;
}

absl::Status ResultsStore::UpdateTrial(int64_t trial_id, const v1::Trial& trial,
                                       const std::string& lease_id, int64_t lease_deadline_ms) {
  absl::MutexLock lock(&db_mu_);
  HPSEARCH_RETURN_IF_ERROR(BeginWrite());
  HPSEARCH_ASSIGN_STATEMENT(stmt, sql::kUpdateTrialSql);
  stmt->BindText(1, TrialStateName(trial.state()));
  stmt->BindInt64(2, trial.attempt());
  if (trial.worker_id().empty()) {
    stmt->BindNull(3);
  } else {
    stmt->BindText(3, trial.worker_id());
  }
  if (lease_id.empty()) {
    stmt->BindNull(4);
    stmt->BindNull(5);
  } else {
    stmt->BindText(4, lease_id);
    stmt->BindInt64(5, lease_deadline_ms);
  }
  if (trial.has_objective_value()) {
    stmt->BindDouble(6, trial.objective_value());
  } else {
    stmt->BindNull(6);
  }
  stmt->BindText(7, trial.error());
  stmt->BindOptionalInt64(8, NonZero(trial.started_unix_ms()));
  stmt->BindOptionalInt64(9, NonZero(trial.ended_unix_ms()));
  if (trial.has_prune_reason()) {
    const v1::PruneReason& reason = trial.prune_reason();
    stmt->BindText(10, reason.rule());
    stmt->BindInt64(11, reason.epoch());
    stmt->BindDouble(12, reason.value());
    stmt->BindDouble(13, reason.threshold());
  } else {
    for (int column = 10; column <= 13; ++column) stmt->BindNull(column);
  }
  stmt->BindInt64(14, trial_id);
  return stmt->Run();
}

absl::Status ResultsStore::PutProgress(int64_t trial_id, int attempt,
                                       const v1::TrialProgress& progress) {
  absl::MutexLock lock(&db_mu_);
  HPSEARCH_RETURN_IF_ERROR(BeginWrite());
  HPSEARCH_ASSIGN_STATEMENT(stmt, sql::kPutProgressSql);
  stmt->BindInt64(1, trial_id);
  stmt->BindInt64(2, attempt);
  stmt->BindInt64(3, progress.epoch());
  stmt->BindInt64(4, progress.epochs());
  stmt->BindInt64(5, progress.step());
  stmt->BindInt64(6, progress.total_steps());
  stmt->BindDouble(7, progress.samples_per_second());
  stmt->BindDouble(8, progress.eta_seconds());
  stmt->BindInt64(9, progress.updated_unix_ms());
  return stmt->Run();
}

absl::Status ResultsStore::DeleteProgress(int64_t trial_id) {
  absl::MutexLock lock(&db_mu_);
  HPSEARCH_RETURN_IF_ERROR(BeginWrite());
  HPSEARCH_ASSIGN_STATEMENT(stmt, sql::kDeleteProgressSql);
  stmt->BindInt64(1, trial_id);
  return stmt->Run();
}

absl::Status ResultsStore::PutAttempt(int64_t trial_id, const v1::TrialAttempt& attempt,
                                      const std::string& lease_id,
                                      std::optional<LeaseEnd> ended_by) {
  absl::MutexLock lock(&db_mu_);
  HPSEARCH_RETURN_IF_ERROR(BeginWrite());
  HPSEARCH_ASSIGN_STATEMENT(stmt, sql::kPutAttemptSql);
  stmt->BindInt64(1, trial_id);
  stmt->BindInt64(2, attempt.attempt());
  stmt->BindText(3, TrialStateName(attempt.state()));
  stmt->BindText(4, attempt.worker_id());
  stmt->BindText(5, lease_id);
  stmt->BindInt64(6, attempt.started_unix_ms());
  stmt->BindOptionalInt64(7, NonZero(attempt.ended_unix_ms()));
  stmt->BindText(8, attempt.error());
  if (ended_by) {
    stmt->BindText(9, LeaseEndName(*ended_by));
  } else {
    stmt->BindNull(9);
  }
  stmt->BindInt64(10, attempt.stopped() ? 1 : 0);
  return stmt->Run();
}

absl::StatusOr<bool> ResultsStore::InsertEpoch(int64_t trial_id, int attempt,
                                               const std::string& lease_id,
                                               const v1::EpochMetrics& metrics, int64_t now_ms) {
  absl::MutexLock lock(&db_mu_);
  HPSEARCH_RETURN_IF_ERROR(BeginWrite());
  HPSEARCH_ASSIGN_STATEMENT(stmt, sql::InsertEpochSql());
  stmt->BindInt64(1, trial_id);
  stmt->BindInt64(2, attempt);
  stmt->BindInt64(3, metrics.epoch());
  stmt->BindText(4, lease_id);
  stmt->BindInt64(5, metrics.step());
  stmt->BindDouble(6, metrics.samples_per_second());
  stmt->BindDouble(7, metrics.wall_time_seconds());
  stmt->BindText(8, MapToJson(metrics.extra()));
  stmt->BindInt64(9, now_ms);
  BindMetrics(stmt, sql::kInsertEpochFirstMetric, proto::EpochMetricFields(), metrics);
  HPSEARCH_RETURN_IF_ERROR(stmt->Run());
  return db_->Changes() > 0;
}

absl::Status ResultsStore::PutTrainSummary(int64_t trial_id, const v1::TrainSummary& train) {
  absl::MutexLock lock(&db_mu_);
  HPSEARCH_RETURN_IF_ERROR(BeginWrite());
  HPSEARCH_ASSIGN_STATEMENT(stmt, sql::kPutTrainSummarySql);
  stmt->BindInt64(1, trial_id);
  stmt->BindInt64(2, train.global_steps());
  stmt->BindDouble(3, train.train_loss());
  stmt->BindDouble(4, train.runtime_seconds());
  stmt->BindDouble(5, train.samples_per_second());
  stmt->BindDouble(6, train.steps_per_second());
  stmt->BindDouble(7, train.total_flos());
  stmt->BindDouble(8, train.epochs());
  return stmt->Run();
}

absl::Status ResultsStore::PutTestMetrics(int64_t trial_id, const v1::TestMetrics& test) {
  absl::MutexLock lock(&db_mu_);
  HPSEARCH_RETURN_IF_ERROR(BeginWrite());
  HPSEARCH_ASSIGN_STATEMENT(stmt, sql::PutTestMetricsSql());
  stmt->BindInt64(1, trial_id);
  stmt->BindDouble(2, test.runtime_seconds());
  stmt->BindDouble(3, test.samples_per_second());
  stmt->BindDouble(4, test.steps_per_second());
  stmt->BindText(5, MapToJson(test.extra()));
  BindMetrics(stmt, sql::kPutTestMetricsFirstMetric, proto::TestMetricFields(), test);
  return stmt->Run();
}

absl::Status ResultsStore::PutResultExtra(int64_t trial_id, const v1::TrialResult& result) {
  absl::MutexLock lock(&db_mu_);
  HPSEARCH_RETURN_IF_ERROR(BeginWrite());
  HPSEARCH_ASSIGN_STATEMENT(stmt, sql::kPutResultExtraSql);
  stmt->BindInt64(1, trial_id);
  stmt->BindText(2, MapToJson(result.extra()));
  return stmt->Run();
}

absl::Status ResultsStore::PutWorker(const std::string& worker_id, const v1::WorkerInfo& info,
                                     int64_t now_ms) {
  absl::MutexLock lock(&db_mu_);
  HPSEARCH_RETURN_IF_ERROR(BeginWrite());
  HPSEARCH_ASSIGN_STATEMENT(stmt, sql::kPutWorkerSql);
  stmt->BindText(1, worker_id);
  stmt->BindText(2, info.name());
  stmt->BindText(3, info.hostname());
  stmt->BindText(4, info.device());
  stmt->BindInt64(5, info.threads());
  stmt->BindInt64(6, info.pid());
  stmt->BindText(7, info.version());
  stmt->BindInt64(8, now_ms);
  stmt->BindInt64(9, now_ms);
  return stmt->Run();
}

absl::Status ResultsStore::TouchWorker(const std::string& worker_id, int64_t now_ms) {
  absl::MutexLock lock(&db_mu_);
  HPSEARCH_RETURN_IF_ERROR(BeginWrite());
  HPSEARCH_ASSIGN_STATEMENT(stmt, sql::kTouchWorkerSql);
  stmt->BindInt64(1, now_ms);
  stmt->BindText(2, worker_id);
  return stmt->Run();
}

absl::Status ResultsStore::AddEvent(int64_t now_ms, const std::string& study_id, int trial_number,
                                    int attempt, const std::string& worker_id,
                                    const std::string& kind, const std::string& message) {
  absl::MutexLock lock(&db_mu_);
  HPSEARCH_RETURN_IF_ERROR(BeginWrite());
  HPSEARCH_ASSIGN_STATEMENT(stmt, sql::kAddEventSql);
  stmt->BindInt64(1, now_ms);
  if (study_id.empty()) {
    stmt->BindNull(2);
  } else {
    stmt->BindText(2, study_id);
  }
  if (trial_number >= 0) {
    stmt->BindInt64(3, trial_number);
  } else {
    stmt->BindNull(3);
  }
  if (attempt > 0) {
    stmt->BindInt64(4, attempt);
  } else {
    stmt->BindNull(4);
  }
  if (worker_id.empty()) {
    stmt->BindNull(5);
  } else {
    stmt->BindText(5, worker_id);
  }
  stmt->BindText(6, kind);
  stmt->BindText(7, message);
  return stmt->Run();
}

absl::Status ResultsStore::PutAlive(int64_t now_ms) {
  absl::MutexLock lock(&db_mu_);
  HPSEARCH_RETURN_IF_ERROR(BeginWrite());
  HPSEARCH_ASSIGN_STATEMENT(stmt, sql::kPutAliveSql);
  stmt->BindInt64(1, now_ms);
  return stmt->Run();
}

uint64_t ResultsStore::Sequence() {
  absl::MutexLock lock(&db_mu_);
  return write_sequence_;
}

absl::Status ResultsStore::Sync(uint64_t sequence) {
  absl::MutexLock lock(&commit_mu_);
  while (committed_sequence_ < sequence && commit_error_.ok()) {
    if (committing_) {
      commit_cv_.Wait(&commit_mu_);
      continue;
    }
    // This caller commits for everyone who wrote before it; later writers wait for the next commit.
    committing_ = true;
    absl::Mutex* operation_lock = operation_lock_;  // stays valid while committing_ is set
    commit_mu_.Unlock();
    uint64_t covered = 0;
    absl::Status status;
    {
      // The operation lock first, as its holders take it before writing (one lock order).
      absl::MutexLockMaybe operation(operation_lock);
      absl::MutexLock db_lock(&db_mu_);
      covered = write_sequence_;
      if (db_->in_transaction()) {
        absl::StatusOr<Statement*> commit = db_->GetCachedStatement(sql::kCommitSql);
        status = commit.ok() ? (*commit)->Run() : commit.status();
      }
      if (!status.ok()) {
        broken_ = absl::Status(status.code(),
                               absl::StrCat("commit to ", path_, " failed (", status.message(),
                                            "): restart the coordinator"));
        if (db_->in_transaction()) db_->Execute("ROLLBACK").IgnoreError();
      }
    }
    commit_mu_.Lock();
    committing_ = false;
    if (status.ok()) {
      committed_sequence_ = std::max(committed_sequence_, covered);
    } else {
      commit_error_ = status;
    }
    commit_cv_.SignalAll();
  }
  return commit_error_;
}

void ResultsStore::SetOperationLock(absl::Mutex* operation_lock) {
  absl::MutexLock lock(&commit_mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(commit_mu_) { return !committing_; };
  commit_mu_.Await(absl::Condition(&idle));
  operation_lock_ = operation_lock;
}

void ResultsStore::SyncAsync(uint64_t sequence, std::function<void(absl::Status)> done) {
  absl::Status ready;
  {
    absl::MutexLock lock(&commit_mu_);
    if (committed_sequence_ < sequence && commit_error_.ok()) {
      if (!committer_.joinable()) committer_ = std::thread([this] { CommitLoop(); });
      async_waiters_.push_back({sequence, std::move(done)});
      return;
    }
    ready = commit_error_;
  }
  done(ready);
}

void ResultsStore::CommitLoop() {
  absl::MutexLock lock(&commit_mu_);
  while (true) {
    auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(commit_mu_) {
      return !async_waiters_.empty() || stop_committer_;
    };
    commit_mu_.Await(absl::Condition(&has_work));
    if (async_waiters_.empty()) return;  // stopping, and nobody waits
    // One commit for every waiter so far; whoever arrives meanwhile waits for the next one.
    std::vector<AsyncWaiter> waiters;
    waiters.swap(async_waiters_);
    uint64_t target = 0;
    for (const AsyncWaiter& waiter : waiters) target = std::max(target, waiter.sequence);
    commit_mu_.Unlock();
    absl::Status status = Sync(target);
    for (AsyncWaiter& waiter : waiters) waiter.done(status);
    commit_mu_.Lock();
  }
}

}  // namespace hpsearch::db
