// Small helpers shared by hpsearch-core's commands: flag parsing and JSON Lines text input.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"

namespace hpsearch::core::tool {

// Parses `--name value` pairs (argv[0] is the command) and value-less `--switch`es (set to "1").
// Returns false with *error set on an unknown flag or a flag without its value; "--help"/"-h" sets
// (*flags)["help"].
bool ParseFlags(int argc, char** argv, const std::set<std::string>& allowed,
                std::map<std::string, std::string>* flags, std::string* error,
                const std::set<std::string>& switches = {});

// The integer value of flag `name` when it is set (else `fallback`), or false with *error set when it
// is not a whole number in [low, high] ("--max-length: expected a whole number from 1 to 1048576,
// got 'abc'").
bool IntFlag(const std::map<std::string, std::string>& flags, const std::string& name, int64_t low,
             int64_t high, int64_t fallback, int64_t* value, std::string* error);

// The exit code for a core::Error: 2 when the input given is at fault (a bad argument, a missing or
// corrupt file, something unsupported), 1 when the environment is (I/O, a bug). docs/reliability.md
// lists every program's codes.
int ExitCodeFor(ErrorCode code);

// The "text" of one JSON Lines record, or false with *error explaining what is wrong with it.
bool ParseTextLine(const std::string& line, std::string* text, std::string* error);

// Every text of a JSON Lines file (blank lines skipped). Throws core::Error naming file:line.
std::vector<std::string> ReadTextLines(const std::string& path);

}  // namespace hpsearch::core::tool
