// The YAML front of StudySpec. A study file is parsed into a StudySpec (keys are the proto's field
// names; docs/study-file.md lists them), relative paths are resolved against the file's folder, and
// the shared validator runs. Every problem is reported as "FILE:LINE:COLUMN: KEY: what is wrong;
// how to fix it".
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "hpsearch/v1/study.pb.h"
#include "server/study_file/study_validator.h"

namespace hpsearch::server {

// One problem in a study file, located in it.
struct StudyFileIssue {
  ValidationIssue::Severity severity = ValidationIssue::Severity::kError;
  std::string file;
  int line = 0;    // 1-based; 0 when the problem has no place in the file (e.g. a missing key)
  int column = 0;  // 1-based
  std::string field;
  std::string message;

  // "FILE:LINE:COLUMN: error: FIELD: MESSAGE" (or "warning").
  std::string ToString() const;
};

struct LoadedStudy {
  v1::StudySpec spec;                  // normalised: every default filled in, paths absolute
  std::vector<StudyFileIssue> issues;  // warnings only when the load succeeded
  bool ok() const;
};

// Parses and validates a study file. Returns the spec and any warnings, or the full list of issues
// (at least one an error). Only I/O errors (unreadable file) are returned as a non-OK status.
absl::StatusOr<LoadedStudy> LoadStudyFile(const std::string& path,
                                          const ValidationOptions& options = {});

// Same, from YAML text; `display_name` is used in messages and `base_dir` resolves relative paths.
LoadedStudy ParseStudyYaml(const std::string& yaml_text, const std::string& display_name,
                           const std::string& base_dir, const ValidationOptions& options = {});

// Writes a normalised spec back as YAML that ParseStudyYaml reads into the same spec.
std::string StudySpecToYaml(const v1::StudySpec& spec);

}  // namespace hpsearch::server
