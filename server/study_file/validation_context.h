// Internal to the study validator: collects issues under dotted field paths and offers the small
// checks every section repeats. Not thread-safe; one per validation run.
#pragma once

#include <string>
#include <vector>

#include "server/study_file/study_validator.h"

namespace hpsearch::server::internal {

class ValidationContext {
 public:
  explicit ValidationContext(const ValidationOptions& options) : options_(options) {}

  void Error(const std::string& field, const std::string& message);
  void Warning(const std::string& field, const std::string& message);

  // Checks that a path names an existing file (errors unless check_files is off).
  void RequireFile(const std::string& field, const std::string& path, const std::string& what);
  bool FileExists(const std::string& path) const;
  bool DirExists(const std::string& path) const;

  const ValidationOptions& options() const { return options_; }

  std::vector<ValidationIssue> TakeIssues() { return std::move(issues_); }
  bool has_errors() const;

 private:
  const ValidationOptions& options_;
  std::vector<ValidationIssue> issues_;
};

// "1e-05", "0.5", "16": shortest text that reads back as the same double.
std::string FormatNumber(double value);

// The closest candidate by edit distance when it is close enough to be a likely typo, else "".
std::string ClosestMatch(const std::string& word, const std::vector<std::string>& candidates);

// ", did you mean 'x'?" or "; expected one of: a, b, c".
std::string SuggestAmong(const std::string& word, const std::vector<std::string>& candidates);

// Lower-case snake-ish identifier: [a-z_][a-z0-9_]*.
bool IsIdentifier(const std::string& name);

// The canonical metric names that a qlora trial reports every epoch.
const std::vector<std::string>& CanonicalEpochMetrics();

// Sections of the validator (study_validator.cc, search_space_validator.cc,
// sampler_pruner_validator.cc).
void ValidateSearchSpace(v1::StudySpec* spec, ValidationContext* ctx);
void ValidateSampler(v1::StudySpec* spec, ValidationContext* ctx);
void ValidatePruner(v1::StudySpec* spec, ValidationContext* ctx);
void ValidateEnqueue(v1::StudySpec* spec, ValidationContext* ctx);

// The data files' columns and labels and the checkpoint's config.json, read with formats/ as a
// trial reads them (data_file_checks.cc). Files that cannot be read here are reported as not
// checked.
void CheckDataFiles(const v1::StudySpec& spec, ValidationContext* ctx);
void CheckModelConfig(const v1::StudySpec& spec, ValidationContext* ctx);

}  // namespace hpsearch::server::internal
