// SobolSampler: quasi-random points of the Sobol sequence (Joe-Kuo direction numbers), one
// dimension per search-space parameter in order, trial k taking point k. A low-discrepancy
// sequence covers the space more evenly than independent draws: its first 2^m points put exactly
// one point in each of the 2^m equal slices of every parameter.
//
// Scrambling (default on): Matousek's linear matrix scramble plus a digital shift, seeded by the
// study seed. It keeps the sequence's stratification while making each point uniformly
// distributed, so a study is an unbiased random experiment and two seeds give independent
// designs. Unscrambled, point 0 is the all-lows corner (as in Optuna's QMCSampler).
//
// Mapping: each parameter takes its coordinate through FromUnitInterval (distributions.h): grid
// points and choices own equal slices; log ranges are stretched in log space. Fixed (enqueued)
// values replace their coordinate and leave the others unchanged.
//
// Thread-safety: stateless; Sample may run concurrently.
#pragma once

#include <cstdint>
#include <vector>

#include "server/sampling/option_report.h"
#include "server/sampling/sampler.h"

namespace hpsearch::server {

class SobolSampler : public Sampler {
 public:
  // INVALID_ARGUMENT when the search space has more than kSobolMaxDimensions parameters.
  absl::StatusOr<std::vector<v1::ParamAssignment>> Sample(const SampleRequest& request) override;
};

// Point `index` of the `dims`-dimensional sequence, coordinates in [0, 1).
// REQUIRES: 1 <= dims <= kSobolMaxDimensions (sobol_direction_numbers.h), index < 2^32.
std::vector<double> SobolPoint(int dims, uint64_t index, bool scramble, uint64_t seed);

// Sobol's row of the sampler table (sampler_kinds.h): `scramble` defaults to true; at most
// kSobolMaxDimensions parameters.
void NormalizeSobolOptions(v1::StudySpec* spec, OptionReport* report);

}  // namespace hpsearch::server
