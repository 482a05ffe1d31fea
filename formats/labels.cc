#include "formats/labels.h"

#include <algorithm>

#include "formats/error.h"

namespace hpsearch::formats {
namespace {

// ASCII only: the order must not depend on the process locale.
std::string AsciiLower(const std::string& s) {
  std::string lower = s;
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return lower;
}

bool IsCanonicalDecimal(const std::string& s) {
  if (s.empty() || s.size() > 18) return false;  // 18 digits always fit in int64
  if (s.size() > 1 && s[0] == '0') return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::vector<std::string> SortLabelNames(std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  if (!names.empty() && std::all_of(names.begin(), names.end(), IsCanonicalDecimal)) {
    std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
      return a.size() != b.size() ? a.size() < b.size() : a < b;
    });
    return names;
  }
  std::vector<std::pair<std::string, std::string>> keyed;
  keyed.reserve(names.size());
  for (std::string& name : names) keyed.emplace_back(AsciiLower(name), std::move(name));
  std::sort(keyed.begin(), keyed.end());
  std::vector<std::string> sorted;
  sorted.reserve(keyed.size());
  for (auto& entry : keyed) sorted.push_back(std::move(entry.second));
  return sorted;
}

LabelSet::LabelSet(std::vector<std::string> names) : names_(std::move(names)) {
  if (names_.empty())
    Fail(ErrorCode::kInvalidArgument, "label list is empty; give at least one class name");
  for (size_t i = 0; i < names_.size(); ++i) {
    if (!ids_.emplace(names_[i], static_cast<int64_t>(i)).second) {
      Fail(ErrorCode::kInvalidArgument,
           "label list names class \"" + names_[i] + "\" twice; each class must appear once");
    }
  }
}

LabelSet LabelSet::FromObserved(const std::vector<std::string>& observed) {
  return LabelSet(SortLabelNames(observed));
}

int64_t LabelSet::Find(const std::string& name) const {
  auto it = ids_.find(name);
  return it == ids_.end() ? -1 : it->second;
}

}  // namespace hpsearch::formats
