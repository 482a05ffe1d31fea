// Validation of the search space and of the enqueued trials (sampler and pruner options:
// sampler_pruner_validator.cc).
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/study_file/study_view.h"
#include "server/study_file/validation_context.h"

namespace hpsearch::server::internal {
namespace {

enum class ValueKind { kFloat, kInt, kBool };

// A parameter the qlora runner understands, and the values it accepts.
struct KnownParameter {
  ValueKind kind;
  double min;          // smallest allowed value
  double max;          // largest allowed value
  bool max_exclusive;  // true for [min, max)
  bool min_exclusive;  // true for (min, max]
};

const std::map<std::string, KnownParameter>& QloraParameters() {
  constexpr double kInf = HUGE_VAL;
  static const std::map<std::string, KnownParameter> kParams = {
      {"learning_rate", {ValueKind::kFloat, 0, kInf, false, true}},
      {"batch_size", {ValueKind::kInt, 1, kInf, false, false}},
      {"epochs", {ValueKind::kInt, 1, kInf, false, false}},
      {"weight_decay", {ValueKind::kFloat, 0, kInf, false, false}},
      {"warmup_steps", {ValueKind::kInt, 0, kInf, false, false}},
      {"max_grad_norm", {ValueKind::kFloat, 0, kInf, false, false}},
      {"gradient_checkpointing", {ValueKind::kBool, 0, 1, false, false}},
      {"adam_beta1", {ValueKind::kFloat, 0, 1, true, false}},
      {"adam_beta2", {ValueKind::kFloat, 0, 1, true, false}},
      {"adam_epsilon", {ValueKind::kFloat, 0, kInf, false, true}},
      {"lora_r", {ValueKind::kInt, 1, kInf, false, false}},
      {"lora_alpha", {ValueKind::kFloat, 0, kInf, false, true}},
      {"lora_dropout", {ValueKind::kFloat, 0, 1, true, false}},
  };
  return kParams;
}

bool IsNumber(const v1::ParamValue& v) {
  return v.kind_case() == v1::ParamValue::kDoubleValue ||
         v.kind_case() == v1::ParamValue::kIntValue;
}

double AsNumber(const v1::ParamValue& v) {
  return v.kind_case() == v1::ParamValue::kIntValue ? static_cast<double>(v.int_value())
                                                    : v.double_value();
}

std::string DescribeValue(const v1::ParamValue& v) {
  switch (v.kind_case()) {
    case v1::ParamValue::kDoubleValue:
      return FormatNumber(v.double_value());
    case v1::ParamValue::kIntValue:
      return std::to_string(v.int_value());
    case v1::ParamValue::kStringValue:
      return "'" + v.string_value() + "'";
    case v1::ParamValue::kBoolValue:
      return v.bool_value() ? "true" : "false";
    case v1::ParamValue::KIND_NOT_SET:
      break;
  }
  return "(no value)";
}

bool SameValue(const v1::ParamValue& a, const v1::ParamValue& b) {
  if (IsNumber(a) && IsNumber(b)) return AsNumber(a) == AsNumber(b);
  if (a.kind_case() != b.kind_case()) return false;
  if (a.kind_case() == v1::ParamValue::kStringValue) return a.string_value() == b.string_value();
  if (a.kind_case() == v1::ParamValue::kBoolValue) return a.bool_value() == b.bool_value();
  return false;
}

// 2^53: the largest count of distinct steps, and the largest integer magnitude, that doubles hold
// exactly.
constexpr double kMaxExactInteger = 9007199254740992.0;

void ValidateFloat(const std::string& path, v1::FloatDistribution* d, ValidationContext* ctx) {
  if (!std::isfinite(d->low()) || !std::isfinite(d->high())) {
    ctx->Error(path, "low and high must be finite numbers");
    return;
  }
  if (d->low() >= d->high()) {
    ctx->Error(path + ".low", "low (" + FormatNumber(d->low()) + ") must be below high (" +
                                  FormatNumber(d->high()) +
                                  "): swap them, or use a fixed value in "
                                  "training instead of searching it");
  }
  if (d->log() && d->low() <= 0) {
    ctx->Error(path + ".low", "a log-scale range needs low > 0 (got " + FormatNumber(d->low()) +
                                  "): raise low, e.g. 1e-6, or drop log");
  }
  if (d->has_step()) {
    if (d->log()) {
      ctx->Error(path + ".step", "step and log cannot be combined: drop one");
    } else if (!(d->step() > 0)) {
      ctx->Error(path + ".step", "must be above 0");
    } else if (d->low() < d->high() && !((d->high() - d->low()) / d->step() <= kMaxExactInteger)) {
      // Beyond 2^53 steps the grid's points are no longer distinct doubles (1e-300 made "a grid of
      // 1 point").
      ctx->Error(path + ".step", "is " + FormatNumber(d->step()) +
                                     ": the range would hold more than 2^53 steps; use a larger "
                                     "step, or drop step for a continuous range");
    } else if (d->low() < d->high()) {
      double steps = (d->high() - d->low()) / d->step();
      if (std::abs(steps - std::round(steps)) > 1e-9 * std::max(1.0, steps)) {
        double top = d->low() + std::floor(steps) * d->step();
        ctx->Warning(path + ".step", "high is not on the grid low + k*step; the largest value is " +
                                         FormatNumber(top));
      }
    }
  }
}

void ValidateInt(const std::string& path, v1::IntDistribution* d, ValidationContext* ctx) {
  if (!d->has_step()) d->set_step(1);
  // Samplers draw ints through doubles, and high - low must not overflow: keep both within
  // +-2^53, where every integer is a distinct double (the full int64 range sampled INT64_MIN).
  const double max_exact = kMaxExactInteger;
  if (std::abs(static_cast<double>(d->low())) > max_exact ||
      std::abs(static_cast<double>(d->high())) > max_exact) {
    ctx->Error(path, absl::StrCat("low and high must lie within +-2^53 (9007199254740992); got [",
                                  d->low(), ", ", d->high(), "]"));
    return;
  }
  if (d->low() >= d->high()) {
    ctx->Error(path + ".low",
               absl::StrCat("low (", d->low(), ") must be below high (", d->high(),
                            "): swap them, or use a fixed value in training instead"));
  }
  if (d->log() && d->low() < 1) {
    ctx->Error(path + ".low", absl::StrCat("a log-scale int range needs low >= 1 (got ", d->low(),
                                           "): raise low or drop log"));
  }
  if (d->step() < 1) {
    ctx->Error(path + ".step", "must be at least 1");
  } else if (d->log() && d->step() != 1) {
    ctx->Error(path + ".step", "step and log cannot be combined: drop one");
  } else if (d->low() < d->high() && (d->high() - d->low()) % d->step() != 0) {
    ctx->Warning(path + ".step",
                 absl::StrCat("high is not on the grid low + k*step; the largest value is ",
                              d->low() + (d->high() - d->low()) / d->step() * d->step()));
  }
}

void ValidateCategorical(const std::string& path, v1::CategoricalDistribution* d,
                         ValidationContext* ctx) {
  if (d->choices_size() == 0) {
    ctx->Error(path + ".choices", "must list at least one value, e.g. [8, 16]");
    return;
  }
  const bool numbers = IsNumber(d->choices(0));
  for (int i = 0; i < d->choices_size(); ++i) {
    const v1::ParamValue& c = d->choices(i);
    const std::string field = absl::StrCat(path, ".choices[", i, "]");
    if (c.kind_case() == v1::ParamValue::KIND_NOT_SET) {
      ctx->Error(field, "has no value");
    } else if (IsNumber(c) != numbers || (!numbers && c.kind_case() != d->choices(0).kind_case())) {
      ctx->Error(field, "mixes types: " + DescribeValue(c) + " next to " +
                            DescribeValue(d->choices(0)) +
                            "; all choices must be numbers, or all strings, or all booleans");
    } else if (IsNumber(c) && !std::isfinite(AsNumber(c))) {
      ctx->Error(field, "must be a finite number");
    }
    for (int j = 0; j < i; ++j) {
      if (SameValue(d->choices(j), c)) {
        ctx->Error(field, DescribeValue(c) + " is listed twice: list each choice once");
        break;
      }
    }
  }
}

// Checks a qlora parameter's values against what training accepts.
void CheckKnownRange(const std::string& path, const v1::ParameterSpec& p,
                     const KnownParameter& known, ValidationContext* ctx) {
  std::vector<double> bounds;
  bool kind_ok = true;
  switch (p.distribution_case()) {
    case v1::ParameterSpec::kFloatRange:
      kind_ok = known.kind == ValueKind::kFloat;
      bounds = {p.float_range().low(), p.float_range().high()};
      break;
    case v1::ParameterSpec::kIntRange:
      kind_ok = known.kind != ValueKind::kBool;
      bounds = {static_cast<double>(p.int_range().low()),
                static_cast<double>(p.int_range().high())};
      break;
    case v1::ParameterSpec::kCategorical:
      for (const auto& c : p.categorical().choices()) {
        if (known.kind == ValueKind::kBool) {
          kind_ok = kind_ok && c.kind_case() == v1::ParamValue::kBoolValue;
        } else if (!IsNumber(c) ||
                   (known.kind == ValueKind::kInt && c.kind_case() != v1::ParamValue::kIntValue)) {
          kind_ok = false;
        } else {
          bounds.push_back(AsNumber(c));
        }
      }
      break;
    case v1::ParameterSpec::DISTRIBUTION_NOT_SET:
      return;
  }
  const char* kind_name = known.kind == ValueKind::kFloat ? "numbers"
                          : known.kind == ValueKind::kInt ? "integers (type: int, or int choices)"
                                                          : "booleans (choices: [true, false])";
  if (!kind_ok) {
    ctx->Error(path + ".type", "'" + p.name() + "' takes " + kind_name);
    return;
  }
  for (double value : bounds) {
    bool below = known.min_exclusive ? value <= known.min : value < known.min;
    bool above = known.max_exclusive ? value >= known.max : value > known.max;
    if (below || above) {
      std::string range = std::string(known.min_exclusive ? "(" : "[") + FormatNumber(known.min) +
                          ", " + (std::isinf(known.max) ? "inf" : FormatNumber(known.max)) +
                          (known.max_exclusive || std::isinf(known.max) ? ")" : "]");
      ctx->Error(path, "'" + p.name() + "' must stay in " + range + " but the range reaches " +
                           FormatNumber(value));
      return;
    }
  }
}

bool ValueInDistribution(const v1::ParameterSpec& p, const v1::ParamValue& v, std::string* why) {
  switch (p.distribution_case()) {
    case v1::ParameterSpec::kFloatRange: {
      const auto& d = p.float_range();
      if (!IsNumber(v)) return *why = "expects a number", false;
      double x = AsNumber(v);
      if (x < d.low() || x > d.high()) {
        return *why = "is outside [" + FormatNumber(d.low()) + ", " + FormatNumber(d.high()) + "]",
               false;
      }
      return true;
    }
    case v1::ParameterSpec::kIntRange: {
      const auto& d = p.int_range();
      if (v.kind_case() != v1::ParamValue::kIntValue) return *why = "expects an integer", false;
      if (v.int_value() < d.low() || v.int_value() > d.high()) {
        return *why = absl::StrCat("is outside [", d.low(), ", ", d.high(), "]"), false;
      }
      if (d.step() > 1 && (v.int_value() - d.low()) % d.step() != 0) {
        return *why = absl::StrCat("is not on the grid ", d.low(), " + k*", d.step()), false;
      }
      return true;
    }
    case v1::ParameterSpec::kCategorical:
      for (const auto& c : p.categorical().choices()) {
        if (SameValue(c, v)) return true;
      }
      return *why = "is not one of the choices", false;
    case v1::ParameterSpec::DISTRIBUTION_NOT_SET:
      break;
  }
  return *why = "has no distribution", false;
}

std::vector<std::string> Names(const std::map<std::string, KnownParameter>& params) {
  std::vector<std::string> names;
  for (const auto& [name, unused] : params) names.push_back(name);
  return names;
}

}  // namespace

void ValidateSearchSpace(v1::StudySpec* spec, ValidationContext* ctx) {
  const bool qlora_runner = UsesBuiltInTrainer(*spec);
  std::set<std::string> names;
  for (v1::ParameterSpec& p : *spec->mutable_search_space()) {
    const std::string path = "search_space." + p.name();
    if (!IsIdentifier(p.name())) {
      ctx->Error(path, "'" + p.name() +
                           "' is not a parameter name: use lower-case letters, digits and "
                           "'_' (it becomes --" +
                           p.name() + " and an environment variable)");
      continue;
    }
    if (!names.insert(p.name()).second) {
      ctx->Error(path, "'" + p.name() + "' is defined twice");
      continue;
    }
    switch (p.distribution_case()) {
      case v1::ParameterSpec::kFloatRange:
        ValidateFloat(path, p.mutable_float_range(), ctx);
        break;
      case v1::ParameterSpec::kIntRange:
        ValidateInt(path, p.mutable_int_range(), ctx);
        break;
      case v1::ParameterSpec::kCategorical:
        ValidateCategorical(path, p.mutable_categorical(), ctx);
        break;
      case v1::ParameterSpec::DISTRIBUTION_NOT_SET:
        ctx->Error(path,
                   "needs a distribution: `type: float|int|categorical` with low/high or choices");
        continue;
    }
    if (qlora_runner) {
      const auto& known = QloraParameters();
      auto it = known.find(p.name());
      if (it == known.end()) {
        ctx->Error(path, "the qlora runner has no parameter '" + p.name() + "'" +
                             SuggestAmong(p.name(), Names(known)));
        continue;
      }
      CheckKnownRange(path, p, it->second, ctx);
    }
  }
}

void ValidateEnqueue(v1::StudySpec* spec, ValidationContext* ctx) {
  std::map<std::string, const v1::ParameterSpec*> by_name;
  std::vector<std::string> names;
  for (const v1::ParameterSpec& p : spec->search_space()) {
    by_name[p.name()] = &p;
    names.push_back(p.name());
  }
  for (int i = 0; i < spec->enqueue_size(); ++i) {
    std::set<std::string> seen;
    for (const v1::ParamAssignment& a : spec->enqueue(i).params()) {
      const std::string field = absl::StrCat("enqueue[", i, "].", a.name());
      auto it = by_name.find(a.name());
      if (it == by_name.end()) {
        ctx->Error(field, "'" + a.name() + "' is not in search_space" +
                              (names.empty() ? std::string(": add it there")
                                             : SuggestAmong(a.name(), names)));
        continue;
      }
      if (!seen.insert(a.name()).second) {
        ctx->Error(field, "is given twice in this trial");
        continue;
      }
      std::string why;
      if (!ValueInDistribution(*it->second, a.value(), &why)) {
        ctx->Error(field, DescribeValue(a.value()) + " " + why + " of search_space." + a.name());
      }
    }
  }
  if (spec->budget().n_trials() > 0 && spec->enqueue_size() > spec->budget().n_trials()) {
    ctx->Error("enqueue",
               absl::StrCat(spec->enqueue_size(), " enqueued trials exceed budget.n_trials (",
                            spec->budget().n_trials(), "): raise n_trials or enqueue fewer"));
  }
}

}  // namespace hpsearch::server::internal
