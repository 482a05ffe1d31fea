// Class-name <-> id mapping of a labelled-text data set. Ids follow one documented order so that
// runs, checkpoints and metrics agree across files and machines: names sorted by their
// ASCII-lower-cased form, ties broken by the original bytes (for Banking77 this reproduces the
// Hugging Face PolyAI/banking77 ClassLabel ids, e.g. 51 = "Refund_not_showing_up"). Exception: when
// every name is a non-negative decimal integer without leading zeros ("0", "1", "10"), names sort
// numerically, so integer labels keep their own values as ids when all of 0..K-1 occur.
//
// Ownership: a value type. Thread-safety: const methods are safe to call concurrently.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace hpsearch::formats {

// Returns the distinct names of `names` in label-id order (see above).
std::vector<std::string> SortLabelNames(std::vector<std::string> names);

class LabelSet {
 public:
  // An empty set (size 0); only useful as a placeholder before assignment.
  LabelSet() = default;

  // The names in id order: names[i] gets id i.
  // REQUIRES: names non-empty, no duplicates (throws kInvalidArgument naming the duplicate
  // otherwise).
  explicit LabelSet(std::vector<std::string> names);

  // The set that SortLabelNames gives for `observed` (duplicates allowed).
  static LabelSet FromObserved(const std::vector<std::string>& observed);

  int64_t size() const { return static_cast<int64_t>(names_.size()); }
  const std::vector<std::string>& names() const { return names_; }
  const std::string& Name(int64_t id) const { return names_.at(static_cast<size_t>(id)); }

  // The id of `name`, or -1 when it is not in the set.
  int64_t Find(const std::string& name) const;

 private:
  std::vector<std::string> names_;
  std::unordered_map<std::string, int64_t> ids_;
};

}  // namespace hpsearch::formats
