#include "server/sampling/sampler.h"

#include "absl/strings/str_cat.h"
#include "server/sampling/sampler_kinds.h"
#include "server/sampling/sampling_rng.h"

namespace hpsearch::server {

uint64_t SamplingSeed(uint64_t study_seed, int trial_number) {
  SamplingRng rng(study_seed ^ (0xA0761D6478BD642FULL * static_cast<uint64_t>(trial_number + 1)));
  return rng.Next();
}

absl::StatusOr<std::unique_ptr<Sampler>> MakeSampler(const v1::StudySpec& spec) {
  const SamplerKind* kind = FindSamplerKind(spec.sampler().type());
  if (kind == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("sampler.type ", spec.sampler().type(),
                                                   " is unknown: use ", SamplerKindNames()));
  }
  return kind->make();
}

}  // namespace hpsearch::server
