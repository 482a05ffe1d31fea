// AshaPruner: asynchronous successive halving (Li et al. 2020), as Optuna 3.1's
// SuccessiveHalvingPruner decides, with epochs as the resource.
//
// Rung r ends at epoch min_resource * reduction_factor^(min_early_stopping_rate + r) (defaults
// 1, 3, 0: epochs 1, 3, 9, ...). When a trial reports the epoch that ends a rung (or first passes
// it), its value there joins those of every trial that reached the rung before; it continues only
// if it ranks in the best 1/reduction_factor of them (the best one when fewer than
// reduction_factor have reached it). No rung waits for others: a trial is judged against whoever
// got there first, which is what makes it asynchronous and suited to parallel workers.
//
// Semantics fixed for epochs (Optuna counts steps from whatever the user reports): min_resource is
// the number of epochs trained before the first judgement. A missing objective value at the rung
// epoch keeps the trial (see percentile_pruner.h). A trial's value at a rung it passed is its value
// at its first reported epoch at or after the rung's end, for every trial in the history, so the
// decision depends on the history alone.
//
// Options come from the spec's PrunerSpec. Thread-safety: stateless.
#pragma once

#include "server/sampling/pruner.h"

namespace hpsearch::server {

class AshaPruner : public Pruner {
 public:
  std::optional<PruneVerdict> Judge(const PruneRequest& request) override;
};

}  // namespace hpsearch::server
