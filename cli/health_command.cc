// hpsearch health: asks a coordinator's grpc.health.v1 service whether it is serving, for exec
// probes (Kubernetes, compose) and scripts that wait for a coordinator (the Slurm launcher). The
// health service takes no token; the connection flags are those of every client command, so TLS
// is checked as for any other call.
//
// Exit codes: 0 SERVING; 1 anything else (NOT_SERVING, unreachable, TLS refused, deadline); 2 bad
// flags or unreadable security files.
#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "cli/client.h"
#include "cli/commands.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace hpsearch::cli {
namespace {

using HealthResponse = grpc::health::v1::HealthCheckResponse;

struct HealthFlags {
  ConnectionFlags connection;
  std::string service;  // "": the whole server
  double timeout_seconds = 10;
  bool wait = false;
};

int RunHealth(const CoordinatorConnection& connection, const HealthFlags& flags) {
  auto stub = grpc::health::v1::Health::NewStub(connection.channel());
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(flags.service);
  const auto deadline =
      std::chrono::system_clock::now() +
      std::chrono::milliseconds(static_cast<int64_t>(flags.timeout_seconds * 1000));
  for (;;) {
    grpc::ClientContext context;
    context.set_deadline(deadline);
    // --wait: a coordinator that is not listening yet is waited for, not an error.
    context.set_wait_for_ready(flags.wait);
    HealthResponse response;
    grpc::Status status = stub->Check(&context, request, &response);
    if (status.ok() && response.status() == HealthResponse::SERVING) {
      std::cout << "SERVING\n";
      return kExitOk;
    }
    bool retry =
        flags.wait && std::chrono::system_clock::now() + std::chrono::milliseconds(500) < deadline;
    if (status.ok()) {
      if (retry) {
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        continue;
      }
      std::cout << HealthResponse::ServingStatus_Name(response.status()) << "\n";
      return kExitFailure;
    }
    if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
      std::cerr << "hpsearch health: the coordinator at " << connection.address()
                << " has no service named '" << flags.service
                << "' (try hpsearch.v1.StudyService, hpsearch.v1.WorkerService or none)\n";
      return kExitFailure;
    }
    if (retry && status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      continue;
    }
    return connection.ReportFailure("health", status);
  }
}

}  // namespace

void RegisterHealthCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<HealthFlags>();
  CLI::App* cmd = app.add_subcommand(
      "health", "Ask the coordinator whether it is serving (grpc.health.v1; exit 0: SERVING)");
  AddConnectionOptions(cmd, &flags->connection);
  cmd->add_option("--service", flags->service, "Service to ask about (default: the whole server)");
  cmd->add_option("--timeout", flags->timeout_seconds, "Seconds to wait for the answer")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--wait", flags->wait,
                "Keep asking until the coordinator is up and SERVING or --timeout passes");
  cmd->callback([flags, exit_code] {
    std::optional<CoordinatorConnection> connection =
        OpenConnection("health", flags->connection, exit_code);
    if (connection) *exit_code = RunHealth(*connection, *flags);
  });
}

}  // namespace hpsearch::cli
