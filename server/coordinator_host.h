// CoordinatorHost: the coordinator exactly as `hpsearch serve` runs it — the results database
// opened with its lock file, the Coordinator with the study validator, the gRPC services with the
// artifact store, and the maintenance ticker — so `hpsearch run` embeds the very same server.
//
// Ownership: owns the store, clock, coordinator and server. Thread-safety: Stop() once, from any
// thread; coordinator() may be used from any thread until Stop().
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "base/clock.h"
#include "db/results_store.h"
#include "server/coordinator.h"
#include "server/grpc_services.h"

namespace hpsearch::server {

struct CoordinatorHostOptions {
  std::string db_path;  // created when missing
  db::Durability durability = db::Durability::kNormal;
  // Scheduling options; `validate` is set to the study validator (NormalizeStudySpec) and
  // `read_study_file` to the study file reader (ParseStudyYaml).
  CoordinatorOptions coordinator;
  ServerOptions server;
};

class CoordinatorHost {
 public:
  // Checks that the listen address is free, opens the database (FAILED_PRECONDITION when another
  // coordinator holds it), restores every study and lease, and starts serving. The error names the
  // step that failed; a database file this call created is removed again when it fails.
  static absl::StatusOr<std::unique_ptr<CoordinatorHost>> Start(CoordinatorHostOptions options);
  ~CoordinatorHost();

  int port() const { return server_->port(); }
  Coordinator* coordinator() const { return coordinator_.get(); }
  const std::string& db_path() const { return options_.db_path; }

  // Stops serving (answering parked long-polls) and commits what is still open. Idempotent.
  absl::Status Stop();

 private:
  explicit CoordinatorHost(CoordinatorHostOptions options) : options_(std::move(options)) {}
  static absl::StatusOr<std::unique_ptr<CoordinatorHost>> StartUnchecked(
      CoordinatorHostOptions options);

  CoordinatorHostOptions options_;
  std::unique_ptr<db::ResultsStore> store_;
  RealClock clock_;
  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<CoordinatorServer> server_;
  bool stopped_ = false;
};

}  // namespace hpsearch::server
