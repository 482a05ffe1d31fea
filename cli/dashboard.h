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

// --dashboard-listen and --no-dashboard, for run and serve.
void AddDashboardOptions(CLI::App* cmd, DashboardSettings* settings);

}  // namespace hpsearch::cli
