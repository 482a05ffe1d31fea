#include "server/coordinator_host.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "server/listen_check.h"
#include "server/study_file/study_file.h"
#include "server/study_file/study_validator.h"

namespace hpsearch::server {

namespace {

// The files a database at `path` consists of (db/database.h: the WAL, its index, the lock).
void RemoveDatabaseFiles(const std::string& path) {
  std::error_code ignored;
  for (const char* suffix : {"", "-wal", "-shm", ".lock"}) {
    std::filesystem::remove(path + suffix, ignored);
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<CoordinatorHost>> CoordinatorHost::Start(
    CoordinatorHostOptions options) {
  // Nothing is created when serving cannot start: the address is tried before the database is
  // opened, and a database this start created is removed again when a later step fails.
  HPSEARCH_RETURN_IF_ERROR(CheckCanListen(options.server.listen_address));
  std::error_code error;
  const bool db_existed =
      options.db_path == ":memory:" || std::filesystem::exists(options.db_path, error) || error;
  const std::string db_path = options.db_path;
  absl::StatusOr<std::unique_ptr<CoordinatorHost>> host = StartUnchecked(std::move(options));
  if (!host.ok() && !db_existed) RemoveDatabaseFiles(db_path);
  return host;
}

absl::StatusOr<std::unique_ptr<CoordinatorHost>> CoordinatorHost::StartUnchecked(
    CoordinatorHostOptions options) {
  std::unique_ptr<CoordinatorHost> host(new CoordinatorHost(std::move(options)));
  db::DatabaseOptions db_options;
  db_options.durability = host->options_.durability;
  db_options.exclusive_lock = true;
  db_options.page_cache_kib =
      512;  // see DatabaseOptions::page_cache_kib; docs/reliability.md, "Soak"
  absl::StatusOr<std::unique_ptr<db::ResultsStore>> store =
      db::ResultsStore::Open(host->options_.db_path, db_options);
  if (!store.ok()) return store.status();
  host->store_ = std::move(*store);
  CoordinatorOptions coordinator_options = host->options_.coordinator;
  coordinator_options.validate = [](v1::StudySpec* spec, std::vector<std::string>* warnings) {
    std::vector<ValidationIssue> issues = NormalizeStudySpec(spec);
    for (const ValidationIssue& issue : issues) {
      if (issue.severity == ValidationIssue::Severity::kWarning) {
        warnings->push_back(issue.field + ": " + issue.message);
      }
    }
    return IssuesToStatus(issues);
  };
  coordinator_options.read_study_file =
      [](const std::string& text, const std::string& base_dir) -> absl::StatusOr<v1::StudySpec> {
    // Read and normalised here; SubmitStudy's validate then finds nothing more to fill in and
    // returns the warnings.
    LoadedStudy loaded = ParseStudyYaml(text, "study_file_text", base_dir);
    if (loaded.ok()) return loaded.spec;
    std::string lines;
    for (const StudyFileIssue& issue : loaded.issues) {
      if (issue.severity == ValidationIssue::Severity::kError) {
        absl::StrAppend(&lines, "\n", issue.ToString());
      }
    }
    return absl::InvalidArgumentError(absl::StrCat("invalid study file:", lines));
  };
  absl::StatusOr<std::unique_ptr<Coordinator>> coordinator =
      Coordinator::Create(host->store_.get(), &host->clock_, std::move(coordinator_options));
  if (!coordinator.ok()) {
    return absl::Status(
        coordinator.status().code(),
        absl::StrCat("restoring ", host->options_.db_path, ": ", coordinator.status().message()));
  }
  host->coordinator_ = std::move(*coordinator);
  absl::StatusOr<std::unique_ptr<CoordinatorServer>> server =
      CoordinatorServer::Start(host->coordinator_.get(), host->options_.server);
  if (!server.ok()) return server.status();
  host->server_ = std::move(*server);
  return host;
}

absl::Status CoordinatorHost::Stop() {
  if (stopped_) return absl::OkStatus();
  stopped_ = true;
  if (server_ != nullptr) {
    server_->Shutdown();
    server_.reset();
  }
  if (store_ == nullptr) return absl::OkStatus();
  absl::Status status = store_->SyncAll();
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrCat("final commit: ", status.message()));
  }
  return absl::OkStatus();
}

CoordinatorHost::~CoordinatorHost() {
  Stop().IgnoreError();
  coordinator_.reset();  // before the store it writes to
}

}  // namespace hpsearch::server
