// hpsearch dashboard --db FILE [--listen HOST:PORT]: serves the web dashboard of a results
// database (server/dashboard/dashboard_server.h) until SIGINT or SIGTERM. The first line printed
// is "dashboard: URL", for people and scripts. `hpsearch run` and `hpsearch serve` start the same
// dashboard beside their coordinator (StartDashboard below) unless --no-dashboard.
#include <csignal>
#include <iostream>
#include <memory>
#include <string>

#include "base/status_macros.h"
#include "cli/commands.h"
#include "cli/dashboard.h"
#include "rpc/auth_token.h"
#include "rpc/security.h"
#include "server/dashboard/dashboard_server.h"

namespace hpsearch::cli {
namespace {

struct DashboardFlags {
  std::string db;
  DashboardSettings settings;
};

int RunDashboard(const DashboardFlags& flags) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  int exit_code = kExitOk;
  std::unique_ptr<dashboard::DashboardServer> server =
      StartDashboard("dashboard", flags.db, flags.settings, &exit_code);
  if (server == nullptr) return exit_code;
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  server->Stop();
  return kExitOk;
}

// The server's options from the command's settings: the token read from its file, the TLS files
// checked as a pair (rpc::LoadServerSecurity), the address and what it needs checked.
absl::StatusOr<dashboard::DashboardOptions> ResolveDashboardOptions(
    const std::string& db_path, const DashboardSettings& settings) {
  dashboard::DashboardOptions options;
  options.db_path = db_path;
  options.listen = settings.listen;
  options.tls_cert_file = settings.tls_cert;
  options.tls_key_file = settings.tls_key;
  if (!settings.auth_token_file.empty()) {
    absl::StatusOr<rpc::AuthToken> token = rpc::ReadAuthTokenFile(settings.auth_token_file);
    if (!token.ok()) return token.status();
    options.auth_token = token->token;
  }
  if (!settings.tls_cert.empty() && !settings.tls_key.empty()) {
    rpc::ServerSecurityOptions tls;
    tls.tls_cert_file = settings.tls_cert;
    tls.tls_key_file = settings.tls_key;
    absl::StatusOr<rpc::ServerSecurity> checked = rpc::LoadServerSecurity(tls);
    if (!checked.ok()) return checked.status();
  }
  HPSEARCH_RETURN_IF_ERROR(dashboard::CheckDashboardOptions(options));
  return options;
}

}  // namespace

int CheckDashboardSettings(const std::string& command, const DashboardSettings& settings) {
  if (settings.disabled) return kExitOk;
  absl::StatusOr<dashboard::DashboardOptions> options = ResolveDashboardOptions("", settings);
  if (options.ok()) return kExitOk;
  std::cerr << "hpsearch " << command << ": dashboard: " << options.status().message() << "\n";
  return kExitBadInput;
}

std::unique_ptr<dashboard::DashboardServer> StartDashboard(const std::string& command,
                                                           const std::string& db_path,
                                                           const DashboardSettings& settings,
                                                           int* exit_code) {
  absl::StatusOr<dashboard::DashboardOptions> options = ResolveDashboardOptions(db_path, settings);
  if (!options.ok()) {
    std::cerr << "hpsearch " << command << ": dashboard: " << options.status().message() << "\n";
    *exit_code = kExitBadInput;
    return nullptr;
  }
  absl::StatusOr<std::unique_ptr<dashboard::DashboardServer>> server =
      dashboard::DashboardServer::Start(*options);
  if (!server.ok()) {
    std::cerr << "hpsearch " << command << ": dashboard: " << server.status().message() << "\n";
    *exit_code = server.status().code() == absl::StatusCode::kInvalidArgument ||
                         server.status().code() == absl::StatusCode::kNotFound
                     ? kExitBadInput
                     : kExitFailure;
    return nullptr;
  }
  // Scripts and tests read this line to learn the port.
  std::cout << "dashboard: " << (*server)->url() << std::endl;
  return *std::move(server);
}

void AddDashboardOptions(CLI::App* cmd, DashboardSettings* settings) {
  cmd->add_option("--dashboard-listen", settings->listen,
                  "host:port of the web dashboard (port 0: any free port); beyond loopback it "
                  "needs --auth-token-file and TLS")
      ->capture_default_str();
  cmd->add_flag("--no-dashboard", settings->disabled, "Do not start the web dashboard");
}

void AddDashboardSecurityOptions(CLI::App* cmd, DashboardSettings* settings) {
  cmd->add_option("--dashboard-auth-token-file", settings->auth_token_file,
                  "A token file (rpc/auth_token.h format, as `hpsearch serve` takes): the "
                  "dashboard's browser asks for the token once; required beyond loopback");
  cmd->add_option("--dashboard-tls-cert", settings->tls_cert,
                  "PEM certificate the dashboard serves HTTPS with; required beyond loopback");
  cmd->add_option("--dashboard-tls-key", settings->tls_key, "PEM key of --dashboard-tls-cert");
}

void RegisterDashboardCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<DashboardFlags>();
  CLI::App* cmd = app.add_subcommand(
      "dashboard", "Serve a live web dashboard of a results database (read-only)");
  cmd->add_option("--db", flags->db, "Results database (opened read-only, never changed)")
      ->required();
  cmd->add_option("--listen", flags->settings.listen,
                  "host:port to listen on (port 0: any free port); beyond loopback it needs "
                  "--auth-token-file, --tls-cert and --tls-key (docs/dashboard.md)")
      ->capture_default_str();
  cmd->add_option("--auth-token-file", flags->settings.auth_token_file,
                  "The coordinator's token file: the browser asks for the token once (required "
                  "beyond loopback)");
  cmd->add_option("--tls-cert", flags->settings.tls_cert,
                  "PEM certificate chain to serve HTTPS with (the coordinator's; with --tls-key)");
  cmd->add_option("--tls-key", flags->settings.tls_key, "PEM private key of --tls-cert");
  cmd->callback([flags, exit_code] { *exit_code = RunDashboard(*flags); });
}

}  // namespace hpsearch::cli
