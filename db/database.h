// Database: one SQLite connection opened the one way hpsearch opens its results file (WAL, busy
// timeout, foreign keys, the synchronous level the durability option asks for), with a cache of
// prepared statements keyed by their SQL constant. Statement binds and steps one prepared
// statement; Transaction is the RAII guard that rolls back unless committed.
//
// Ownership: Database owns the sqlite3 handle and every cached statement. Statements borrowed from
// GetCachedStatement() live as long as the Database.
// Thread-safety: none. One thread at a time (the caller holds its own lock); SQLite itself is
// opened in serialized mode, so a misuse cannot corrupt memory, but statements hold per-call state.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct sqlite3;
struct sqlite3_stmt;

namespace hpsearch::db {

enum class Durability {
  // synchronous=NORMAL in WAL mode: a committed transaction survives any process being killed; the
  // last
  // transactions may be lost on power loss or an OS crash. No fsync per commit.
  kNormal,
  // synchronous=FULL: every commit is fsynced, so it also survives power loss. Commits are batched
  // by the
  // caller (ResultsStore groups concurrent writes into one transaction) so throughput holds.
  kFull,
};

const char* DurabilityName(Durability durability);
absl::StatusOr<Durability> ParseDurability(const std::string& text);

struct DatabaseOptions {
  Durability durability = Durability::kNormal;
  // How long a statement waits for another connection's lock before SQLITE_BUSY. Readers in other
  // processes never block the coordinator's writes in WAL mode; this covers checkpoints and rare
  // schema reads.
  int busy_timeout_ms = 5000;
  // Open without write access (the report command reads a live or dead coordinator's file). No lock
  // file, no migration: the schema must already be current.
  bool read_only = false;
  // Take `<path>.lock` with flock() so a second coordinator on the same file is refused. The lock
  // dies with the process (even on SIGKILL), so a restart never needs manual cleanup.
  bool exclusive_lock = false;
  // The most memory SQLite's page cache of this connection holds (PRAGMA cache_size), in KiB.
  // SQLite's own default, 2000, suits readers (report, export, dashboard). The coordinator sets
  // less: it reads its file only at a restart (one scan) and for point lookups, the OS's file cache
  // keeps the pages warm, and its memory should follow the study, not fill a cache. At least 64.
  int page_cache_kib = 2000;
};

class Statement {
 public:
  explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}

  // Binds are 1-based, as in SQLite.
  void BindInt64(int index, int64_t value);
  void BindDouble(int index, double value);
  void BindText(int index, const std::string& value);
  void BindBlob(int index, const std::string& bytes);
  void BindNull(int index);
  void BindOptionalDouble(int index, const std::optional<double>& value);
  void BindOptionalInt64(int index, const std::optional<int64_t>& value);

  // Advances one row: true when a row is available, false when done. Errors are returned as status.
  absl::StatusOr<bool> Step();
  // Steps a statement that returns no row to completion.
  absl::Status Run();
  // Clears bindings and rewinds, ready for the next use. Called automatically by
  // GetCachedStatement().
  void Reset();

  bool IsNull(int column) const;
  int64_t ColumnInt64(int column) const;
  double ColumnDouble(int column) const;
  std::string ColumnText(int column) const;
  std::string ColumnBlob(int column) const;
  std::optional<double> ColumnOptionalDouble(int column) const;
  std::optional<int64_t> ColumnOptionalInt64(int column) const;

 private:
  sqlite3_stmt* stmt_;
};

class Database {
 public:
  // Opens (creating when allowed) the SQLite file at `path`; ":memory:" for an in-memory database.
  static absl::StatusOr<std::unique_ptr<Database>> Open(const std::string& path,
                                                        const DatabaseOptions& options = {});
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // A writable in-memory copy of the whole database (SQLite's online backup), taken in one read
  // transaction so it is consistent even while a coordinator writes the file. For reading a file
  // of an older schema version through the migration ladder without changing the file. The copy's
  // path() is this one's, followed by " (in-memory copy)".
  absl::StatusOr<std::unique_ptr<Database>> CopyToMemory();

  // Runs one or more statements without results (DDL, pragmas, BEGIN/COMMIT).
  absl::Status Execute(const std::string& sql);

  // The prepared statement for `sql`, prepared on first use and reset for reuse. `sql` must be a
  // string constant (the cache keys on its address and text). REQUIRES: the previous use of the
  // same statement has finished (stepped to completion or abandoned).
  absl::StatusOr<Statement*> GetCachedStatement(const char* sql);

  int UserVersion();
  absl::Status SetUserVersion(int version);
  bool in_transaction() const;
  int64_t LastInsertRowId() const;
  // Rows changed by the last INSERT, UPDATE or DELETE.
  int64_t Changes() const;
  const std::string& path() const { return path_; }
  const DatabaseOptions& options() const { return options_; }

  // Whole error text of the last failure, for messages.
  std::string LastError() const;

 private:
  Database(std::string path, DatabaseOptions options) : path_(std::move(path)), options_(options) {}
  absl::Status Configure();
  absl::Status AcquireLockFile();

  std::string path_;
  DatabaseOptions options_;
  sqlite3* db_ = nullptr;
  int lock_fd_ = -1;
  std::map<std::string, std::unique_ptr<Statement>> statements_;
  std::map<std::string, sqlite3_stmt*> raw_statements_;
};

// RAII transaction: Begin() opens it, Commit() ends it; destroyed uncommitted, it rolls back.
class Transaction {
 public:
  explicit Transaction(Database* db) : db_(db) {}
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  // BEGIN IMMEDIATE: takes the write lock now, so a busy database fails here and not halfway
  // through.
  absl::Status Begin();
  absl::Status Commit();
  void Rollback();

 private:
  Database* db_;
  bool open_ = false;
};

}  // namespace hpsearch::db
