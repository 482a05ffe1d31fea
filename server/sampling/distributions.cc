#include "server/sampling/distributions.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "server/sampling/sampling_rng.h"

namespace hpsearch::server {
namespace {

absl::Status Malformed(const v1::ParameterSpec& param, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat("search_space.", param.name(), ": ", why));
}

// Points on the grid low, low + step, ... not above high. The slack absorbs the rounding of
// (high - low) / step when high lies on the grid (0.1 / 0.025 is 3.9999999999999996).
uint64_t StepCount(double low, double high, double step) {
  return static_cast<uint64_t>(std::floor((high - low) / step + 1e-9)) + 1;
}

uint64_t IntCount(const Distribution& d) {
  return static_cast<uint64_t>((static_cast<int64_t>(d.high) - static_cast<int64_t>(d.low)) /
                               static_cast<int64_t>(d.step)) +
         1;
}

v1::ParamValue Double(double x) {
  v1::ParamValue value;
  value.set_double_value(x);
  return value;
}

v1::ParamValue Int(int64_t x) {
  v1::ParamValue value;
  value.set_int_value(x);
  return value;
}

// An int from a log-uniform draw over [low - 0.5, high + 0.5): every integer keeps the share of
// log space that rounds to it.
int64_t LogInt(const Distribution& d, double u) {
  const double log_low = std::log(d.low - 0.5);
  const double log_high = std::log(d.high + 0.5);
  const double x = std::exp(log_low + u * (log_high - log_low));
  const int64_t k = std::llround((x - d.low) / d.step);
  const int64_t n = static_cast<int64_t>(IntCount(d)) - 1;
  return static_cast<int64_t>(d.low) + std::clamp<int64_t>(k, 0, n) * static_cast<int64_t>(d.step);
}

}  // namespace

absl::StatusOr<Distribution> ToDistribution(const v1::ParameterSpec& param) {
  Distribution dist;
  switch (param.distribution_case()) {
    case v1::ParameterSpec::kFloatRange: {
      const v1::FloatDistribution& d = param.float_range();
      if (!(d.low() <= d.high())) return Malformed(param, "low must not exceed high");
      dist.kind = Distribution::Kind::kFloat;
      dist.low = d.low();
      dist.high = d.high();
      dist.log = d.log();
      if (d.has_step()) {
        if (!(d.step() > 0)) return Malformed(param, "step must be positive");
        dist.step = d.step();
        dist.log = false;  // a grid is a grid (the validator refuses step with log)
        dist.high =
            d.low() + static_cast<double>(StepCount(d.low(), d.high(), d.step()) - 1) * d.step();
        dist.high = std::min(dist.high, d.high());
      } else if (d.log() && !(d.low() > 0)) {
        return Malformed(param, "a log range needs low > 0");
      }
      return dist;
    }
    case v1::ParameterSpec::kIntRange: {
      const v1::IntDistribution& d = param.int_range();
      if (d.low() > d.high()) return Malformed(param, "low must not exceed high");
      const int64_t step = d.has_step() ? d.step() : 1;
      if (step <= 0) return Malformed(param, "step must be positive");
      if (d.log() && d.low() < 1) return Malformed(param, "a log range needs low >= 1");
      dist.kind = Distribution::Kind::kInt;
      dist.low = static_cast<double>(d.low());
      dist.high = static_cast<double>(d.low() + (d.high() - d.low()) / step * step);
      dist.log = d.log();
      dist.step = static_cast<double>(step);
      return dist;
    }
    case v1::ParameterSpec::kCategorical:
      if (param.categorical().choices_size() == 0) {
        return Malformed(param, "a categorical needs at least one choice");
      }
      dist.kind = Distribution::Kind::kCategorical;
      dist.n_choices = param.categorical().choices_size();
      return dist;
    default:
      return Malformed(param, "no distribution given: set float_range, int_range or categorical");
  }
}

absl::StatusOr<v1::ParamValue> DrawRandomValue(const v1::ParameterSpec& param, uint64_t* state) {
  absl::StatusOr<Distribution> dist = ToDistribution(param);
  if (!dist.ok()) return dist.status();
  SamplingRng rng(*state);
  v1::ParamValue value;
  switch (dist->kind) {
    case Distribution::Kind::kFloat:
      if (dist->step > 0) {
        const uint64_t k = rng.UniformIndex(GridSize(*dist) - 1);
        value = GridValue(param, *dist, k);
      } else if (dist->log) {
        const double log_low = std::log(dist->low);
        const double log_high = std::log(dist->high);
        const double x = std::exp(log_low + rng.Uniform01() * (log_high - log_low));
        value = Double(std::clamp(x, dist->low, dist->high));
      } else {
        const double x = dist->low + rng.Uniform01() * (dist->high - dist->low);
        value = Double(std::clamp(x, dist->low, dist->high));
      }
      break;
    case Distribution::Kind::kInt:
      if (dist->log) {
        value = Int(LogInt(*dist, rng.Uniform01()));
      } else {
        value = GridValue(param, *dist, rng.UniformIndex(GridSize(*dist) - 1));
      }
      break;
    case Distribution::Kind::kCategorical:
      value = param.categorical().choices(static_cast<int>(rng.UniformIndex(dist->n_choices - 1)));
      break;
  }
  *state = *rng.mutable_state();
  return value;
}

v1::ParamValue FromUnitInterval(const v1::ParameterSpec& param, const Distribution& dist,
                                double u) {
  u = std::clamp(u, 0.0, 1.0);
  if (dist.kind == Distribution::Kind::kInt && dist.log) return Int(LogInt(dist, u));
  if (dist.discrete()) {
    const uint64_t n = GridSize(dist);
    const uint64_t k = std::min<uint64_t>(static_cast<uint64_t>(u * static_cast<double>(n)), n - 1);
    return GridValue(param, dist, k);
  }
  if (dist.log) {
    const double log_low = std::log(dist.low);
    const double x = std::exp(log_low + u * (std::log(dist.high) - log_low));
    return Double(std::clamp(x, dist.low, dist.high));
  }
  return Double(std::clamp(dist.low + u * (dist.high - dist.low), dist.low, dist.high));
}

uint64_t GridSize(const Distribution& dist) {
  switch (dist.kind) {
    case Distribution::Kind::kFloat:
      return dist.step > 0 ? StepCount(dist.low, dist.high, dist.step) : 0;
    case Distribution::Kind::kInt:
      return IntCount(dist);
    case Distribution::Kind::kCategorical:
      return static_cast<uint64_t>(dist.n_choices);
  }
  return 0;
}

v1::ParamValue GridValue(const v1::ParameterSpec& param, const Distribution& dist, uint64_t k) {
  switch (dist.kind) {
    case Distribution::Kind::kFloat:
      return Double(std::min(dist.high, dist.low + static_cast<double>(k) * dist.step));
    case Distribution::Kind::kInt:
      return Int(static_cast<int64_t>(dist.low) +
                 static_cast<int64_t>(k) * static_cast<int64_t>(dist.step));
    case Distribution::Kind::kCategorical:
      return param.categorical().choices(static_cast<int>(k));
  }
  return v1::ParamValue();
}

std::optional<double> ToInternal(const v1::ParameterSpec& param, const v1::ParamValue& value) {
  switch (param.distribution_case()) {
    case v1::ParameterSpec::kFloatRange:
    case v1::ParameterSpec::kIntRange:
      if (value.kind_case() == v1::ParamValue::kDoubleValue) return value.double_value();
      if (value.kind_case() == v1::ParamValue::kIntValue) {
        return static_cast<double>(value.int_value());
      }
      return std::nullopt;
    case v1::ParameterSpec::kCategorical:
      for (int i = 0; i < param.categorical().choices_size(); ++i) {
        if (SameParamValue(param.categorical().choices(i), value)) return static_cast<double>(i);
      }
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

v1::ParamValue ToExternal(const v1::ParameterSpec& param, double x) {
  switch (param.distribution_case()) {
    case v1::ParameterSpec::kIntRange:
      return Int(std::llround(x));
    case v1::ParameterSpec::kCategorical: {
      const int n = param.categorical().choices_size();
      const int k = static_cast<int>(std::clamp<long long>(std::llround(x), 0, n - 1));
      return param.categorical().choices(k);
    }
    default:
      return Double(x);
  }
}

bool SameParamValue(const v1::ParamValue& a, const v1::ParamValue& b) {
  auto number = [](const v1::ParamValue& v, double* x) {
    if (v.kind_case() == v1::ParamValue::kDoubleValue) return *x = v.double_value(), true;
    if (v.kind_case() == v1::ParamValue::kIntValue) {
      return *x = static_cast<double>(v.int_value()), true;
    }
    return false;
  };
  double x, y;
  if (number(a, &x) && number(b, &y)) return x == y;
  if (a.kind_case() != b.kind_case()) return false;
  switch (a.kind_case()) {
    case v1::ParamValue::kStringValue:
      return a.string_value() == b.string_value();
    case v1::ParamValue::kBoolValue:
      return a.bool_value() == b.bool_value();
    default:
      return a.kind_case() == v1::ParamValue::KIND_NOT_SET;
  }
}

}  // namespace hpsearch::server
