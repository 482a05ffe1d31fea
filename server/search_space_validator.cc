// Validation of the search space and of what reads it: sampler, pruner and enqueued trials.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/validation_context.h"

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

// Number of points a grid sampler enumerates for one parameter, or 0 when it cannot.
double GridPoints(const v1::ParameterSpec& p) {
  switch (p.distribution_case()) {
    case v1::ParameterSpec::kFloatRange:
      if (!p.float_range().has_step() || !(p.float_range().step() > 0)) return 0;
      return std::floor((p.float_range().high() - p.float_range().low()) / p.float_range().step() +
                        1e-9) +
             1;
    case v1::ParameterSpec::kIntRange:
      if (p.int_range().step() < 1) return 0;
      return static_cast<double>(
          (p.int_range().high() - p.int_range().low()) / p.int_range().step() + 1);
    case v1::ParameterSpec::kCategorical:
      return p.categorical().choices_size();
    case v1::ParameterSpec::DISTRIBUTION_NOT_SET:
      break;
  }
  return 0;
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
  const bool qlora_runner = spec->runner().type() != v1::RUNNER_TYPE_COMMAND;
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

void ValidateSampler(v1::StudySpec* spec, ValidationContext* ctx) {
  v1::SamplerSpec* s = spec->mutable_sampler();
  if (s->type() == v1::SAMPLER_TYPE_UNSPECIFIED) s->set_type(v1::SAMPLER_TYPE_RANDOM);
  const bool tpe = s->type() == v1::SAMPLER_TYPE_TPE;
  const bool sobol = s->type() == v1::SAMPLER_TYPE_SOBOL;
  const std::string type_name = s->type() == v1::SAMPLER_TYPE_RANDOM ? "random"
                                : tpe                                ? "tpe"
                                : sobol                              ? "sobol"
                                                                     : "grid";
  // Options that belong to another sampler type are errors, so a typo in `type` is not silently
  // ignored.
  const auto* reflection = s->GetReflection();
  for (const char* option :
       {"n_startup_trials", "n_ei_candidates", "gamma", "gamma_max", "prior_weight", "multivariate",
        "consider_endpoints", "constant_liar", "scramble"}) {
    const auto* field = s->GetDescriptor()->FindFieldByName(option);
    bool allowed = std::string(option) == "scramble" ? sobol : tpe;
    if (!allowed && reflection->HasField(*s, field)) {
      ctx->Error(std::string("sampler.") + option,
                 "is not an option of the " + type_name + " sampler" +
                     (std::string(option) == "scramble" ? " (it belongs to sobol)"
                                                        : " (it belongs to tpe)"));
    }
  }
  if (tpe) {
    if (!s->has_n_startup_trials()) s->set_n_startup_trials(10);
    if (!s->has_n_ei_candidates()) s->set_n_ei_candidates(24);
    if (!s->has_gamma()) s->set_gamma(0.1);
    if (!s->has_gamma_max()) s->set_gamma_max(25);
    if (!s->has_prior_weight()) s->set_prior_weight(1.0);
    if (!s->has_multivariate()) s->set_multivariate(false);
    if (!s->has_consider_endpoints()) s->set_consider_endpoints(false);
    if (!s->has_constant_liar()) s->set_constant_liar(true);
    if (s->n_startup_trials() < 0) ctx->Error("sampler.n_startup_trials", "must be 0 or more");
    if (s->n_ei_candidates() < 1) ctx->Error("sampler.n_ei_candidates", "must be at least 1");
    if (!(s->gamma() > 0 && s->gamma() <= 1))
      ctx->Error("sampler.gamma", "must be in (0, 1], e.g. 0.1");
    if (s->gamma_max() < 1) ctx->Error("sampler.gamma_max", "must be at least 1");
    if (!(s->prior_weight() > 0)) ctx->Error("sampler.prior_weight", "must be above 0");
  }
  if (sobol && !s->has_scramble()) s->set_scramble(true);
  if (spec->search_space_size() == 0 && spec->enqueue_size() == 0) {
    ctx->Warning("search_space", "is empty: every trial trains the same fixed configuration");
  }
  if (s->type() == v1::SAMPLER_TYPE_GRID) {
    double points = 1;
    for (const v1::ParameterSpec& p : spec->search_space()) {
      if (p.has_float_range() && !p.float_range().has_step()) {
        ctx->Error("search_space." + p.name() + ".step",
                   "the grid sampler needs a step for float parameters (or use choices)");
        points = 0;
      }
      points *= GridPoints(p);
    }
    if (points > 0 && spec->budget().has_n_trials() && spec->budget().n_trials() > points) {
      ctx->Warning("budget.n_trials",
                   absl::StrCat("the grid has ", FormatNumber(points),
                                " points; the study ends when they are all tried"));
    }
  }
}

void ValidatePruner(v1::StudySpec* spec, ValidationContext* ctx) {
  v1::PrunerSpec* p = spec->mutable_pruner();
  if (p->type() == v1::PRUNER_TYPE_UNSPECIFIED) p->set_type(v1::PRUNER_TYPE_NONE);
  const bool curve = p->type() == v1::PRUNER_TYPE_MEDIAN || p->type() == v1::PRUNER_TYPE_PERCENTILE;
  const bool asha = p->type() == v1::PRUNER_TYPE_ASHA;
  const std::string type_name = p->type() == v1::PRUNER_TYPE_NONE     ? "none"
                                : p->type() == v1::PRUNER_TYPE_MEDIAN ? "median"
                                : asha                                ? "asha"
                                                                      : "percentile";
  const auto* reflection = p->GetReflection();
  for (const char* option :
       {"n_startup_trials", "n_warmup_epochs", "interval_epochs", "n_min_trials", "percentile",
        "min_resource", "reduction_factor", "min_early_stopping_rate"}) {
    const std::string name = option;
    bool allowed = name == "percentile" ? p->type() == v1::PRUNER_TYPE_PERCENTILE
                   : (name == "min_resource" || name == "reduction_factor" ||
                      name == "min_early_stopping_rate")
                       ? asha
                       : curve;
    if (!allowed && reflection->HasField(*p, p->GetDescriptor()->FindFieldByName(option))) {
      ctx->Error("pruner." + name, "is not an option of the " + type_name + " pruner");
    }
  }
  if (curve) {
    if (!p->has_n_startup_trials()) p->set_n_startup_trials(5);
    if (!p->has_n_warmup_epochs()) p->set_n_warmup_epochs(0);
    if (!p->has_interval_epochs()) p->set_interval_epochs(1);
    if (!p->has_n_min_trials()) p->set_n_min_trials(1);
    if (p->n_startup_trials() < 0) ctx->Error("pruner.n_startup_trials", "must be 0 or more");
    if (p->n_warmup_epochs() < 0) ctx->Error("pruner.n_warmup_epochs", "must be 0 or more");
    if (p->interval_epochs() < 1) ctx->Error("pruner.interval_epochs", "must be at least 1");
    if (p->n_min_trials() < 1) ctx->Error("pruner.n_min_trials", "must be at least 1");
  }
  if (p->type() == v1::PRUNER_TYPE_PERCENTILE) {
    if (!p->has_percentile()) p->set_percentile(25.0);
    if (!(p->percentile() > 0 && p->percentile() < 100)) {
      ctx->Error("pruner.percentile", "must be in (0, 100), e.g. 25 keeps the top three quarters");
    }
  }
  if (asha) {
    if (!p->has_min_resource()) p->set_min_resource(1);
    if (!p->has_reduction_factor()) p->set_reduction_factor(3);
    if (!p->has_min_early_stopping_rate()) p->set_min_early_stopping_rate(0);
    if (p->min_resource() < 1) ctx->Error("pruner.min_resource", "must be at least 1 epoch");
    if (p->reduction_factor() < 2) ctx->Error("pruner.reduction_factor", "must be at least 2");
    if (p->min_early_stopping_rate() < 0)
      ctx->Error("pruner.min_early_stopping_rate", "must be 0 or more");
    for (const v1::ParameterSpec& param : spec->search_space()) {
      if (param.name() == "epochs") {
        ctx->Error("search_space.epochs",
                   "searching the number of epochs conflicts with the asha pruner, "
                   "which decides how many epochs a trial gets: fix "
                   "training.epochs or use another pruner");
      }
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
