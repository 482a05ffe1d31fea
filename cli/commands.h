// The `hpsearch` command line: each command lives in its own file and registers itself on the app.
// A command's callback stores its exit code in *exit_code; main() returns it.
#pragma once

#include <functional>
#include <ostream>
#include <string>

#include <grpcpp/client_context.h>

#include "CLI/CLI.hpp"

namespace hpsearch::cli {

// Exit codes shared by every command.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the command ran and failed (coordinator gone, I/O error)
inline constexpr int kExitBadInput =
    2;  // the input is invalid (study file, flags); nothing was written

void RegisterValidateCommand(CLI::App& app, int* exit_code);
void RegisterServeCommand(CLI::App& app, int* exit_code);
void RegisterSubmitCommand(CLI::App& app, int* exit_code);
// status, best and cancel.
void RegisterStatusCommands(CLI::App& app, int* exit_code);
void RegisterTrialsCommand(CLI::App& app, int* exit_code);
void RegisterWatchCommand(CLI::App& app, int* exit_code);
void RegisterReportCommand(CLI::App& app, int* exit_code);
void RegisterExportCommand(CLI::App& app, int* exit_code);
void RegisterImportanceCommand(CLI::App& app, int* exit_code);
void RegisterRunCommand(CLI::App& app, int* exit_code);
void RegisterHealthCommand(CLI::App& app, int* exit_code);

// Follows a study's event stream until it ends (watch, submit --wait). Returns kExitOk when it
// ended COMPLETE. `live_table` redraws a table on every event instead of printing event lines.
class CoordinatorConnection;
int FollowStudy(const CoordinatorConnection& connection, const std::string& study, bool live_table,
                std::ostream& out);

struct FollowOptions {
  bool live_table = false;
  // When set, another thread may TryCancel() it to stop following early (FollowStudy then returns
  // kExitFailure without printing an error).
  grpc::ClientContext* context = nullptr;
  // Lines shown under the live table (e.g. `hpsearch run`'s workers), asked on every redraw.
  std::function<std::string()> footer;
};
int FollowStudy(const CoordinatorConnection& connection, const std::string& study,
                const FollowOptions& options, std::ostream& out);

// Writes DIR/report.md for a study read from the results database (what `hpsearch report --db`
// does); prints the path to `out`. Returns an exit code.
int WriteStudyReport(const std::string& study, const std::string& db_path,
                     const std::string& out_dir);

}  // namespace hpsearch::cli
