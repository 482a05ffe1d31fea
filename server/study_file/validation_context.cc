#include "server/study_file/validation_context.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>

#include "absl/strings/str_join.h"
#include "base/closest_match.h"
#include "proto/canonical_metrics.h"

namespace hpsearch::server::internal {

void ValidationContext::Error(const std::string& field, const std::string& message) {
  issues_.push_back({ValidationIssue::Severity::kError, field, message});
}

void ValidationContext::Warning(const std::string& field, const std::string& message) {
  issues_.push_back({ValidationIssue::Severity::kWarning, field, message});
}

bool ValidationContext::FileExists(const std::string& path) const {
  if (options_.file_exists) return options_.file_exists(path);
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

bool ValidationContext::DirExists(const std::string& path) const {
  if (options_.dir_exists) return options_.dir_exists(path);
  std::error_code ec;
  return std::filesystem::is_directory(path, ec);
}

void ValidationContext::RequireFile(const std::string& field, const std::string& path,
                                    const std::string& what) {
  if (!options_.check_files || FileExists(path)) return;
  if (DirExists(path)) {
    Error(field, what + " '" + path + "' is a folder, not a file: name the file itself");
    return;
  }
  Error(field, what + " '" + path + "' does not exist: fix the path (relative paths are resolved " +
                   "against the study file's folder)");
}

bool ValidationContext::has_errors() const { return HasErrors(issues_); }

std::string FormatNumber(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buffer[64];
  auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

std::string ClosestMatch(const std::string& word, const std::vector<std::string>& candidates) {
  return hpsearch::ClosestMatch(word, candidates);
}

std::string SuggestAmong(const std::string& word, const std::vector<std::string>& candidates) {
  std::string closest = ClosestMatch(word, candidates);
  if (!closest.empty()) return ", did you mean '" + closest + "'?";
  return "; expected one of: " + absl::StrJoin(candidates, ", ");
}

bool IsIdentifier(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  if (!(std::islower(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) ||
           std::isdigit(static_cast<unsigned char>(c)) || c == '_';
  });
}

const std::vector<std::string>& CanonicalEpochMetrics() { return proto::EpochMetricNames(); }

}  // namespace hpsearch::server::internal
