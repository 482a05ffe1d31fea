#include "server/sampling/random_sampler.h"

#include "server/sampling/distributions.h"
#include "server/sampling/sampling_rng.h"

namespace hpsearch::server {

absl::StatusOr<std::vector<v1::ParamAssignment>> RandomSampler::Sample(
    const SampleRequest& request) {
  std::vector<v1::ParamAssignment> params;
  for (const v1::ParameterSpec& param : request.spec->search_space()) {
    bool fixed = false;
    for (const v1::ParamAssignment& assignment : request.fixed) {
      if (assignment.name() == param.name()) fixed = true;
    }
    if (fixed) continue;
    // Each parameter draws from its own stream, so fixing one (enqueue) leaves the others
    // unchanged.
    uint64_t state = request.seed ^ NameHash(param.name());
    absl::StatusOr<v1::ParamValue> value = DrawRandomValue(param, &state);
    if (!value.ok()) return value.status();
    v1::ParamAssignment assignment;
    assignment.set_name(param.name());
    *assignment.mutable_value() = *value;
    params.push_back(std::move(assignment));
  }
  return params;
}

}  // namespace hpsearch::server
