// Small helpers shared by hpsearch-core's commands: flag parsing and JSON Lines text input.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

namespace hpsearch::core::tool {

// Parses `--name value` pairs (argv[0] is the command) and value-less `--switch`es (set to "1").
// Returns false with *error set on an unknown flag or a flag without its value; "--help"/"-h" sets
// (*flags)["help"].
bool ParseFlags(int argc, char** argv, const std::set<std::string>& allowed,
                std::map<std::string, std::string>* flags, std::string* error,
                const std::set<std::string>& switches = {});

// The "text" of one JSON Lines record, or false with *error explaining what is wrong with it.
bool ParseTextLine(const std::string& line, std::string* text, std::string* error);

// Every text of a JSON Lines file (blank lines skipped). Throws core::Error naming file:line.
std::vector<std::string> ReadTextLines(const std::string& path);

}  // namespace hpsearch::core::tool
