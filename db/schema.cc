#include "db/schema.h"

#include <vector>

#include "absl/strings/str_cat.h"

namespace hpsearch::db {
namespace {

// Version 0 -> 1: the first schema. Times are Unix milliseconds; states and kinds are lower-case
// words (waiting, running, complete, pruned, failed; search, final) so ad-hoc queries read
// naturally.
constexpr char kSchemaV1[] = R"sql(
CREATE TABLE studies (
  study_id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  state TEXT NOT NULL,
  state_reason TEXT NOT NULL DEFAULT '',
  spec BLOB NOT NULL,
  spec_json TEXT NOT NULL,
  objective_metric TEXT NOT NULL,
  direction TEXT NOT NULL CHECK (direction IN ('maximize', 'minimize')),
  from_epoch TEXT NOT NULL,
  n_trials INTEGER NOT NULL,
  parallelism INTEGER NOT NULL,
  max_retries INTEGER NOT NULL,
  seed INTEGER NOT NULL,
  sampler TEXT NOT NULL,
  pruner TEXT NOT NULL,
  runner TEXT NOT NULL,
  best_trial_number INTEGER,
  best_value REAL,
  final_trial_number INTEGER,
  created_ms INTEGER NOT NULL,
  ended_ms INTEGER
);

CREATE TABLE trials (
  trial_id INTEGER PRIMARY KEY,
  study_id TEXT NOT NULL REFERENCES studies (study_id) ON DELETE CASCADE,
  number INTEGER NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('search', 'final')),
  state TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  seed INTEGER NOT NULL,
  source_trial_number INTEGER,
  worker_id TEXT,
  lease_id TEXT,
  lease_deadline_ms INTEGER,
  objective_value REAL,
  error TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL,
  started_ms INTEGER,
  ended_ms INTEGER,
  UNIQUE (study_id, number)
);

CREATE TABLE trial_params (
  trial_id INTEGER NOT NULL REFERENCES trials (trial_id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  name TEXT NOT NULL,
  type TEXT NOT NULL CHECK (type IN ('float', 'int', 'string', 'bool')),
  value,
  PRIMARY KEY (trial_id, name)
);

CREATE TABLE trial_attempts (
  trial_id INTEGER NOT NULL REFERENCES trials (trial_id) ON DELETE CASCADE,
  attempt INTEGER NOT NULL,
  state TEXT NOT NULL,
  worker_id TEXT NOT NULL,
  lease_id TEXT NOT NULL UNIQUE,
  started_ms INTEGER NOT NULL,
  ended_ms INTEGER,
  error TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (trial_id, attempt)
);

CREATE TABLE epochs (
  trial_id INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  epoch INTEGER NOT NULL CHECK (epoch >= 1),
  lease_id TEXT NOT NULL,
  train_loss REAL,
  val_loss REAL,
  val_accuracy REAL,
  val_f1 REAL,
  val_f1_macro REAL,
  step INTEGER NOT NULL DEFAULT 0,
  samples_per_second REAL NOT NULL DEFAULT 0,
  wall_time_seconds REAL NOT NULL DEFAULT 0,
  extra TEXT NOT NULL DEFAULT '{}',
  reported_ms INTEGER NOT NULL,
  PRIMARY KEY (trial_id, attempt, epoch),
  FOREIGN KEY (trial_id, attempt) REFERENCES trial_attempts (trial_id, attempt) ON DELETE CASCADE
);

CREATE TABLE final_results (
  trial_id INTEGER PRIMARY KEY REFERENCES trials (trial_id) ON DELETE CASCADE,
  global_steps INTEGER,
  train_loss REAL,
  train_runtime_seconds REAL,
  train_samples_per_second REAL,
  train_steps_per_second REAL,
  total_flos REAL,
  epochs REAL,
  test_loss REAL,
  test_accuracy REAL,
  test_f1 REAL,
  test_f1_macro REAL,
  test_runtime_seconds REAL,
  test_samples_per_second REAL,
  test_steps_per_second REAL,
  test_extra TEXT NOT NULL DEFAULT '{}',
  extra TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE workers (
  worker_id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  hostname TEXT NOT NULL,
  device TEXT NOT NULL,
  threads INTEGER NOT NULL,
  pid INTEGER NOT NULL,
  version TEXT NOT NULL,
  registered_ms INTEGER NOT NULL,
  last_seen_ms INTEGER NOT NULL
);

CREATE TABLE events (
  event_id INTEGER PRIMARY KEY,
  unix_ms INTEGER NOT NULL,
  study_id TEXT,
  trial_number INTEGER,
  attempt INTEGER,
  worker_id TEXT,
  kind TEXT NOT NULL,
  message TEXT NOT NULL
);

CREATE INDEX events_by_study ON events (study_id, event_id);
CREATE INDEX trials_by_state ON trials (study_id, state);

CREATE VIEW trial_summary AS
SELECT
  s.name AS study_name,
  t.study_id,
  t.number AS trial_number,
  t.kind,
  t.state,
  t.attempt,
  t.seed,
  (SELECT json_group_object(p.name, p.value)
     FROM (SELECT name, value FROM trial_params WHERE trial_id = t.trial_id ORDER BY position) AS p)
    AS params,
  t.objective_value,
  s.objective_metric,
  (SELECT COUNT(*) FROM epochs e WHERE e.trial_id = t.trial_id AND e.attempt = t.attempt) AS epochs,
  t.worker_id,
  t.source_trial_number,
  t.error,
  t.created_ms,
  t.started_ms,
  t.ended_ms,
  (t.ended_ms - t.started_ms) / 1000.0 AS duration_seconds
FROM trials t JOIN studies s ON s.study_id = t.study_id;

CREATE VIEW epoch_metrics AS
SELECT
  s.name AS study_name,
  t.study_id,
  t.number AS trial_number,
  t.kind,
  e.attempt,
  e.epoch,
  e.train_loss,
  e.val_loss,
  e.val_accuracy,
  e.val_f1,
  e.val_f1_macro,
  e.step,
  e.samples_per_second,
  e.wall_time_seconds,
  e.extra
FROM epochs e
JOIN trials t ON t.trial_id = e.trial_id AND t.attempt = e.attempt
JOIN studies s ON s.study_id = t.study_id;

CREATE VIEW best_trial AS
SELECT study_id, study_name, trial_number, objective_metric, direction, objective_value, params
FROM (
  SELECT
    s.study_id,
    s.name AS study_name,
    t.number AS trial_number,
    s.objective_metric,
    s.direction,
    t.objective_value,
    (SELECT json_group_object(p.name, p.value)
       FROM (SELECT name, value FROM trial_params WHERE trial_id = t.trial_id ORDER BY position) AS p)
      AS params,
    ROW_NUMBER() OVER (
      PARTITION BY s.study_id
      ORDER BY CASE WHEN s.direction = 'minimize' THEN t.objective_value ELSE -t.objective_value END,
               t.number) AS rank_in_study
  FROM studies s JOIN trials t ON t.study_id = s.study_id
  WHERE t.kind = 'search' AND t.state = 'complete' AND t.objective_value IS NOT NULL)
WHERE rank_in_study = 1;
)sql";

// Version 1 -> 2: the data hashes a study was submitted with and the coordinator downtime its time
// limit excludes; who ended each attempt (so a retried report after a restart gets the same answer
// as before it); the coordinator's alive mark (from which a restart measures its downtime).
constexpr char kSchemaV2[] = R"sql(
ALTER TABLE studies ADD COLUMN data_sha256 TEXT NOT NULL DEFAULT '{}';
ALTER TABLE studies ADD COLUMN downtime_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE trial_attempts ADD COLUMN ended_by TEXT
  CHECK (ended_by IN ('worker', 'expired', 'timeout', 'cancelled'));
CREATE TABLE coordinator (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  alive_ms INTEGER NOT NULL
);
)sql";

// Version 2 -> 3: artifacts the workers uploaded (a trial's adapter and metrics), stored by the
// coordinator under its artifacts root; one row per stored upload and one per file.
constexpr char kSchemaV3Artifacts[] = R"sql(
CREATE TABLE artifacts (
  trial_id INTEGER NOT NULL REFERENCES trials (trial_id) ON DELETE CASCADE,
  attempt INTEGER NOT NULL,
  lease_id TEXT NOT NULL,
  dir TEXT NOT NULL,
  files INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  uploaded_ms INTEGER NOT NULL,
  PRIMARY KEY (trial_id, attempt)
);

CREATE TABLE artifact_files (
  trial_id INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  name TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  PRIMARY KEY (trial_id, attempt, name),
  FOREIGN KEY (trial_id, attempt) REFERENCES artifacts (trial_id, attempt) ON DELETE CASCADE
);

CREATE VIEW trial_artifacts AS
SELECT
  s.name AS study_name,
  t.study_id,
  t.number AS trial_number,
  t.kind,
  a.attempt,
  a.dir,
  a.files,
  a.bytes,
  a.uploaded_ms
FROM artifacts a
JOIN trials t ON t.trial_id = a.trial_id
JOIN studies s ON s.study_id = t.study_id;
)sql";

// Version 3 -> 4: why each pruned trial was pruned (the rule, the epoch judged, the trial's value
// there and the bar it missed), also in trial_summary; NULL for trials pruned before. And one
// progress row per running trial (its worker's latest step progress, overwritten at most every few
// seconds, deleted when the attempt ends).
constexpr char kSchemaV4PruneReasons[] = R"sql(
ALTER TABLE trials ADD COLUMN prune_rule TEXT;
ALTER TABLE trials ADD COLUMN prune_epoch INTEGER;
ALTER TABLE trials ADD COLUMN prune_value REAL;
ALTER TABLE trials ADD COLUMN prune_threshold REAL;

CREATE TABLE trial_progress (
  trial_id INTEGER PRIMARY KEY REFERENCES trials (trial_id) ON DELETE CASCADE,
  attempt INTEGER NOT NULL,
  epoch INTEGER NOT NULL,
  epochs INTEGER NOT NULL,
  step INTEGER NOT NULL,
  total_steps INTEGER NOT NULL,
  samples_per_second REAL NOT NULL,
  eta_seconds REAL NOT NULL,
  updated_ms INTEGER NOT NULL
);

DROP VIEW trial_summary;
CREATE VIEW trial_summary AS
SELECT
  s.name AS study_name,
  t.study_id,
  t.number AS trial_number,
  t.kind,
  t.state,
  t.attempt,
  t.seed,
  (SELECT json_group_object(p.name, p.value)
     FROM (SELECT name, value FROM trial_params WHERE trial_id = t.trial_id ORDER BY position) AS p)
    AS params,
  t.objective_value,
  s.objective_metric,
  (SELECT COUNT(*) FROM epochs e WHERE e.trial_id = t.trial_id AND e.attempt = t.attempt) AS epochs,
  t.worker_id,
  t.source_trial_number,
  t.error,
  t.created_ms,
  t.started_ms,
  t.ended_ms,
  (t.ended_ms - t.started_ms) / 1000.0 AS duration_seconds,
  t.prune_rule,
  t.prune_epoch,
  t.prune_value,
  t.prune_threshold
FROM trials t JOIN studies s ON s.study_id = t.study_id;
)sql";

// Version 4 -> 5: an attempt ended because its worker was stopped (SIGTERM, Ctrl-C of `hpsearch
// run`) and handed the trial back is marked as a stop by the user; such an attempt costs no retry.
constexpr char kSchemaV5UserStops[] = R"sql(
ALTER TABLE trial_attempts ADD COLUMN stopped INTEGER NOT NULL DEFAULT 0 CHECK (stopped IN (0, 1));
)sql";

// The ladder: kMigrations[i] upgrades version i to i + 1. Append rungs; never edit a shipped one.
const std::vector<const char*>& Migrations() {
  static const std::vector<const char*> migrations = {kSchemaV1, kSchemaV2, kSchemaV3Artifacts,
                                                      kSchemaV4PruneReasons, kSchemaV5UserStops};
  return migrations;
}

}  // namespace

absl::Status MigrateToCurrent(Database* db) {
  static_assert(kSchemaVersion >= 1);
  if (Migrations().size() != static_cast<size_t>(kSchemaVersion)) {
    return absl::InternalError("schema ladder and kSchemaVersion disagree");
  }
  return MigrateTo(db, kSchemaVersion);
}

absl::Status MigrateTo(Database* db, int target) {
  if (target < 1 || target > static_cast<int>(Migrations().size())) {
    return absl::InvalidArgumentError(absl::StrCat("no schema version ", target));
  }
  Transaction transaction(db);
  if (absl::Status status = transaction.Begin(); !status.ok()) return status;
  int version = db->UserVersion();
  if (version > target) {
    return absl::FailedPreconditionError(absl::StrCat(db->path(), " has schema version ", version,
                                                      " but this hpsearch knows up to ", target,
                                                      ": use the newer hpsearch that wrote it"));
  }
  for (int from = version; from < target; ++from) {
    if (absl::Status status = db->Execute(Migrations()[from]); !status.ok()) {
      return absl::Status(status.code(),
                          absl::StrCat("migrating ", db->path(), " from version ", from, " to ",
                                       from + 1, ": ", status.message()));
    }
  }
  if (version != target) {
    if (absl::Status status = db->SetUserVersion(target); !status.ok()) return status;
  }
  return transaction.Commit();
}

absl::Status CheckSchemaVersion(Database* db) {
  int version = db->UserVersion();
  if (version == kSchemaVersion) return absl::OkStatus();
  if (version == 0) {
    return absl::NotFoundError(absl::StrCat(
        db->path(), " is not an hpsearch results database (no schema): check the --db path"));
  }
  if (version > kSchemaVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat(db->path(), " has schema version ", version,
                     ", written by a newer hpsearch; this one reads "
                     "versions 1 to ",
                     kSchemaVersion, ": read it with the hpsearch that wrote it"));
  }
  return absl::FailedPreconditionError(absl::StrCat(
      db->path(), " has schema version ", version, ", this hpsearch reads version ", kSchemaVersion,
      ": open it once with `hpsearch serve` of this version to migrate"));
}

}  // namespace hpsearch::db
