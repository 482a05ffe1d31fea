// hpsearch serve --db FILE: the coordinator. Opens (or creates) the results database, refuses a
// file another coordinator holds, restores every study and lease, and serves StudyService and
// WorkerService until SIGINT or SIGTERM.
#include <csignal>
#include <iostream>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "cli/commands.h"
#include "db/results_store.h"
#include "server/coordinator_host.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace hpsearch::cli {
namespace {

struct ServeFlags {
  std::string db;
  std::string listen = "127.0.0.1:50051";
  std::string durability = "normal";
  double lease_ttl_seconds = 30;
  double heartbeat_interval_seconds = 5;
  double restart_grace_seconds = 30;
  double tick_seconds = 0.2;
};

int RunServe(const ServeFlags& flags) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("hpsearch-serve"));
  // Abseil's lock-order graph costs a few percent of every request; the locks are annotated and
  // tested.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::StatusOr<db::Durability> durability = db::ParseDurability(flags.durability);
  if (!durability.ok()) {
    std::cerr << "hpsearch serve: --durability: " << durability.status().message() << "\n";
    return kExitBadInput;
  }
  // Signals are taken by a dedicated sigwait() below; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  server::CoordinatorHostOptions options;
  options.db_path = flags.db;
  options.durability = *durability;
  options.coordinator.lease_ttl = absl::Seconds(flags.lease_ttl_seconds);
  options.coordinator.heartbeat_interval = absl::Seconds(flags.heartbeat_interval_seconds);
  options.coordinator.restart_grace = absl::Seconds(flags.restart_grace_seconds);
  options.server.listen_address = flags.listen;
  options.server.tick_interval = absl::Seconds(flags.tick_seconds);
  absl::StatusOr<std::unique_ptr<server::CoordinatorHost>> host =
      server::CoordinatorHost::Start(std::move(options));
  if (!host.ok()) {
    std::cerr << "hpsearch serve: " << host.status().message() << "\n";
    return kExitFailure;
  }
  std::string address = flags.listen.substr(0, flags.listen.rfind(':'));
  // Scripts and tests read this line to learn an ephemeral port.
  std::cout << "hpsearch serve: listening on " << address << ":" << (*host)->port() << " (db "
            << flags.db << ", durability " << db::DurabilityName(*durability) << ")" << std::endl;
  spdlog::info("coordinator listening on {}:{}", address, (*host)->port());
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  spdlog::info("signal {} received: shutting down", signal_number);
  if (absl::Status status = (*host)->Stop(); !status.ok()) {
    std::cerr << "hpsearch serve: " << status.message() << "\n";
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

void RegisterServeCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* cmd = app.add_subcommand("serve", "Run the coordinator over a results database");
  cmd->add_option("--db", flags->db, "Results database (SQLite file; created when missing)")
      ->required();
  cmd->add_option("--listen", flags->listen, "host:port to listen on (port 0: any free port)")
      ->capture_default_str();
  cmd->add_option("--durability", flags->durability,
                  "normal: survives any process kill; full: also survives power loss (fsync per "
                  "batched commit)")
      ->capture_default_str();
  cmd->add_option("--lease-ttl", flags->lease_ttl_seconds,
                  "Seconds a lease lives without a heartbeat")
      ->capture_default_str();
  cmd->add_option("--heartbeat-interval", flags->heartbeat_interval_seconds,
                  "Seconds between worker heartbeats")
      ->capture_default_str();
  cmd->add_option("--restart-grace", flags->restart_grace_seconds,
                  "Seconds restored leases get after a restart before any expires")
      ->capture_default_str();
  cmd->add_option("--tick", flags->tick_seconds, "Seconds between lease and timeout checks")
      ->capture_default_str();
  cmd->callback([flags, exit_code] { *exit_code = RunServe(*flags); });
}

}  // namespace hpsearch::cli
