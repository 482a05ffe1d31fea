// ResultsStore's artifact records (tables `artifacts` and `artifact_files`).
#include <optional>

#include "db/results_store.h"
#include "db/results_store_sql.h"

namespace hpsearch::db {

absl::Status ResultsStore::PutArtifact(const ArtifactRecord& record) {
  absl::MutexLock lock(&db_mu_);
  HPSEARCH_RETURN_IF_ERROR(BeginWrite());
  int64_t bytes = 0;
  for (const ArtifactFileRecord& file : record.files) bytes += file.bytes;
  {
    HPSEARCH_ASSIGN_STATEMENT(stmt, sql::kPutArtifactSql);
    stmt->BindInt64(1, record.trial_id);
    stmt->BindInt64(2, record.attempt);
    stmt->BindText(3, record.lease_id);
    stmt->BindText(4, record.dir);
    stmt->BindInt64(5, static_cast<int64_t>(record.files.size()));
    stmt->BindInt64(6, bytes);
    stmt->BindInt64(7, record.uploaded_ms);
    HPSEARCH_RETURN_IF_ERROR(stmt->Run());
  }
  {
    HPSEARCH_ASSIGN_STATEMENT(stmt, sql::kDeleteArtifactFilesSql);
    stmt->BindInt64(1, record.trial_id);
    stmt->BindInt64(2, record.attempt);
    HPSEARCH_RETURN_IF_ERROR(stmt->Run());
  }
  for (const ArtifactFileRecord& file : record.files) {
    HPSEARCH_ASSIGN_STATEMENT(stmt, sql::kInsertArtifactFileSql);
    stmt->BindInt64(1, record.trial_id);
    stmt->BindInt64(2, record.attempt);
    stmt->BindText(3, file.name);
    stmt->BindInt64(4, file.bytes);
    stmt->BindText(5, file.sha256);
    HPSEARCH_RETURN_IF_ERROR(stmt->Run());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<ArtifactRecord>> ResultsStore::LoadArtifact(int64_t trial_id,
                                                                         int attempt) {
  absl::MutexLock lock(&db_mu_);
  ArtifactRecord record;
  record.trial_id = trial_id;
  {
    HPSEARCH_ASSIGN_STATEMENT(stmt, sql::kSelectArtifactSql);
    stmt->BindInt64(1, trial_id);
    stmt->BindInt64(2, attempt);
    stmt->BindInt64(3, attempt);
    absl::StatusOr<bool> row = stmt->Step();
    if (!row.ok()) return row.status();
    if (!*row) return std::nullopt;
    record.attempt = static_cast<int>(stmt->ColumnInt64(0));
    record.lease_id = stmt->ColumnText(1);
    record.dir = stmt->ColumnText(2);
    record.uploaded_ms = stmt->ColumnInt64(3);
    stmt->Reset();
  }
  HPSEARCH_ASSIGN_STATEMENT(stmt, sql::kSelectArtifactFilesSql);
  stmt->BindInt64(1, trial_id);
  stmt->BindInt64(2, record.attempt);
  while (true) {
    absl::StatusOr<bool> row = stmt->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    record.files.push_back({stmt->ColumnText(0), stmt->ColumnInt64(1), stmt->ColumnText(2)});
  }
  return record;
}

}  // namespace hpsearch::db
