// The `hpsearch` command line: each command lives in its own file and registers itself on the app.
// A command's callback stores its exit code in *exit_code; main() returns it.
#pragma once

#include <ostream>
#include <string>

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

// Follows a study's event stream until it ends (watch, submit --wait). Returns kExitOk when it
// ended COMPLETE. `live_table` redraws a table on every event instead of printing event lines.
class CoordinatorConnection;
int FollowStudy(const CoordinatorConnection& connection, const std::string& study, bool live_table,
                std::ostream& out);

}  // namespace hpsearch::cli
