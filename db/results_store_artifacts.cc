// ResultsStore's artifact records (tables `artifacts` and `artifact_files`), kept apart from
// results_store.cc, which holds the study and trial rows.
#include <optional>

#include "absl/strings/str_cat.h"
#include "db/results_store.h"

namespace hpsearch::db {
namespace {

constexpr char kDeleteArtifactFilesSql[] =
    "DELETE FROM artifact_files WHERE trial_id = ? AND attempt = ?";

constexpr char kPutArtifactSql[] =
    "INSERT INTO artifacts (trial_id, attempt, lease_id, dir, files, bytes, uploaded_ms) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (trial_id, attempt) DO UPDATE SET "
    "lease_id = excluded.lease_id, dir = excluded.dir, files = excluded.files, "
    "bytes = excluded.bytes, uploaded_ms = excluded.uploaded_ms";

constexpr char kInsertArtifactFileSql[] =
    "INSERT INTO artifact_files (trial_id, attempt, name, bytes, sha256) VALUES (?, ?, ?, ?, ?)";

constexpr char kSelectArtifactSql[] =
    "SELECT attempt, lease_id, dir, uploaded_ms FROM artifacts WHERE trial_id = ? "
    "AND (? = 0 OR attempt = ?) ORDER BY attempt DESC LIMIT 1";

constexpr char kSelectArtifactFilesSql[] =
    "SELECT name, bytes, sha256 FROM artifact_files WHERE trial_id = ? AND attempt = ? "
    "ORDER BY name";

}  // namespace

absl::Status ResultsStore::PutArtifact(const ArtifactRecord& record) {
  absl::MutexLock lock(&db_mu_);
  if (absl::Status status = BeginWrite(); !status.ok()) return status;
  int64_t bytes = 0;
  for (const ArtifactFileRecord& file : record.files) bytes += file.bytes;
  {
    absl::StatusOr<Statement*> stmt = db_->GetCachedStatement(kPutArtifactSql);
    if (!stmt.ok()) return stmt.status();
    (*stmt)->BindInt64(1, record.trial_id);
    (*stmt)->BindInt64(2, record.attempt);
    (*stmt)->BindText(3, record.lease_id);
    (*stmt)->BindText(4, record.dir);
    (*stmt)->BindInt64(5, static_cast<int64_t>(record.files.size()));
    (*stmt)->BindInt64(6, bytes);
    (*stmt)->BindInt64(7, record.uploaded_ms);
    if (absl::Status status = (*stmt)->Run(); !status.ok()) return status;
  }
  {
    absl::StatusOr<Statement*> stmt = db_->GetCachedStatement(kDeleteArtifactFilesSql);
    if (!stmt.ok()) return stmt.status();
    (*stmt)->BindInt64(1, record.trial_id);
    (*stmt)->BindInt64(2, record.attempt);
    if (absl::Status status = (*stmt)->Run(); !status.ok()) return status;
  }
  for (const ArtifactFileRecord& file : record.files) {
    absl::StatusOr<Statement*> stmt = db_->GetCachedStatement(kInsertArtifactFileSql);
    if (!stmt.ok()) return stmt.status();
    (*stmt)->BindInt64(1, record.trial_id);
    (*stmt)->BindInt64(2, record.attempt);
    (*stmt)->BindText(3, file.name);
    (*stmt)->BindInt64(4, file.bytes);
    (*stmt)->BindText(5, file.sha256);
    if (absl::Status status = (*stmt)->Run(); !status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<ArtifactRecord>> ResultsStore::LoadArtifact(int64_t trial_id,
                                                                         int attempt) {
  absl::MutexLock lock(&db_mu_);
  ArtifactRecord record;
  record.trial_id = trial_id;
  {
    absl::StatusOr<Statement*> stmt = db_->GetCachedStatement(kSelectArtifactSql);
    if (!stmt.ok()) return stmt.status();
    (*stmt)->BindInt64(1, trial_id);
    (*stmt)->BindInt64(2, attempt);
    (*stmt)->BindInt64(3, attempt);
    absl::StatusOr<bool> row = (*stmt)->Step();
    if (!row.ok()) return row.status();
    if (!*row) return std::nullopt;
    record.attempt = static_cast<int>((*stmt)->ColumnInt64(0));
    record.lease_id = (*stmt)->ColumnText(1);
    record.dir = (*stmt)->ColumnText(2);
    record.uploaded_ms = (*stmt)->ColumnInt64(3);
    (*stmt)->Reset();
  }
  absl::StatusOr<Statement*> stmt = db_->GetCachedStatement(kSelectArtifactFilesSql);
  if (!stmt.ok()) return stmt.status();
  (*stmt)->BindInt64(1, trial_id);
  (*stmt)->BindInt64(2, record.attempt);
  while (true) {
    absl::StatusOr<bool> row = (*stmt)->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    record.files.push_back(
        {(*stmt)->ColumnText(0), (*stmt)->ColumnInt64(1), (*stmt)->ColumnText(2)});
  }
  return record;
}

}  // namespace hpsearch::db
