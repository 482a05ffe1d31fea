// hpsearch serve --db FILE: the coordinator. Opens (or creates) the results database, refuses a
// file another coordinator holds, restores every study and lease, and serves StudyService and
// WorkerService until SIGINT or SIGTERM. --tls-cert/--tls-key serve TLS, --auth-token-file requires
// a shared token on every call; listening beyond loopback without both draws one warning at start.
#include <malloc.h>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "cli/commands.h"
#include "cli/dashboard.h"
#include "db/results_store.h"
#include "rpc/auth_token.h"
#include "rpc/security.h"
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
  std::string tls_cert;
  std::string tls_key;
  std::string auth_token_file;
  DashboardSettings dashboard;
};

int RunServe(const ServeFlags& flags) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("hpsearch-serve"));
  // Abseil's lock-order graph costs a few percent of every request; the locks are annotated and
  // tested.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // glibc hands the free top of a thread's malloc arena back with madvise() as soon as it exceeds
  // 128 KiB, and gRPC's threads free and regrow their buffers on every call: each madvise flushes
  // the TLB of every core. Under 64 workers that was ~12% of the coordinator's CPU (perf). Keep up
  // to 64 MiB per arena, and serve allocations up to 32 MiB from the arenas rather than mmap().
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  absl::StatusOr<db::Durability> durability = db::ParseDurability(flags.durability);
  if (!durability.ok()) {
    std::cerr << "hpsearch serve: --durability: " << durability.status().message() << "\n";
    return kExitBadInput;
  }
  // Signals are taken by a dedicated sigwait() below; block them before any thread starts (creating
  // gRPC credentials starts gRPC's own threads, which would otherwise take SIGTERM's default
  // action).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  rpc::ServerSecurityOptions security_options;
  security_options.tls_cert_file = flags.tls_cert;
  security_options.tls_key_file = flags.tls_key;
  security_options.auth_token_file = flags.auth_token_file;
  if (security_options.auth_token_file.empty()) {
    if (const char* env = std::getenv(rpc::kAuthTokenFileEnv); env != nullptr) {
      security_options.auth_token_file = env;
    }
  }
  absl::StatusOr<rpc::ServerSecurity> security = rpc::LoadServerSecurity(security_options);
  if (!security.ok()) {
    std::cerr << "hpsearch serve: " << security.status().message() << "\n";
    return kExitBadInput;
  }
  for (const std::string& warning : security->warnings) {
    std::cerr << "hpsearch serve: warning: " << warning << "\n";
  }
  // The dashboard takes the coordinator's token, and beyond loopback its certificate too; its
  // settings are checked before the database is opened.
  DashboardSettings dashboard_settings = flags.dashboard;
  dashboard_settings.auth_token_file = security_options.auth_token_file;
  if (!rpc::IsLoopbackListenAddress(dashboard_settings.listen)) {
    dashboard_settings.tls_cert = flags.tls_cert;
    dashboard_settings.tls_key = flags.tls_key;
  }
  if (int bad = CheckDashboardSettings("serve", dashboard_settings); bad != kExitOk) return bad;
  server::CoordinatorHostOptions options;
  options.db_path = flags.db;
  options.durability = *durability;
  options.coordinator.lease_ttl = absl::Seconds(flags.lease_ttl_seconds);
  options.coordinator.heartbeat_interval = absl::Seconds(flags.heartbeat_interval_seconds);
  options.coordinator.restart_grace = absl::Seconds(flags.restart_grace_seconds);
  options.server.listen_address = flags.listen;
  options.server.tick_interval = absl::Seconds(flags.tick_seconds);
  options.server.credentials = security->credentials;
  options.server.auth_token = security->auth_token;
  absl::StatusOr<std::unique_ptr<server::CoordinatorHost>> host =
      server::CoordinatorHost::Start(std::move(options));
  if (!host.ok()) {
    std::cerr << "hpsearch serve: " << host.status().message() << "\n";
    return kExitFailure;
  }
  std::string address = flags.listen.substr(0, flags.listen.rfind(':'));
  std::string exposure =
      rpc::ExposureWarning(flags.listen, security->tls, !security->auth_token.empty());
  if (!exposure.empty()) std::cerr << "hpsearch serve: WARNING: " << exposure << std::endl;
  // Scripts and tests read this line to learn an ephemeral port.
  std::cout << "hpsearch serve: listening on " << address << ":" << (*host)->port() << " (db "
            << flags.db << ", durability " << db::DurabilityName(*durability) << ", "
            << (security->tls ? "TLS" : "plaintext") << ", "
            << (security->auth_token.empty() ? "no auth token" : "auth token required") << ")"
            << std::endl;
  spdlog::info("coordinator listening on {}:{}", address, (*host)->port());
  std::unique_ptr<dashboard::DashboardServer> web;
  if (!flags.dashboard.disabled) {
    int dashboard_exit = kExitOk;
    web = StartDashboard("serve", flags.db, dashboard_settings, &dashboard_exit);
    if (web == nullptr) {
      (void)(*host)->Stop();
      return dashboard_exit;
    }
  }
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  spdlog::info("signal {} received: shutting down", signal_number);
  if (web != nullptr) web->Stop();
  if (absl::Status status = (*host)->Stop(); !status.ok()) {
    std::cerr << "hpsearch serve: " << status.message() << "\n";
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

namespace {

// host:port with a port in 0..65535 (gRPC takes a larger number modulo 65536, or any free port,
// without a word).
CLI::Validator ListenAddressValidator() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        const size_t colon = value.rfind(':');
        if (colon == std::string::npos || colon == 0) {
          return "'" + value + "' is not host:port, e.g. 127.0.0.1:50051 or 0.0.0.0:50051";
        }
        const std::string port = value.substr(colon + 1);
        if (port.empty() || port.size() > 5 ||
            port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) > 65535) {
          return "the port of '" + value + "' must be a number from 0 (any free port) to 65535";
        }
        return "";
      },
      "HOST:PORT");
}

}  // namespace

void RegisterServeCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* cmd = app.add_subcommand("serve", "Run the coordinator over a results database");
  cmd->add_option("--db", flags->db, "Results database (SQLite file; created when missing)")
      ->required();
  cmd->add_option("--listen", flags->listen,
                  "host:port to listen on (port 0: any free port); beyond loopback, use TLS and a "
                  "token")
      ->check(ListenAddressValidator())
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
  cmd->add_option("--tls-cert", flags->tls_cert,
                  "PEM certificate chain to serve TLS with (with --tls-key; its subjectAltName "
                  "must name the host clients dial)");
  cmd->add_option("--tls-key", flags->tls_key, "PEM private key of --tls-cert");
  cmd->add_option("--auth-token-file", flags->auth_token_file,
                  "File holding a shared secret every call must carry (default: "
                  "$HPSEARCH_AUTH_TOKEN_FILE; none: no token required)");
  AddDashboardOptions(cmd, &flags->dashboard);
  cmd->callback([flags, exit_code] { *exit_code = RunServe(*flags); });
}

}  // namespace hpsearch::cli
