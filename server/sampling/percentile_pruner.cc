#include "server/sampling/percentile_pruner.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace hpsearch::server {

double Percentile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  const double rank = q / 100.0 * static_cast<double>(values.size() - 1);
  const size_t below = static_cast<size_t>(std::floor(rank));
  const size_t above = std::min(below + 1, values.size() - 1);
  const double t = rank - static_cast<double>(below);
  return values[below] + t * (values[above] - values[below]);
}

std::optional<PruneVerdict> PercentilePruner::Judge(const PruneRequest& request) {
  const v1::PrunerSpec& options = request.spec->pruner();
  const int n_startup = options.has_n_startup_trials() ? options.n_startup_trials() : 5;
  const int warmup = options.has_n_warmup_epochs() ? options.n_warmup_epochs() : 0;
  const int interval = std::max(1, options.has_interval_epochs() ? options.interval_epochs() : 1);
  const int n_min = options.has_n_min_trials() ? options.n_min_trials() : 1;
  double percentile = 50.0;
  if (options.type() == v1::PRUNER_TYPE_PERCENTILE) {
    percentile = options.has_percentile() ? options.percentile() : 25.0;
  }
  const bool maximize = request.spec->objective().direction() != v1::DIRECTION_MINIMIZE;
  const auto& trials = request.history->trials;
  if (request.trial_number < 0 || request.trial_number >= static_cast<int>(trials.size())) {
    return std::nullopt;
  }
  int completed = 0;
  for (const HistoryTrial& t : trials) completed += t.state == v1::TRIAL_STATE_COMPLETE;
  if (completed == 0 || completed < n_startup) return std::nullopt;

  // Epoch e is step e - 1 in Optuna's terms.
  const int step = request.epoch - 1;
  if (step < warmup) return std::nullopt;
  const HistoryTrial& trial = trials[request.trial_number];
  const int nearest_check = (step - warmup) / interval * interval + warmup;
  for (int earlier = step - 1; earlier >= nearest_check; --earlier) {
    if (earlier < static_cast<int>(trial.epoch_values.size()) && trial.epoch_values[earlier]) {
      return std::nullopt;  // this interval was judged at an earlier epoch
    }
  }
  bool any = false;
  double best = 0;
  for (int k = 0; k <= step && k < static_cast<int>(trial.epoch_values.size()); ++k) {
    if (!trial.epoch_values[k]) continue;
    const double v = *trial.epoch_values[k];
    if (!any || (maximize ? v > best : v < best)) best = v;
    any = true;
  }
  if (!any) return std::nullopt;
  std::vector<double> others;
  for (const HistoryTrial& t : trials) {
    if (t.state != v1::TRIAL_STATE_COMPLETE) continue;
    if (step < static_cast<int>(t.epoch_values.size()) && t.epoch_values[step]) {
      others.push_back(*t.epoch_values[step]);
    }
  }
  if (others.empty() || static_cast<int>(others.size()) < n_min) return std::nullopt;
  const double threshold = Percentile(others, maximize ? 100.0 - percentile : percentile);
  if (!(maximize ? best < threshold : best > threshold)) return std::nullopt;
  PruneVerdict verdict;
  verdict.rule = absl::StrCat(options.type() == v1::PRUNER_TYPE_PERCENTILE
                                  ? absl::StrCat("percentile ", percentile)
                                  : std::string("median"),
                              " of ", others.size(), " complete trials at epoch ", request.epoch);
  verdict.epoch = request.epoch;
  verdict.value = best;
  verdict.threshold = threshold;
  return verdict;
}

}  // namespace hpsearch::server
