// Distributions: a search-space parameter (v1::ParameterSpec) as the samplers see it, and the few
// operations every sampler shares: draw a value exactly from the distribution, map a point of the
// unit interval onto it (quasi-random samplers), enumerate its grid, and convert values to and from
// the numeric "internal" form the model-based samplers work in.
//
// Exactness: a log range is uniform in log space; a step grid low, low+step, ... includes both
// ends when high lies on it (the last point not above high otherwise); an int never leaves
// [low, high] and stays on its step; a categorical gives each choice the same mass.
//
// Internal form: a float or int parameter's value itself, a categorical's choice index.
//
// Thread-safety: free functions over immutable inputs.
#pragma once

#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"
#include "hpsearch/v1/study.pb.h"

namespace hpsearch::server {

struct Distribution {
  enum class Kind { kFloat, kInt, kCategorical };
  Kind kind = Kind::kFloat;
  double low = 0;   // float and int: inclusive bounds
  double high = 0;  // float and int: inclusive bounds (the top grid point for stepped ones)
  bool log = false;
  double step = 0;    // 0: continuous float; ints always >= 1
  int n_choices = 0;  // categorical only

  bool discrete() const { return kind != Kind::kFloat || step > 0; }
};

// The distribution of a parameter. INVALID_ARGUMENT names the parameter when it is empty or
// malformed (no distribution, low > high, a log range with low <= 0, a step <= 0, no choices).
absl::StatusOr<Distribution> ToDistribution(const v1::ParameterSpec& param);

// One value drawn from `param`'s distribution with the SplitMix64 generator state `*state`.
absl::StatusOr<v1::ParamValue> DrawRandomValue(const v1::ParameterSpec& param, uint64_t* state);

// The value at u in [0, 1): every grid point or choice owns an equal share of the interval, and a
// continuous range is stretched linearly (in log space for log ranges).
// REQUIRES: dist == ToDistribution(param).
v1::ParamValue FromUnitInterval(const v1::ParameterSpec& param, const Distribution& dist, double u);

// Number of grid points: the values of an int, of a stepped float, or the choices; 0 for a
// continuous float (which has no grid).
uint64_t GridSize(const Distribution& dist);

// The k-th grid point in increasing order (choices in listed order).
// REQUIRES: k < GridSize(dist) and dist == ToDistribution(param).
v1::ParamValue GridValue(const v1::ParameterSpec& param, const Distribution& dist, uint64_t k);

// The internal form of `value`, or nullopt when it is not a value of `param` (wrong kind, not a
// choice). Numbers are not range-checked: history written under an older range still counts.
std::optional<double> ToInternal(const v1::ParameterSpec& param, const v1::ParamValue& value);

// The value of internal form `x` (rounded to an int / choice index where needed).
v1::ParamValue ToExternal(const v1::ParameterSpec& param, double x);

// True when both hold the same value; ints and doubles compare as numbers.
bool SameParamValue(const v1::ParamValue& a, const v1::ParamValue& b);

}  // namespace hpsearch::server
