// RandomSampler: independent draws from each parameter's distribution, seeded per trial by
// SampleRequest::seed, so trial k's values depend only on the study seed and k. Exact to the
// distribution: log ranges are uniform in log space, step grids include both ends, ints never leave
// their bounds. Thread-safety: stateless; safe to call from any thread.
#pragma once

#include "server/sampler.h"

namespace hpsearch::server {

class RandomSampler : public Sampler {
 public:
  absl::StatusOr<std::vector<v1::ParamAssignment>> Sample(const SampleRequest& request) override;
};

// Draws one value of `param` from the 64-bit generator state `*state` (SplitMix64).
// INVALID_ARGUMENT names the parameter when its distribution is empty or malformed.
absl::StatusOr<v1::ParamValue> DrawRandomValue(const v1::ParameterSpec& param, uint64_t* state);

}  // namespace hpsearch::server
