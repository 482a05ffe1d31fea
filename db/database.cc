#include "db/database.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace hpsearch::db {
namespace {

absl::Status SqliteError(sqlite3* db, int rc, const std::string& what) {
  std::string message =
      absl::StrCat(what, ": ", db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(message);
    case SQLITE_CONSTRAINT:
      return absl::FailedPreconditionError(message);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(message);
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
      return absl::PermissionDeniedError(message);
    default:
      return absl::InternalError(message);
  }
}

}  // namespace

const char* DurabilityName(Durability durability) {
  return durability == Durability::kFull ? "full" : "normal";
}

absl::StatusOr<Durability> ParseDurability(const std::string& text) {
  if (text == "normal") return Durability::kNormal;
  if (text == "full") return Durability::kFull;
  return absl::InvalidArgumentError(
      absl::StrCat("durability '", text, "' is unknown: use normal or full"));
}

void Statement::BindInt64(int index, int64_t value) { sqlite3_bind_int64(stmt_, index, value); }
void Statement::BindDouble(int index, double value) { sqlite3_bind_double(stmt_, index, value); }
void Statement::BindText(int index, const std::string& value) {
  sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
}
void Statement::BindBlob(int index, const std::string& bytes) {
  sqlite3_bind_blob(stmt_, index, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
}
void Statement::BindNull(int index) { sqlite3_bind_null(stmt_, index); }
void Statement::BindOptionalDouble(int index, const std::optional<double>& value) {
  if (value.has_value()) {
    BindDouble(index, *value);
  } else {
    BindNull(index);
  }
}
void Statement::BindOptionalInt64(int index, const std::optional<int64_t>& value) {
  if (value.has_value()) {
    BindInt64(index, *value);
  } else {
    BindNull(index);
  }
}

absl::StatusOr<bool> Statement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  sqlite3* db = sqlite3_db_handle(stmt_);
  return SqliteError(db, rc, absl::StrCat("SQL '", sqlite3_sql(stmt_), "' failed"));
}

absl::Status Statement::Run() {
  absl::StatusOr<bool> row = Step();
  while (row.ok() && *row) row = Step();
  absl::Status status = row.status();
  sqlite3_reset(stmt_);
  return status;
}

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

bool Statement::IsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}
int64_t Statement::ColumnInt64(int column) const { return sqlite3_column_int64(stmt_, column); }
double Statement::ColumnDouble(int column) const { return sqlite3_column_double(stmt_, column); }
std::string Statement::ColumnText(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  if (text == nullptr) return "";
  return std::string(reinterpret_cast<const char*>(text), sqlite3_column_bytes(stmt_, column));
}
std::string Statement::ColumnBlob(int column) const {
  const void* blob = sqlite3_column_blob(stmt_, column);
  if (blob == nullptr) return "";
  return std::string(static_cast<const char*>(blob), sqlite3_column_bytes(stmt_, column));
}
std::optional<double> Statement::ColumnOptionalDouble(int column) const {
  if (IsNull(column)) return std::nullopt;
  return ColumnDouble(column);
}
std::optional<int64_t> Statement::ColumnOptionalInt64(int column) const {
  if (IsNull(column)) return std::nullopt;
  return ColumnInt64(column);
}

absl::StatusOr<std::unique_ptr<Database>> Database::Open(const std::string& path,
                                                         const DatabaseOptions& options) {
  std::unique_ptr<Database> db(new Database(path, options));
  if (options.exclusive_lock && !options.read_only && path != ":memory:") {
    if (absl::Status status = db->AcquireLockFile(); !status.ok()) return status;
  }
  int flags =
      options.read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  flags |= SQLITE_OPEN_FULLMUTEX;
  int rc = sqlite3_open_v2(path.c_str(), &db->db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status status = SqliteError(db->db_, rc, absl::StrCat("cannot open database ", path));
    return status;
  }
  sqlite3_extended_result_codes(db->db_, 1);
  if (absl::Status status = db->Configure(); !status.ok()) return status;
  return db;
}

absl::StatusOr<std::unique_ptr<Database>> Database::CopyToMemory() {
  DatabaseOptions options;
  options.busy_timeout_ms = options_.busy_timeout_ms;
  std::unique_ptr<Database> copy(new Database(":memory:", options));
  int rc = sqlite3_open_v2(":memory:", &copy->db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) return SqliteError(copy->db_, rc, "cannot open an in-memory database");
  sqlite3_extended_result_codes(copy->db_, 1);
  sqlite3_backup* backup = sqlite3_backup_init(copy->db_, "main", db_, "main");
  if (backup == nullptr) {
    return SqliteError(copy->db_, sqlite3_errcode(copy->db_),
                       absl::StrCat("cannot copy ", path_, " into memory"));
  }
  rc = sqlite3_backup_step(backup, -1);  // all pages at once: one consistent read
  sqlite3_backup_finish(backup);
  if (rc != SQLITE_DONE) {
    return SqliteError(copy->db_, rc, absl::StrCat("copying ", path_, " into memory"));
  }
  if (absl::Status status = copy->Configure(); !status.ok()) return status;
  copy->path_ = absl::StrCat(path_, " (in-memory copy)");
  return copy;
}

absl::Status Database::AcquireLockFile() {
  std::string lock_path = path_ + ".lock";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create lock file ", lock_path, ": ", std::strerror(errno)));
  }
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    char holder[32] = {0};
    ssize_t n = ::pread(lock_fd_, holder, sizeof(holder) - 1, 0);
    std::string pid = n > 0 ? std::string(holder, static_cast<size_t>(n)) : "unknown";
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    ::close(lock_fd_);
    lock_fd_ = -1;
    return absl::FailedPreconditionError(
        absl::StrCat("another coordinator (pid ", pid, ") is using ", path_, " (lock ", lock_path,
                     "): stop it first, or give this one another --db file"));
  }
  std::string pid = absl::StrCat(::getpid(), "\n");
  if (::ftruncate(lock_fd_, 0) != 0 ||
      ::pwrite(lock_fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    // The pid is only informative; the flock is what excludes.
  }
  return absl::OkStatus();
}

absl::Status Database::Configure() {
  std::string pragmas =
      absl::StrCat("PRAGMA busy_timeout=", options_.busy_timeout_ms, ";PRAGMA foreign_keys=ON;",
                   "PRAGMA cache_size=-", std::max(options_.page_cache_kib, 64), ";");
  if (!options_.read_only) {
    if (path_ != ":memory:") absl::StrAppend(&pragmas, "PRAGMA journal_mode=WAL;");
    absl::StrAppend(&pragmas, "PRAGMA synchronous=",
                    options_.durability == Durability::kFull ? "FULL" : "NORMAL", ";");
  }
  return Execute(pragmas);
}

Database::~Database() {
  for (auto& [sql, stmt] : raw_statements_) sqlite3_finalize(stmt);
  if (db_ != nullptr) sqlite3_close_v2(db_);
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

absl::Status Database::Execute(const std::string& sql) {
  char* error = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
  if (rc != SQLITE_OK) {
    std::string message = error != nullptr ? error : sqlite3_errstr(rc);
    sqlite3_free(error);
    absl::Status status = SqliteError(db_, rc, absl::StrCat("executing '", sql.substr(0, 80), "'"));
    return absl::Status(status.code(), absl::StrCat("executing '", sql.substr(0, 80),
                                                    "': ", message, " (database ", path_, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Statement*> Database::GetCachedStatement(const char* sql) {
  auto it = statements_.find(sql);
  if (it != statements_.end()) {
    it->second->Reset();
    return it->second.get();
  }
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    return SqliteError(db_, rc, absl::StrCat("preparing '", sql, "' on ", path_));
  }
  raw_statements_[sql] = stmt;
  auto [inserted, _] = statements_.emplace(sql, std::make_unique<Statement>(stmt));
  return inserted->second.get();
}

int Database::UserVersion() {
  sqlite3_stmt* stmt = nullptr;
  int version = 0;
  if (sqlite3_prepare_v2(db_, "PRAGMA user_version", -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW) {
    version = sqlite3_column_int(stmt, 0);
  }
  sqlite3_finalize(stmt);
  return version;
}

absl::Status Database::SetUserVersion(int version) {
  return Execute(absl::StrCat("PRAGMA user_version=", version));
}

bool Database::in_transaction() const { return sqlite3_get_autocommit(db_) == 0; }
int64_t Database::LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }
int64_t Database::Changes() const { return sqlite3_changes64(db_); }
std::string Database::LastError() const { return sqlite3_errmsg(db_); }

Transaction::~Transaction() {
  if (open_) Rollback();
}

absl::Status Transaction::Begin() {
  absl::Status status = db_->Execute("BEGIN IMMEDIATE");
  open_ = status.ok();
  return status;
}

absl::Status Transaction::Commit() {
  absl::Status status = db_->Execute("COMMIT");
  if (status.ok()) open_ = false;
  return status;
}

void Transaction::Rollback() {
  if (db_->in_transaction()) db_->Execute("ROLLBACK").IgnoreError();
  open_ = false;
}

}  // namespace hpsearch::db
