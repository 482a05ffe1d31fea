// The results database's schema and its migration ladder. `PRAGMA user_version` holds the version;
// each rung upgrades version N to N+1, and all pending rungs run inside one transaction, so a file
// is always at exactly one version. docs/results-db.md documents every table, view and column.
#pragma once

#include "absl/status/status.h"
#include "db/database.h"

namespace hpsearch::db {

inline constexpr int kSchemaVersion = 5;

// Brings the schema of *db to kSchemaVersion. Fails with FAILED_PRECONDITION when the file was
// written by a newer hpsearch (its version is above kSchemaVersion), leaving it untouched.
// REQUIRES: db was opened writable and no transaction is open.
absl::Status MigrateToCurrent(Database* db);

// Brings *db up to `target` (<= kSchemaVersion) and no further: tests build older files with it.
absl::Status MigrateTo(Database* db, int target);

// Checks that a file opened read-only has the current schema (ResultsStore::Open reads an older
// one through a migrated in-memory copy instead).
absl::Status CheckSchemaVersion(Database* db);

}  // namespace hpsearch::db
