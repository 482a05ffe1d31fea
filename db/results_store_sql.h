// The named SQL of ResultsStore (one constant per statement, prepared once and cached by the
// Database), and the macro its implementation files use to fetch them (the status macros are
// base/status_macros.h). Private to db/results_store*.cc; the tables and columns are documented in
// docs/results-db.md.
#pragma once

#include "base/status_macros.h"

namespace hpsearch::db::sql {

// The statements that carry the canonical metrics (proto/canonical_metrics.h) are built once from
// that list (results_store_sql.cc): each metric's column has the metric's name, and the metric
// columns come last, so their parameter and column numbers start at the constants below.

// INSERT OR IGNORE of one epoch row: (trial_id, attempt, epoch, lease_id, step,
// samples_per_second, wall_time_seconds, extra, reported_ms, <epoch metrics>).
const char* InsertEpochSql();
inline constexpr int kInsertEpochFirstMetric = 10;  // 1-based parameter number

// Upsert of a final trial's test figures: (trial_id, test_runtime_seconds,
// test_samples_per_second, test_steps_per_second, test_extra, <test metrics>).
const char* PutTestMetricsSql();
inline constexpr int kPutTestMetricsFirstMetric = 6;  // 1-based parameter number

// A trial's epochs: (attempt, epoch, step, samples_per_second, wall_time_seconds, extra,
// <epoch metrics>) WHERE trial_id = ?, by attempt and epoch.
const char* SelectEpochsSql();
inline constexpr int kSelectEpochsFirstMetric = 6;  // 0-based column number

// A trial's final result: (global_steps, train_loss, train_runtime_seconds,
// train_samples_per_second, train_steps_per_second, total_flos, epochs, test_runtime_seconds,
// test_samples_per_second, test_steps_per_second, test_extra, extra, <test metrics>)
// WHERE trial_id = ?.
const char* SelectFinalResultSql();
inline constexpr int kSelectFinalResultFirstMetric = 12;  // 0-based column number

inline constexpr char kBeginSql[] = "BEGIN IMMEDIATE";
inline constexpr char kCommitSql[] = "COMMIT";

inline constexpr char kPutStudySql[] =
    "INSERT INTO studies (study_id, name, state, state_reason, spec, spec_json, objective_metric, "
    "direction, from_epoch, n_trials, parallelism, max_retries, seed, sampler, pruner, runner, "
    "best_trial_number, best_value, final_trial_number, created_ms, ended_ms, data_sha256, "
    "downtime_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (study_id) DO UPDATE SET state = excluded.state, spec = excluded.spec, "
    "spec_json = excluded.spec_json, n_trials = excluded.n_trials, "
    "parallelism = excluded.parallelism, max_retries = excluded.max_retries, "
    "state_reason = excluded.state_reason, best_trial_number = excluded.best_trial_number, "
    "best_value = excluded.best_value, final_trial_number = excluded.final_trial_number, "
    "ended_ms = excluded.ended_ms, data_sha256 = excluded.data_sha256, "
    "downtime_ms = excluded.downtime_ms";

inline constexpr char kInsertTrialSql[] =
    "INSERT INTO trials (study_id, number, kind, state, attempt, seed, source_trial_number, "
    "worker_id, lease_id, lease_deadline_ms, objective_value, error, created_ms, started_ms, "
    "ended_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

inline constexpr char kInsertParamSql[] =
    "INSERT INTO trial_params (trial_id, position, name, type, value) VALUES (?, ?, ?, ?, ?)";

inline constexpr char kUpdateTrialSql[] =
    "UPDATE trials SET state = ?, attempt = ?, worker_id = ?, lease_id = ?, lease_deadline_ms = ?, "
    "objective_value = ?, error = ?, started_ms = ?, ended_ms = ?, prune_rule = ?, "
    "prune_epoch = ?, prune_value = ?, prune_threshold = ? WHERE trial_id = ?";

inline constexpr char kPutAttemptSql[] =
    "INSERT INTO trial_attempts (trial_id, attempt, state, worker_id, lease_id, started_ms, "
    "ended_ms, error, ended_by, stopped) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (trial_id, attempt) DO UPDATE SET state = excluded.state, "
    "ended_ms = excluded.ended_ms, error = excluded.error, ended_by = excluded.ended_by, "
    "stopped = excluded.stopped";

inline constexpr char kPutTrainSummarySql[] =
    "INSERT INTO final_results (trial_id, global_steps, train_loss, train_runtime_seconds, "
    "train_samples_per_second, train_steps_per_second, total_flos, epochs) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (trial_id) DO UPDATE SET "
    "global_steps = excluded.global_steps, train_loss = excluded.train_loss, "
    "train_runtime_seconds = excluded.train_runtime_seconds, "
    "train_samples_per_second = excluded.train_samples_per_second, "
    "train_steps_per_second = excluded.train_steps_per_second, total_flos = excluded.total_flos, "
    "epochs = excluded.epochs";

inline constexpr char kPutResultExtraSql[] =
    "INSERT INTO final_results (trial_id, extra) VALUES (?, ?) "
    "ON CONFLICT (trial_id) DO UPDATE SET extra = excluded.extra";

inline constexpr char kPutWorkerSql[] =
    "INSERT INTO workers (worker_id, name, hostname, device, threads, pid, version, registered_ms, "
    "last_seen_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (worker_id) DO UPDATE SET "
    "name = excluded.name, hostname = excluded.hostname, device = excluded.device, "
    "threads = excluded.threads, pid = excluded.pid, version = excluded.version, "
    "last_seen_ms = excluded.last_seen_ms";

inline constexpr char kTouchWorkerSql[] = "UPDATE workers SET last_seen_ms = ? WHERE worker_id = ?";

inline constexpr char kAddEventSql[] =
    "INSERT INTO events (unix_ms, study_id, trial_number, attempt, worker_id, kind, message) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)";

inline constexpr char kPutAliveSql[] =
    "INSERT INTO coordinator (id, alive_ms) VALUES (1, ?) "
    "ON CONFLICT (id) DO UPDATE SET alive_ms = excluded.alive_ms";

inline constexpr char kSelectAliveSql[] = "SELECT alive_ms FROM coordinator WHERE id = 1";

inline constexpr char kSelectEndedLeaseSql[] =
    "SELECT t.study_id, t.number, a.attempt, a.state, a.ended_by, a.error, t.attempt "
    "FROM trial_attempts a JOIN trials t ON t.trial_id = a.trial_id WHERE a.lease_id = ?";

inline constexpr char kSelectStudiesSql[] =
    "SELECT study_id, state, state_reason, spec, created_ms, ended_ms, best_trial_number, "
    "best_value, final_trial_number FROM studies ORDER BY created_ms, rowid";

inline constexpr char kPutProgressSql[] =
    "INSERT INTO trial_progress (trial_id, attempt, epoch, epochs, step, total_steps, "
    "samples_per_second, eta_seconds, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (trial_id) DO UPDATE SET attempt = excluded.attempt, epoch = excluded.epoch, "
    "epochs = excluded.epochs, step = excluded.step, total_steps = excluded.total_steps, "
    "samples_per_second = excluded.samples_per_second, eta_seconds = excluded.eta_seconds, "
    "updated_ms = excluded.updated_ms";

inline constexpr char kDeleteProgressSql[] = "DELETE FROM trial_progress WHERE trial_id = ?";

inline constexpr char kSelectProgressSql[] =
    "SELECT epoch, epochs, step, total_steps, samples_per_second, eta_seconds, updated_ms "
    "FROM trial_progress WHERE trial_id = ?";

inline constexpr char kSelectStudyNamesSql[] =
    "SELECT name FROM studies ORDER BY created_ms, rowid";

inline constexpr char kSelectStudyIdSql[] =
    "SELECT study_id FROM studies WHERE study_id = ? OR name = ? LIMIT 1";

inline constexpr char kSelectStudySql[] =
    "SELECT study_id, state, state_reason, spec, created_ms, ended_ms, best_trial_number, "
    "best_value, final_trial_number, data_sha256, downtime_ms FROM studies WHERE study_id = ?";

inline constexpr char kSelectTrialsSql[] =
    "SELECT trial_id, number, kind, state, attempt, seed, source_trial_number, worker_id, "
    "lease_id, lease_deadline_ms, objective_value, error, created_ms, started_ms, ended_ms, "
    "prune_rule, prune_epoch, prune_value, prune_threshold "
    "FROM trials WHERE study_id = ? ORDER BY number";

inline constexpr char kSelectParamsSql[] =
    "SELECT name, type, value FROM trial_params WHERE trial_id = ? ORDER BY position";

inline constexpr char kSelectAttemptsSql[] =
    "SELECT attempt, state, worker_id, started_ms, ended_ms, error, stopped FROM trial_attempts "
    "WHERE trial_id = ? ORDER BY attempt";

// Artifacts (results_store_artifacts.cc).
inline constexpr char kPutArtifactSql[] =
    "INSERT INTO artifacts (trial_id, attempt, lease_id, dir, files, bytes, uploaded_ms) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (trial_id, attempt) DO UPDATE SET "
    "lease_id = excluded.lease_id, dir = excluded.dir, files = excluded.files, "
    "bytes = excluded.bytes, uploaded_ms = excluded.uploaded_ms";

inline constexpr char kDeleteArtifactFilesSql[] =
    "DELETE FROM artifact_files WHERE trial_id = ? AND attempt = ?";

inline constexpr char kInsertArtifactFileSql[] =
    "INSERT INTO artifact_files (trial_id, attempt, name, bytes, sha256) VALUES (?, ?, ?, ?, ?)";

// The given attempt's artifact, or (attempt 0) the latest attempt's.
inline constexpr char kSelectArtifactSql[] =
    "SELECT attempt, lease_id, dir, uploaded_ms FROM artifacts WHERE trial_id = ? "
    "AND (? = 0 OR attempt = ?) ORDER BY attempt DESC LIMIT 1";

inline constexpr char kSelectArtifactFilesSql[] =
    "SELECT name, bytes, sha256 FROM artifact_files WHERE trial_id = ? AND attempt = ? "
    "ORDER BY name";

}  // namespace hpsearch::db::sql

// Declares `Statement* var` for the cached statement `sql_text`, or returns its preparation error.
#define HPSEARCH_ASSIGN_STATEMENT(var, sql_text)                           \
  absl::StatusOr<Statement*> var##_or = db_->GetCachedStatement(sql_text); \
  if (!var##_or.ok()) return var##_or.status();                            \
  Statement* var = *var##_or
