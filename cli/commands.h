// The `hpsearch` command line: each command lives in its own file and registers itself on the app.
// A command's callback stores its exit code in *exit_code; main() returns it.
#pragma once

#include "CLI/CLI.hpp"

namespace hpsearch::cli {

// Exit codes shared by every command.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the command ran and failed (coordinator gone, I/O error)
inline constexpr int kExitBadInput =
    2;  // the input is invalid (study file, flags); nothing was written

void RegisterValidateCommand(CLI::App& app, int* exit_code);
void RegisterServeCommand(CLI::App& app, int* exit_code);

}  // namespace hpsearch::cli
