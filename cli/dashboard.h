// The web dashboard as the CLI starts it: `hpsearch dashboard`, and beside the coordinator of
// `hpsearch run` and `hpsearch serve` (server/dashboard/dashboard_server.h).
#pragma once

#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "server/dashboard/dashboard_server.h"

namespace hpsearch::cli {

struct DashboardSettings {
  std::string listen = "127.0.0.1:0";
  bool disabled = false;  // --no-dashboard
  std::string auth_token_file;
  std::string tls_cert;
  std::string tls_key;
};

// Starts the dashboard over `db_path` and prints "dashboard: URL" on stdout. On failure prints
// "hpsearch COMMAND: dashboard: why" on stderr, sets *exit_code and returns nullptr.
std::unique_ptr<dashboard::DashboardServer> StartDashboard(const std::string& command,
                                                           const std::string& db_path,
                                                           const DashboardSettings& settings,
                                                           int* exit_code);

// Checks the settings as StartDashboard will (address, token file, TLS pair; nothing is opened or
// bound), so that a command refuses bad ones before it writes anything: kExitOk, or the message on
// stderr and kExitBadInput. Disabled settings pass.
int CheckDashboardSettings(const std::string& command, const DashboardSettings& settings);

// --dashboard-listen and --no-dashboard, for run and serve.
void AddDashboardOptions(CLI::App* cmd, DashboardSettings* settings);

// --dashboard-auth-token-file, --dashboard-tls-cert and --dashboard-tls-key, for `run`, whose
// coordinator is on loopback and has no token or certificate of its own to lend its dashboard
// (`serve` gives it its own).
void AddDashboardSecurityOptions(CLI::App* cmd, DashboardSettings* settings);

}  // namespace hpsearch::cli
