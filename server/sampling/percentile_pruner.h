// PercentilePruner (and the median pruner, its 50th percentile): keeps the best `percentile` % of
// trials at each epoch. A trial whose best value so far is worse than that share of the COMPLETE
// trials' values at the same epoch stops, as Optuna 3.1's PercentilePruner / MedianPruner decide
// (steps are our 1-based epochs).
//
// A trial is judged at epoch e only when all of these hold (else it continues):
//  - at least max(1, n_startup_trials) trials are COMPLETE;
//  - e > n_warmup_epochs, and e is the first reported epoch of its interval (epochs
//    n_warmup_epochs + 1, + 1 + interval_epochs, ...; a skipped epoch moves the check to the next
//    reported one);
//  - at least n_min_trials COMPLETE trials reported epoch e;
//  - the trial reported its objective metric at some epoch (a trial that never reports it cannot
//    be judged; Optuna prunes a NaN, we keep it: the coordinator refuses non-finite metrics, so a
//    missing value means "not measured", not "diverged").
// The bar is a percentile with linear interpolation between closest ranks (numpy's default):
// percentile 25 of a maximised metric stops trials below the upper quartile of the COMPLETE ones.
//
// Options come from the spec's PrunerSpec (defaults in docs/study-file.md).
// Thread-safety: stateless; Judge may run concurrently.
#pragma once

#include <vector>

#include "server/sampling/pruner.h"

namespace hpsearch::server {

class PercentilePruner : public Pruner {
 public:
  std::optional<PruneVerdict> Judge(const PruneRequest& request) override;
};

// The q-th percentile (0..100) of `values` with linear interpolation between closest ranks.
// REQUIRES: values non-empty.
double Percentile(std::vector<double> values, double q);

}  // namespace hpsearch::server
