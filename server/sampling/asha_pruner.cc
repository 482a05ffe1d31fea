#include "server/sampling/asha_pruner.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"

namespace hpsearch::server {
namespace {

// The value at the first reported epoch >= `epoch` (1-based), if any.
std::optional<double> ValueFrom(const HistoryTrial& trial, int64_t epoch) {
  for (int64_t k = epoch - 1; k < static_cast<int64_t>(trial.epoch_values.size()); ++k) {
    if (trial.epoch_values[k]) return trial.epoch_values[k];
  }
  return std::nullopt;
}

}  // namespace

std::optional<PruneVerdict> AshaPruner::Judge(const PruneRequest& request) {
  const v1::PrunerSpec& options = request.spec->pruner();
  const int64_t min_resource = std::max(1, options.has_min_resource() ? options.min_resource() : 1);
  const int64_t factor =
      std::max(2, options.has_reduction_factor() ? options.reduction_factor() : 3);
  const int rate = std::max(0, options.min_early_stopping_rate());
  const bool maximize = request.spec->objective().direction() != v1::DIRECTION_MINIMIZE;
  const auto& trials = request.history->trials;
  if (request.trial_number < 0 || request.trial_number >= static_cast<int>(trials.size())) {
    return std::nullopt;
  }
  const HistoryTrial& trial = trials[request.trial_number];
  const int epoch = request.epoch;
  if (epoch < 1 || epoch > static_cast<int>(trial.epoch_values.size()) ||
      !trial.epoch_values[epoch - 1]) {
    return std::nullopt;
  }
  const double value = *trial.epoch_values[epoch - 1];
  int previous = epoch - 1;  // the last epoch reported before this one (0: none)
  while (previous > 0 && !trial.epoch_values[previous - 1]) --previous;

  int64_t rung_end = min_resource;
  for (int i = 0; i < rate && rung_end <= epoch; ++i) rung_end *= factor;
  for (; rung_end <= epoch; rung_end *= factor) {
    if (rung_end <= previous) continue;  // judged (and passed) at an earlier report
    std::vector<double> competing;
    for (int i = 0; i < static_cast<int>(trials.size()); ++i) {
      if (i == request.trial_number) continue;
      std::optional<double> v = ValueFrom(trials[i], rung_end);
      if (v) competing.push_back(*v);
    }
    competing.push_back(value);
    // Promoted when within the best max(1, floor(n / factor)) values.
    const size_t keep = std::max<size_t>(1, competing.size() / static_cast<size_t>(factor));
    std::sort(competing.begin(), competing.end());
    const double bar = maximize ? competing[competing.size() - keep] : competing[keep - 1];
    if (maximize ? value < bar : value > bar) {
      PruneVerdict verdict;
      verdict.rule = absl::StrCat("asha: not in the best ", keep, " of ", competing.size(),
                                  " trials at the rung ending at epoch ", rung_end);
      verdict.epoch = epoch;
      verdict.value = value;
      verdict.threshold = bar;
      return verdict;
    }
  }
  return std::nullopt;
}

}  // namespace hpsearch::server
