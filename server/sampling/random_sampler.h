// RandomSampler: independent draws from each parameter's distribution (DrawRandomValue in
// distributions.h), seeded per trial by SampleRequest::seed, so trial k's values depend only on the
// study seed and k. Thread-safety: stateless; safe to call from any thread.
#pragma once

#include "server/sampling/sampler.h"

namespace hpsearch::server {

class RandomSampler : public Sampler {
 public:
  absl::StatusOr<std::vector<v1::ParamAssignment>> Sample(const SampleRequest& request) override;
};

}  // namespace hpsearch::server
