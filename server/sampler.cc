#include "server/sampler.h"

#include "absl/strings/str_cat.h"
#include "server/grid_sampler.h"
#include "server/random_sampler.h"
#include "server/sampling_rng.h"
#include "server/sobol_sampler.h"
#include "server/tpe_sampler.h"

namespace hpsearch::server {

uint64_t SamplingSeed(uint64_t study_seed, int trial_number) {
  SamplingRng rng(study_seed ^ (0xA0761D6478BD642FULL * static_cast<uint64_t>(trial_number + 1)));
  return rng.Next();
}

absl::StatusOr<std::unique_ptr<Sampler>> MakeSampler(const v1::StudySpec& spec) {
  switch (spec.sampler().type()) {
    case v1::SAMPLER_TYPE_UNSPECIFIED:
    case v1::SAMPLER_TYPE_RANDOM:
      return std::unique_ptr<Sampler>(new RandomSampler());
    case v1::SAMPLER_TYPE_TPE:
      return std::unique_ptr<Sampler>(new TpeSampler());
    case v1::SAMPLER_TYPE_GRID:
      return std::unique_ptr<Sampler>(new GridSampler());
    case v1::SAMPLER_TYPE_SOBOL:
      return std::unique_ptr<Sampler>(new SobolSampler());
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "sampler.type ", spec.sampler().type(), " is unknown: use random, tpe, grid or sobol"));
  }
}

}  // namespace hpsearch::server
