// Internal to the study-file front: YAML <-> StudySpec through protobuf reflection. Keys are the
// proto's field names; enums are their value names without the enum prefix, lower-cased ("qlora",
// "maximize"). A few shapes are friendlier than the generic mapping, and both directions agree on
// them (the short form on the left means the long form on the right):
//
// clang-format off
//   search_space: {NAME: {type: float|int|categorical, low, high, log, step, choices}}
//                               (a map; the order of its keys is kept)
//   enqueue: [{NAME: VALUE, ...}, ...]
//   model: DIR                  == model: {path: DIR}
//   runner: command             == runner: {type: command}
//   runner.command: "a b 'c d'" == runner.command: [a, b, "c d"]  (one shell-quoted string)
//   sampler: tpe                == sampler: {type: tpe}
//   pruner: median              == pruner: {type: median}
//   *_seconds: 90s              a number of seconds, or a duration such as 90s, 30m, 2h, 1d
// clang-format on
#pragma once

#include <map>
#include <string>
#include <vector>

#include "hpsearch/v1/study.pb.h"

namespace hpsearch::server::internal {

struct YamlPosition {
  int line = 0;    // 1-based
  int column = 0;  // 1-based
};

struct YamlParseError {
  std::string field;  // dotted path, "" for a syntax error
  YamlPosition position;
  std::string message;
};

struct YamlParseResult {
  v1::StudySpec spec;
  std::vector<YamlParseError> errors;
  // Where each key was written, by dotted path ("data.train_file", "search_space.lr.low",
  // "enqueue[1]").
  std::map<std::string, YamlPosition> positions;
};

YamlParseResult ParseStudyYamlText(const std::string& yaml_text);

std::string EmitStudyYaml(const v1::StudySpec& spec);

// Splits a command line into argv with POSIX-shell-like quoting ('...', "...", backslash). Returns
// false on an unterminated quote.
bool SplitCommandLine(const std::string& line, std::vector<std::string>* argv);

// Parses "90", "1.5", "90s", "30m", "2h", "1d" into seconds. Returns false when malformed.
bool ParseDurationSeconds(const std::string& text, double* seconds);

}  // namespace hpsearch::server::internal
