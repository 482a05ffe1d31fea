#include "server/random_sampler.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"

namespace hpsearch::server {
namespace {

uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Uniform in [0, 1) with 53 random bits; written out so draws are identical on every standard
// library.
double Uniform01(uint64_t* state) {
  return static_cast<double>(SplitMix64(state) >> 11) * 0x1.0p-53;
}

// Uniform integer in [0, n] without modulo bias.
uint64_t UniformIndex(uint64_t n, uint64_t* state) {
  if (n == UINT64_MAX) return SplitMix64(state);
  uint64_t range = n + 1;
  uint64_t limit = UINT64_MAX - UINT64_MAX % range;
  uint64_t x;
  do {
    x = SplitMix64(state);
  } while (x >= limit);
  return x % range;
}

// FNV-1a: a name hash that is the same on every platform (std::hash is not).
uint64_t NameHash(const std::string& name) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : name) hash = (hash ^ c) * 0x100000001b3ULL;
  return hash;
}

absl::Status Malformed(const v1::ParameterSpec& param, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat("search_space.", param.name(), ": ", why));
}

}  // namespace

uint64_t SamplingSeed(uint64_t study_seed, int trial_number) {
  uint64_t state = study_seed ^ (0xA0761D6478BD642FULL * static_cast<uint64_t>(trial_number + 1));
  return SplitMix64(&state);
}

absl::StatusOr<v1::ParamValue> DrawRandomValue(const v1::ParameterSpec& param, uint64_t* state) {
  v1::ParamValue value;
  switch (param.distribution_case()) {
    case v1::ParameterSpec::kFloatRange: {
      const v1::FloatDistribution& d = param.float_range();
      if (!(d.low() <= d.high())) return Malformed(param, "low must not exceed high");
      if (d.has_step()) {
        if (!(d.step() > 0)) return Malformed(param, "step must be positive");
        // Grid low, low + step, ..., the last point not above high (both ends when they fit).
        double count = std::floor((d.high() - d.low()) / d.step() + 1e-9);
        uint64_t k = UniformIndex(static_cast<uint64_t>(count), state);
        value.set_double_value(std::min(d.high(), d.low() + static_cast<double>(k) * d.step()));
      } else if (d.log()) {
        if (!(d.low() > 0)) return Malformed(param, "a log range needs low > 0");
        double log_low = std::log(d.low());
        double log_high = std::log(d.high());
        double x = std::exp(log_low + Uniform01(state) * (log_high - log_low));
        value.set_double_value(std::clamp(x, d.low(), d.high()));
      } else {
        double x = d.low() + Uniform01(state) * (d.high() - d.low());
        value.set_double_value(std::clamp(x, d.low(), d.high()));
      }
      return value;
    }
    case v1::ParameterSpec::kIntRange: {
      const v1::IntDistribution& d = param.int_range();
      if (d.low() > d.high()) return Malformed(param, "low must not exceed high");
      int64_t step = d.has_step() ? d.step() : 1;
      if (step <= 0) return Malformed(param, "step must be positive");
      if (d.log()) {
        if (d.low() < 1) return Malformed(param, "a log range needs low >= 1");
        // Uniform in log space over [low - 0.5, high + 0.5), rounded: every integer keeps its
        // share.
        double log_low = std::log(static_cast<double>(d.low()) - 0.5);
        double log_high = std::log(static_cast<double>(d.high()) + 0.5);
        double x = std::exp(log_low + Uniform01(state) * (log_high - log_low));
        int64_t k = std::llround((x - static_cast<double>(d.low())) / static_cast<double>(step));
        int64_t n = (d.high() - d.low()) / step;
        value.set_int_value(d.low() + std::clamp<int64_t>(k, 0, n) * step);
      } else {
        uint64_t n = static_cast<uint64_t>(d.high() - d.low()) / static_cast<uint64_t>(step);
        value.set_int_value(d.low() + static_cast<int64_t>(UniformIndex(n, state)) * step);
      }
      return value;
    }
    case v1::ParameterSpec::kCategorical: {
      const v1::CategoricalDistribution& d = param.categorical();
      if (d.choices_size() == 0) return Malformed(param, "a categorical needs at least one choice");
      return d.choices(static_cast<int>(UniformIndex(d.choices_size() - 1, state)));
    }
    default:
      return Malformed(param, "no distribution given: set float_range, int_range or categorical");
  }
}

absl::StatusOr<std::vector<v1::ParamAssignment>> RandomSampler::Sample(
    const SampleRequest& request) {
  std::vector<v1::ParamAssignment> params;
  for (const v1::ParameterSpec& param : request.spec->search_space()) {
    // Each parameter draws from its own stream, so fixing one (enqueue) leaves the others
    // unchanged.
    uint64_t state = request.seed ^ NameHash(param.name());
    bool fixed = false;
    for (const v1::ParamAssignment& assignment : request.fixed) {
      if (assignment.name() == param.name()) fixed = true;
    }
    if (fixed) continue;
    absl::StatusOr<v1::ParamValue> value = DrawRandomValue(param, &state);
    if (!value.ok()) return value.status();
    v1::ParamAssignment assignment;
    assignment.set_name(param.name());
    *assignment.mutable_value() = *value;
    params.push_back(std::move(assignment));
  }
  return params;
}

absl::StatusOr<std::unique_ptr<Sampler>> MakeSampler(const v1::StudySpec& spec) {
  switch (spec.sampler().type()) {
    case v1::SAMPLER_TYPE_UNSPECIFIED:
    case v1::SAMPLER_TYPE_RANDOM:
      return std::unique_ptr<Sampler>(new RandomSampler());
    default:
      return absl::UnimplementedError(absl::StrCat("sampler.type ",
                                                   v1::SamplerType_Name(spec.sampler().type()),
                                                   " is not available in this build: use random"));
  }
}

}  // namespace hpsearch::server
