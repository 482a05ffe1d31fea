// The one validator of study specs. `hpsearch validate`, `hpsearch submit` and the coordinator's
// SubmitStudy all call NormalizeStudySpec, so a file that validates is a study the coordinator
// accepts.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "hpsearch/v1/study.pb.h"

namespace hpsearch::server {

struct ValidationIssue {
  enum class Severity { kError, kWarning };
  Severity severity = Severity::kError;
  // Dotted path of the offending key as written in a study file, e.g.
  // "search_space.learning_rate.low", "enqueue[2].batch_size", "data.train_file". The YAML front
  // maps it to file:line:column.
  std::string field;
  // What is wrong and how to fix it, e.g. "low (0.5) must be below high (0.1): swap them".
  std::string message;
};

struct ValidationOptions {
  // Whether a path names an existing regular file / directory. Injected so tests and the
  // coordinator (which may see another filesystem than the client) decide. Defaults use
  // std::filesystem.
  std::function<bool(const std::string&)> file_exists;
  std::function<bool(const std::string&)> dir_exists;
  // Check that data files exist. The coordinator runs with it on; a client validating a spec meant
  // for another machine can turn it off.
  bool check_files = true;
};

// Fills every documented default into *spec (so the stored spec is complete and explicit) and
// returns every problem found, errors and warnings, in field order. The spec is valid when no issue
// is an error.
std::vector<ValidationIssue> NormalizeStudySpec(v1::StudySpec* spec,
                                                const ValidationOptions& options = {});

// True when any issue is an error.
bool HasErrors(const std::vector<ValidationIssue>& issues);

// INVALID_ARGUMENT naming every error as "field: message" on its own line, or OK when there is
// none.
absl::Status IssuesToStatus(const std::vector<ValidationIssue>& issues);

}  // namespace hpsearch::server
