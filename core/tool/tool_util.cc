#include "core/tool/tool_util.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "formats/json_nesting.h"

namespace hpsearch::core::tool {

bool ParseFlags(int argc, char** argv, const std::set<std::string>& allowed,
                std::map<std::string, std::string>* flags, std::string* error,
                const std::set<std::string>& switches) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      (*flags)["help"] = "1";
      continue;
    }
    if (arg.rfind("--", 0) == 0 && switches.count(arg.substr(2)) != 0) {
      (*flags)[arg.substr(2)] = "1";
      continue;
    }
    if (arg.rfind("--", 0) != 0 || allowed.count(arg.substr(2)) == 0) {
      *error = "unexpected argument '" + arg + "'";
      return false;
    }
    if (i + 1 >= argc) {
      *error = arg + " needs a value";
      return false;
    }
    (*flags)[arg.substr(2)] = argv[++i];
  }
  return true;
}

bool IntFlag(const std::map<std::string, std::string>& flags, const std::string& name, int64_t low,
             int64_t high, int64_t fallback, int64_t* value, std::string* error) {
  auto it = flags.find(name);
  if (it == flags.end()) {
    *value = fallback;
    return true;
  }
  const std::string& text = it->second;
  size_t used = 0;
  long long parsed = 0;
  try {
    parsed = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || parsed < low || parsed > high) {
    *error = "--" + name + ": expected a whole number from " + std::to_string(low) + " to " +
             std::to_string(high) + ", got '" + text + "'";
    return false;
  }
  *value = parsed;
  return true;
}

int ExitCodeFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kNotFound:
    case ErrorCode::kDataLoss:
    case ErrorCode::kUnsupported:
      return 2;
    default:
      return 1;
  }
}

bool ParseTextLine(const std::string& line, std::string* text, std::string* error) {
  nlohmann::json json;
  if (size_t at = formats::FindExcessiveJsonNesting(line); at != std::string::npos) {
    *error = "JSON nested deeper than " + std::to_string(formats::kMaxJsonNesting) +
             " levels (at byte " + std::to_string(at) + "); expected an object {\"text\": \"...\"}";
    return false;
  }
  try {
    json = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    *error = std::string("not valid JSON (") + formats::JsonErrorExcerpt(e) + ")";
    return false;
  }
  if (!json.is_object()) {
    *error = std::string("expected an object {\"text\": \"...\"}, got ") + json.type_name();
    return false;
  }
  const auto it = json.find("text");
  if (it == json.end() || !it->is_string()) {
    *error = "expected a string field \"text\"";
    return false;
  }
  *text = it->get<std::string>();
  return true;
}

std::vector<std::string> ReadTextLines(const std::string& path) {
  std::ifstream in(path);
  if (!in) Fail(ErrorCode::kNotFound, "cannot open input file '" + path + "'");
  std::vector<std::string> texts;
  std::string line, text, error;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (!ParseTextLine(line, &text, &error)) {
      Fail(ErrorCode::kInvalidArgument, path + ":" + std::to_string(number) + ": " + error);
    }
    texts.push_back(text);
  }
  return texts;
}

}  // namespace hpsearch::core::tool
