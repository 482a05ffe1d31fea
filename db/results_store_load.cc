// ResultsStore: loading studies back (restart, reports). Writes are in results_store.cc.
#include <map>
#include <nlohmann/json.hpp>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/closest_match.h"
#include "db/results_store.h"
#include "db/results_store_sql.h"
#include "proto/canonical_metrics.h"

namespace hpsearch::db {
namespace {

// Reads each canonical metric of `fields` from columns `first`, `first` + 1, ... into `message`
// (a NULL column: not reported).
void ReadMetrics(Statement* stmt, int first, const std::vector<proto::MetricField>& fields,
                 google::protobuf::Message* message) {
  int column = first;
  for (proto::MetricField field : fields) {
    if (!stmt->IsNull(column)) proto::SetMetric(message, field, stmt->ColumnDouble(column));
    ++column;
  }
}

void JsonToMap(const std::string& text, google::protobuf::Map<std::string, double>* map) {
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) return;
  for (const auto& [key, value] : json.items()) {
    if (value.is_number()) (*map)[key] = value.get<double>();
  }
}

}  // namespace

absl::StatusOr<StoredStudy> ResultsStore::LoadStudyLocked(const std::string& study_id) {
  StoredStudy stored;
  {
    HPSEARCH_ASSIGN_STATEMENT(stmt, sql::kSelectStudySql);
    stmt->BindText(1, study_id);
    absl::StatusOr<bool> row = stmt->Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::NotFoundError(absl::StrCat("no study ", study_id, " in ", path_));
    v1::Study& study = stored.study;
    study.set_id(stmt->ColumnText(0));
    study.set_state(ParseStudyState(stmt->ColumnText(1)));
    study.set_state_reason(stmt->ColumnText(2));
    if (!study.mutable_spec()->ParseFromString(stmt->ColumnBlob(3))) {
      stmt->Reset();
      return absl::DataLossError(
          absl::StrCat("study ", study_id, " in ", path_, " has an unreadable spec"));
    }
    study.set_created_unix_ms(stmt->ColumnInt64(4));
    study.set_ended_unix_ms(stmt->ColumnOptionalInt64(5).value_or(0));
    if (!stmt->IsNull(6)) study.set_best_trial_number(static_cast<int>(stmt->ColumnInt64(6)));
    if (!stmt->IsNull(7)) study.set_best_objective_value(stmt->ColumnDouble(7));
    if (!stmt->IsNull(8)) study.set_final_trial_number(static_cast<int>(stmt->ColumnInt64(8)));
    nlohmann::json hashes =
        nlohmann::json::parse(stmt->ColumnText(9), nullptr, /*allow_exceptions=*/false);
    if (hashes.is_object()) {
      for (const auto& [path, sha256] : hashes.items()) {
        if (sha256.is_string()) (*study.mutable_data_sha256())[path] = sha256.get<std::string>();
      }
    }
    study.set_downtime_ms(stmt->ColumnInt64(10));
    stmt->Reset();
  }
  HPSEARCH_ASSIGN_STATEMENT(trials_stmt, sql::kSelectTrialsSql);
  trials_stmt->BindText(1, study_id);
  while (true) {
    absl::StatusOr<bool> row = trials_stmt->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    StoredTrial st;
    st.trial_id = trials_stmt->ColumnInt64(0);
    v1::Trial& trial = st.trial;
    trial.set_study_id(study_id);
    trial.set_number(static_cast<int>(trials_stmt->ColumnInt64(1)));
    trial.set_kind(ParseTrialKind(trials_stmt->ColumnText(2)));
    trial.set_state(ParseTrialState(trials_stmt->ColumnText(3)));
    trial.set_attempt(static_cast<int>(trials_stmt->ColumnInt64(4)));
    trial.set_seed(static_cast<uint64_t>(trials_stmt->ColumnInt64(5)));
    trial.set_source_trial_number(
        static_cast<int>(trials_stmt->ColumnOptionalInt64(6).value_or(-1)));
    trial.set_worker_id(trials_stmt->ColumnText(7));
    st.lease_worker_id = trial.worker_id();
    st.lease_id = trials_stmt->ColumnText(8);
    st.lease_deadline_ms = trials_stmt->ColumnOptionalInt64(9).value_or(0);
    if (!trials_stmt->IsNull(10)) trial.set_objective_value(trials_stmt->ColumnDouble(10));
    trial.set_error(trials_stmt->ColumnText(11));
    trial.set_created_unix_ms(trials_stmt->ColumnInt64(12));
    trial.set_started_unix_ms(trials_stmt->ColumnOptionalInt64(13).value_or(0));
    trial.set_ended_unix_ms(trials_stmt->ColumnOptionalInt64(14).value_or(0));
    if (!trials_stmt->IsNull(15)) {
      v1::PruneReason* reason = trial.mutable_prune_reason();
      reason->set_rule(trials_stmt->ColumnText(15));
      reason->set_epoch(static_cast<int>(trials_stmt->ColumnOptionalInt64(16).value_or(0)));
      reason->set_value(trials_stmt->ColumnDouble(17));
      reason->set_threshold(trials_stmt->ColumnDouble(18));
    }
    stored.trials.push_back(std::move(st));
  }
  trials_stmt->Reset();

  for (StoredTrial& st : stored.trials) {
    v1::Trial& trial = st.trial;
    {
      HPSEARCH_ASSIGN_STATEMENT(stmt, sql::kSelectParamsSql);
      stmt->BindInt64(1, st.trial_id);
      while (true) {
        absl::StatusOr<bool> row = stmt->Step();
        if (!row.ok()) return row.status();
        if (!*row) break;
        v1::ParamAssignment* param = trial.add_params();
        param->set_name(stmt->ColumnText(0));
        std::string type = stmt->ColumnText(1);
        if (type == "float") {
          param->mutable_value()->set_double_value(stmt->ColumnDouble(2));
        } else if (type == "int") {
          param->mutable_value()->set_int_value(stmt->ColumnInt64(2));
        } else if (type == "bool") {
          param->mutable_value()->set_bool_value(stmt->ColumnInt64(2) != 0);
        } else {
          param->mutable_value()->set_string_value(stmt->ColumnText(2));
        }
      }
      stmt->Reset();
    }
    if (trial.state() == v1::TRIAL_STATE_RUNNING) {
      HPSEARCH_ASSIGN_STATEMENT(stmt, sql::kSelectProgressSql);
      stmt->BindInt64(1, st.trial_id);
      absl::StatusOr<bool> row = stmt->Step();
      if (!row.ok()) return row.status();
      if (*row) {
        v1::TrialProgress* progress = trial.mutable_progress();
        progress->set_epoch(static_cast<int>(stmt->ColumnInt64(0)));
        progress->set_epochs(static_cast<int>(stmt->ColumnInt64(1)));
        progress->set_step(stmt->ColumnInt64(2));
        progress->set_total_steps(stmt->ColumnInt64(3));
        progress->set_samples_per_second(stmt->ColumnDouble(4));
        progress->set_eta_seconds(stmt->ColumnDouble(5));
        progress->set_updated_unix_ms(stmt->ColumnInt64(6));
      }
      stmt->Reset();
    }
    std::map<int, v1::TrialAttempt*> attempts;
    {
      HPSEARCH_ASSIGN_STATEMENT(stmt, sql::kSelectAttemptsSql);
      stmt->BindInt64(1, st.trial_id);
      while (true) {
        absl::StatusOr<bool> row = stmt->Step();
        if (!row.ok()) return row.status();
        if (!*row) break;
        int number = static_cast<int>(stmt->ColumnInt64(0));
        if (number >= trial.attempt()) continue;  // the current attempt lives in the trial itself
        v1::TrialAttempt* attempt = trial.add_attempts();
        attempt->set_attempt(number);
        attempt->set_state(ParseTrialState(stmt->ColumnText(1)));
        attempt->set_worker_id(stmt->ColumnText(2));
        attempt->set_started_unix_ms(stmt->ColumnInt64(3));
        attempt->set_ended_unix_ms(stmt->ColumnOptionalInt64(4).value_or(0));
        attempt->set_error(stmt->ColumnText(5));
        attempt->set_stopped(stmt->ColumnInt64(6) != 0);
        attempts[number] = attempt;
      }
      stmt->Reset();
    }
    {
      HPSEARCH_ASSIGN_STATEMENT(stmt, sql::SelectEpochsSql());
      stmt->BindInt64(1, st.trial_id);
      while (true) {
        absl::StatusOr<bool> row = stmt->Step();
        if (!row.ok()) return row.status();
        if (!*row) break;
        int attempt = static_cast<int>(stmt->ColumnInt64(0));
        v1::EpochMetrics* metrics = nullptr;
        if (attempt == trial.attempt()) {
          metrics = trial.add_epochs();
        } else if (auto it = attempts.find(attempt); it != attempts.end()) {
          metrics = it->second->add_epochs();
        } else {
          continue;
        }
        metrics->set_epoch(static_cast<int>(stmt->ColumnInt64(1)));
        metrics->set_step(stmt->ColumnInt64(2));
        metrics->set_samples_per_second(stmt->ColumnDouble(3));
        metrics->set_wall_time_seconds(stmt->ColumnDouble(4));
        JsonToMap(stmt->ColumnText(5), metrics->mutable_extra());
        ReadMetrics(stmt, sql::kSelectEpochsFirstMetric, proto::EpochMetricFields(), metrics);
      }
      stmt->Reset();
    }
    {
      HPSEARCH_ASSIGN_STATEMENT(stmt, sql::SelectFinalResultSql());
      stmt->BindInt64(1, st.trial_id);
      absl::StatusOr<bool> row = stmt->Step();
      if (!row.ok()) return row.status();
      if (*row) {
        v1::TrialResult* result = trial.mutable_result();
        if (!stmt->IsNull(0)) {
          v1::TrainSummary* train = result->mutable_train();
          train->set_global_steps(stmt->ColumnInt64(0));
          train->set_train_loss(stmt->ColumnDouble(1));
          train->set_runtime_seconds(stmt->ColumnDouble(2));
          train->set_samples_per_second(stmt->ColumnDouble(3));
          train->set_steps_per_second(stmt->ColumnDouble(4));
          train->set_total_flos(stmt->ColumnDouble(5));
          train->set_epochs(stmt->ColumnDouble(6));
        }
        if (!stmt->IsNull(7)) {
          v1::TestMetrics* test = result->mutable_test();
          test->set_runtime_seconds(stmt->ColumnDouble(7));
          test->set_samples_per_second(stmt->ColumnDouble(8));
          test->set_steps_per_second(stmt->ColumnDouble(9));
          JsonToMap(stmt->ColumnText(10), test->mutable_extra());
          ReadMetrics(stmt, sql::kSelectFinalResultFirstMetric, proto::TestMetricFields(), test);
        }
        JsonToMap(stmt->ColumnText(11), result->mutable_extra());
      }
      stmt->Reset();
    }
  }
  return stored;
}

absl::StatusOr<std::vector<StoredStudy>> ResultsStore::LoadAll() {
  absl::MutexLock lock(&db_mu_);
  std::vector<std::string> ids;
  {
    HPSEARCH_ASSIGN_STATEMENT(stmt, sql::kSelectStudiesSql);
    while (true) {
      absl::StatusOr<bool> row = stmt->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      ids.push_back(stmt->ColumnText(0));
    }
    stmt->Reset();
  }
  std::vector<StoredStudy> studies;
  for (const std::string& id : ids) {
    absl::StatusOr<StoredStudy> study = LoadStudyLocked(id);
    if (!study.ok()) return study.status();
    studies.push_back(std::move(*study));
  }
  return studies;
}

absl::StatusOr<StoredStudy> ResultsStore::LoadStudy(const std::string& id_or_name) {
  absl::MutexLock lock(&db_mu_);
  std::string id;
  {
    HPSEARCH_ASSIGN_STATEMENT(stmt, sql::kSelectStudyIdSql);
    stmt->BindText(1, id_or_name);
    stmt->BindText(2, id_or_name);
    absl::StatusOr<bool> row = stmt->Step();
    if (!row.ok()) return row.status();
    if (!*row) {
      stmt->Reset();
      std::vector<std::string> names;
      HPSEARCH_ASSIGN_STATEMENT(names_stmt, sql::kSelectStudyNamesSql);
      while (true) {
        absl::StatusOr<bool> name_row = names_stmt->Step();
        if (!name_row.ok()) return name_row.status();
        if (!*name_row) break;
        names.push_back(names_stmt->ColumnText(0));
      }
      names_stmt->Reset();
      return absl::NotFoundError(absl::StrCat("no study with id or name '", id_or_name, "' in ",
                                              path_, KnownNamesHint(id_or_name, names)));
    }
    id = stmt->ColumnText(0);
    stmt->Reset();
  }
  return LoadStudyLocked(id);
}

absl::StatusOr<std::optional<EndedLease>> ResultsStore::FindLease(const std::string& lease_id) {
  absl::MutexLock lock(&db_mu_);
  HPSEARCH_ASSIGN_STATEMENT(stmt, sql::kSelectEndedLeaseSql);
  stmt->BindText(1, lease_id);
  absl::StatusOr<bool> row = stmt->Step();
  if (!row.ok()) return row.status();
  if (!*row) {
    stmt->Reset();
    return std::nullopt;
  }
  EndedLease lease;
  lease.study_id = stmt->ColumnText(0);
  lease.trial_number = static_cast<int>(stmt->ColumnInt64(1));
  lease.attempt = static_cast<int>(stmt->ColumnInt64(2));
  lease.attempt_state = ParseTrialState(stmt->ColumnText(3));
  if (!stmt->IsNull(4)) {
    std::string ended_by = stmt->ColumnText(4);
    for (LeaseEnd end :
         {LeaseEnd::kWorker, LeaseEnd::kExpired, LeaseEnd::kTimeout, LeaseEnd::kCancelled}) {
      if (LeaseEndName(end) == ended_by) lease.ended_by = end;
    }
  }
  lease.error = stmt->ColumnText(5);
  lease.trial_attempt = static_cast<int>(stmt->ColumnInt64(6));
  stmt->Reset();
  return lease;
}

absl::StatusOr<std::optional<int64_t>> ResultsStore::LoadAlive() {
  absl::MutexLock lock(&db_mu_);
  HPSEARCH_ASSIGN_STATEMENT(stmt, sql::kSelectAliveSql);
  absl::StatusOr<bool> row = stmt->Step();
  if (!row.ok()) return row.status();
  std::optional<int64_t> alive;
  if (*row) alive = stmt->ColumnInt64(0);
  stmt->Reset();
  return alive;
}

}  // namespace hpsearch::db
