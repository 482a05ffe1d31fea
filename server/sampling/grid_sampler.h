// GridSampler: exhaustive search over the product of every parameter's grid (int values, stepped
// floats, choices; a float without a step has no grid and is refused). Each point is proposed at
// most once, in an order shuffled by the study seed (a keyed pseudo-random permutation of the
// point indices, so a budget below the grid size still spreads over the whole grid, and nothing
// of size grid is ever stored). Every trial in the history (any state) uses up its point; when
// none is left, Exhausted() is true and the search ends below n_trials.
//
// Fixed (enqueued) values: the proposal is the first unused point that agrees with them; when
// every such point is used, the first that agrees (looking at most 2^24 points down the order).
//
// Thread-safety: stateless; Sample and Exhausted may run concurrently.
#pragma once

#include <cstdint>

#include "server/sampling/option_report.h"
#include "server/sampling/sampler.h"

namespace hpsearch::server {

class GridSampler : public Sampler {
 public:
  // INVALID_ARGUMENT names a float without a step; a grid above 2^62 points is refused.
  absl::StatusOr<std::vector<v1::ParamAssignment>> Sample(const SampleRequest& request) override;
  bool Exhausted(const SampleRequest& request) const override;
};

// The number of grid points of the spec's search space, or an error naming the parameter that
// has no grid.
absl::StatusOr<uint64_t> GridPointCount(const v1::StudySpec& spec);

// The grid's row of the sampler table (sampler_kinds.h): every float parameter needs a step, and
// the grid must be countable; warns when the budget exceeds the grid.
void NormalizeGridOptions(v1::StudySpec* spec, OptionReport* report);

}  // namespace hpsearch::server
