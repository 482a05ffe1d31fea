// Sampler: proposes parameter values for a new search trial. The coordinator owns one sampler per
// study and calls it under its own lock, so implementations need no locking of their own.
//
// Determinism: a sampler's proposal must depend only on the request (spec, seed, trial number,
// fixed values, history), never on wall time or call order, so a study replays identically from its
// seed. The random sampler ignores the history; model-based samplers (TPE) read COMPLETE trials and
// treat RUNNING and WAITING ones as constant liars.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "hpsearch/v1/study.pb.h"
#include "server/sampling/trial_history.h"

namespace hpsearch::server {

struct SampleRequest {
  const v1::StudySpec* spec = nullptr;  // normalised: search_space, sampler options, objective
  int trial_number = 0;
  // Seed of this proposal, derived from the study seed and trial number (see SamplingSeed()).
  uint64_t seed = 0;
  // Values fixed by an enqueued trial; the sampler proposes only the other parameters.
  std::vector<v1::ParamAssignment> fixed;
  // Every search trial created so far (finished, running and waiting), by number.
  const TrialHistory* history = nullptr;
};

class Sampler {
 public:
  virtual ~Sampler() = default;
  // A value for every search-space parameter not in request.fixed, in search-space order.
  virtual absl::StatusOr<std::vector<v1::ParamAssignment>> Sample(const SampleRequest& request) = 0;
  // True when no point is left to propose (an exhausted grid): the search then ends below n_trials.
  virtual bool Exhausted(const SampleRequest& request) const { return false; }
};

// The per-trial sampling seed: a SplitMix64 hash of the study seed and the trial number.
uint64_t SamplingSeed(uint64_t study_seed, int trial_number);

// The sampler a normalised spec asks for; INVALID_ARGUMENT for an unknown type.
absl::StatusOr<std::unique_ptr<Sampler>> MakeSampler(const v1::StudySpec& spec);

}  // namespace hpsearch::server
