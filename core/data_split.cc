#include "core/data_split.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/seeded_rng.h"

namespace hpsearch::core {
namespace {

// Distinct stream tags so the class tie-break order and the per-class choices never share random
// numbers.
constexpr uint64_t kTieBreakStream = 1;
constexpr uint64_t kChoiceStream = 2;

// How many examples each class holds out (see the header for the rule).
std::vector<int64_t> StratifiedQuotas(const std::vector<int64_t>& class_counts, int64_t n,
                                      int64_t n_validation, uint64_t seed) {
  const size_t num_classes = class_counts.size();
  std::vector<int64_t> quotas(num_classes, 0);
  std::vector<int64_t> remainders(num_classes, 0);
  int64_t capacity = 0;
  int64_t assigned = 0;
  for (size_t c = 0; c < num_classes; ++c) {
    const int64_t cap = std::max<int64_t>(class_counts[c] - 1, 0);
    capacity += cap;
    // Integer arithmetic keeps the rounding identical everywhere: n_validation * n_c <= n^2 fits in
    // int64.
    const int64_t numerator = n_validation * class_counts[c];
    quotas[c] = std::min(numerator / n, cap);
    remainders[c] = numerator % n;
    assigned += quotas[c];
  }
  if (capacity < n_validation) {
    Fail(ErrorCode::kInvalidArgument,
         "stratified split: holding out " + std::to_string(n_validation) + " of " +
             std::to_string(n) +
             " examples would leave some class without a training example (at most " +
             std::to_string(capacity) +
             " can go); lower validation_fraction or turn stratification off");
  }
  std::vector<size_t> order(num_classes);
  for (size_t c = 0; c < num_classes; ++c) order[c] = c;
  SeededRng rng(MixSeed(seed, kTieBreakStream));
  rng.Shuffle(order);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return remainders[a] > remainders[b]; });
  // Usually one pass hands out the leftover; more only when caps stop classes from taking their
  // share.
  while (assigned < n_validation) {
    for (size_t c : order) {
      if (assigned == n_validation) break;
      if (quotas[c] < std::max<int64_t>(class_counts[c] - 1, 0)) {
        ++quotas[c];
        ++assigned;
      }
    }
  }
  return quotas;
}

}  // namespace

int64_t ValidationCount(int64_t n, double fraction) {
  if (!(fraction > 0.0 && fraction < 1.0)) {
    Fail(ErrorCode::kInvalidArgument,
         "validation_fraction must lie strictly between 0 and 1, got " + std::to_string(fraction));
  }
  const int64_t n_validation = static_cast<int64_t>(std::ceil(fraction * static_cast<double>(n)));
  if (n_validation < 1 || n_validation >= n) {
    Fail(ErrorCode::kInvalidArgument,
         "validation_fraction " + std::to_string(fraction) + " of " + std::to_string(n) +
             " examples leaves train or validation empty; use more data or another fraction");
  }
  return n_validation;
}

DataSplit SplitTrainValidation(const std::vector<int64_t>& labels, int64_t num_classes,
                               double fraction, bool stratify, uint64_t seed) {
  const int64_t n = static_cast<int64_t>(labels.size());
  const int64_t n_validation = ValidationCount(n, fraction);
  std::vector<bool> held_out(labels.size(), false);
  SeededRng rng(MixSeed(seed, kChoiceStream));
  if (stratify) {
    std::vector<std::vector<int64_t>> members(static_cast<size_t>(num_classes));
    for (int64_t i = 0; i < n; ++i) {
      const int64_t label = labels[static_cast<size_t>(i)];
      if (label < 0 || label >= num_classes) {
        Fail(ErrorCode::kInvalidArgument,
             "split: label id " + std::to_string(label) + " of example " + std::to_string(i) +
                 " is outside [0, " + std::to_string(num_classes) + ")");
      }
      members[static_cast<size_t>(label)].push_back(i);
    }
    std::vector<int64_t> counts;
    for (const auto& m : members) counts.push_back(static_cast<int64_t>(m.size()));
    const std::vector<int64_t> quotas = StratifiedQuotas(counts, n, n_validation, seed);
    for (size_t c = 0; c < members.size(); ++c) {
      rng.Shuffle(members[c]);
      for (int64_t k = 0; k < quotas[c]; ++k) held_out[static_cast<size_t>(members[c][k])] = true;
    }
  } else {
    std::vector<int64_t> order(labels.size());
    for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
    rng.Shuffle(order);
    for (int64_t k = 0; k < n_validation; ++k) held_out[static_cast<size_t>(order[k])] = true;
  }
  DataSplit split;
  split.validation.reserve(static_cast<size_t>(n_validation));
  split.train.reserve(static_cast<size_t>(n - n_validation));
  for (int64_t i = 0; i < n; ++i) {
    (held_out[static_cast<size_t>(i)] ? split.validation : split.train).push_back(i);
  }
  return split;
}

DataSplit SplitTrainValidation(const formats::LabelledDataset& dataset,
                               const formats::DataOptions& options) {
  return SplitTrainValidation(dataset.LabelIds(), dataset.labels.size(),
                              options.validation_fraction, options.stratify_split,
                              options.split_seed);
}

}  // namespace hpsearch::core
