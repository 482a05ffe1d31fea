// Validation of the sampler and pruner options: defaults filled in, ranges checked, options of
// another type refused (so a typo in `type` is never silently ignored), and the combinations that
// cannot work (a grid over a continuous float, ASHA over a searched number of epochs) named with
// their fix.
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/grid_sampler.h"
#include "server/sobol_direction_numbers.h"
#include "server/tpe_sampler.h"
#include "server/validation_context.h"

namespace hpsearch::server::internal {
namespace {

struct Option {
  const char* name;
  const char* owners;   // the types it belongs to, for the message
  const char* example;  // a type that takes it, for the fix
};

// Errors for every option set in `message` that the chosen type does not take.
void RefuseForeignOptions(const google::protobuf::Message& message, const std::string& section,
                          const std::string& type_name, const std::vector<Option>& options,
                          const std::function<bool(const std::string&)>& allowed,
                          ValidationContext* ctx) {
  const auto* reflection = message.GetReflection();
  for (const Option& option : options) {
    const auto* field = message.GetDescriptor()->FindFieldByName(option.name);
    if (allowed(option.name) || !reflection->HasField(message, field)) continue;
    ctx->Error(section + "." + option.name, "is not an option of the " + type_name + " " + section +
                                                " (it belongs to " + option.owners +
                                                "): remove it, or set `" + section +
                                                ": {type: " + option.example + ", ...}`");
  }
}

// The first epoch at which a pruner can stop a qlora trial, to warn when it is past the last one.
int TrainingEpochs(const v1::StudySpec& spec) {
  if (spec.runner().type() == v1::RUNNER_TYPE_COMMAND || spec.runner().type() == v1::RUNNER_TYPE_NONE) {
    return 0;  // the command or the client decides
  }
  for (const v1::ParameterSpec& p : spec.search_space()) {
    if (p.name() == "epochs") return 0;  // varies per trial
  }
  return spec.training().epochs();
}

}  // namespace

void ValidateSampler(v1::StudySpec* spec, ValidationContext* ctx) {
  v1::SamplerSpec* s = spec->mutable_sampler();
  if (s->type() == v1::SAMPLER_TYPE_UNSPECIFIED) s->set_type(v1::SAMPLER_TYPE_RANDOM);
  const bool tpe = s->type() == v1::SAMPLER_TYPE_TPE;
  const bool sobol = s->type() == v1::SAMPLER_TYPE_SOBOL;
  const bool grid = s->type() == v1::SAMPLER_TYPE_GRID;
  const std::string type_name = tpe ? "tpe" : sobol ? "sobol" : grid ? "grid" : "random";
  RefuseForeignOptions(
      *s, "sampler", type_name,
      {{"n_startup_trials", "tpe", "tpe"},
       {"n_ei_candidates", "tpe", "tpe"},
       {"gamma", "tpe", "tpe"},
       {"gamma_max", "tpe", "tpe"},
       {"prior_weight", "tpe", "tpe"},
       {"multivariate", "tpe", "tpe"},
       {"consider_endpoints", "tpe", "tpe"},
       {"constant_liar", "tpe", "tpe"},
       {"startup", "tpe", "tpe"},
       {"bandwidth_floor", "tpe", "tpe"},
       {"late_bandwidth_floor", "tpe", "tpe"},
       {"late_weight_window", "tpe", "tpe"},
       {"scramble", "sobol", "sobol"}},
      [&](const std::string& name) { return name == "scramble" ? sobol : tpe; }, ctx);
  if (tpe) {
    if (!s->has_n_startup_trials()) s->set_n_startup_trials(10);
    if (!s->has_n_ei_candidates()) s->set_n_ei_candidates(24);
    if (!s->has_gamma()) s->set_gamma(0.1);
    if (!s->has_gamma_max()) s->set_gamma_max(25);
    if (!s->has_prior_weight()) s->set_prior_weight(1.0);
    if (!s->has_multivariate()) s->set_multivariate(false);
    if (!s->has_consider_endpoints()) s->set_consider_endpoints(false);
    if (!s->has_constant_liar()) s->set_constant_liar(true);
    if (s->multivariate() && (s->has_bandwidth_floor() || s->has_late_bandwidth_floor())) {
      ctx->Error(
          s->has_bandwidth_floor() ? "sampler.bandwidth_floor" : "sampler.late_bandwidth_floor",
          "applies to univariate TPE only (multivariate kernels take Scott's rule): remove "
          "it, or set multivariate: false");
    }
    FillTpeRunOptions(s, kTpeRunDefaults);  // multivariate: the weight window only
    if (s->late_weight_window() < 1) {
      ctx->Error(
          "sampler.late_weight_window",
          absl::StrCat("must be at least 1, e.g. ", kDefaultLateWeightWindow, " (the default) or ",
                       kOptunaWeightWindow, " (Optuna 3.1's weights throughout)"));
    }
    if (!s->multivariate()) {
      if (!(s->bandwidth_floor() > 0 && s->bandwidth_floor() <= 1)) {
        ctx->Error("sampler.bandwidth_floor",
                   "must be in (0, 1], e.g. 0.6 (the default) or 1.0 (Optuna 3.1's)");
      } else if (!(s->late_bandwidth_floor() > 0 &&
                   s->late_bandwidth_floor() <= s->bandwidth_floor())) {
        ctx->Error("sampler.late_bandwidth_floor",
                   absl::StrCat("must be in (0, bandwidth_floor] = (0, ", s->bandwidth_floor(),
                                "], e.g. 0.3 (the default with bandwidth_floor 0.6) or equal to "
                                "bandwidth_floor (no shrinking)"));
      }
    }
    if (!s->has_startup() || s->startup() == v1::STARTUP_DESIGN_UNSPECIFIED) {
      s->set_startup(v1::STARTUP_DESIGN_LATIN_HYPERCUBE);
    }
    if (s->startup() == v1::STARTUP_DESIGN_SOBOL &&
        spec->search_space_size() > kSobolMaxDimensions) {
      ctx->Error("sampler.startup",
                 absl::StrCat("sobol supports at most ", kSobolMaxDimensions,
                              " parameters and the search space has ", spec->search_space_size(),
                              ": use `startup: latin_hypercube` or `startup: random`"));
    }
    if (s->n_startup_trials() < 0) ctx->Error("sampler.n_startup_trials", "must be 0 or more");
    if (s->n_ei_candidates() < 1) {
      ctx->Error("sampler.n_ei_candidates", "must be at least 1 (Optuna's default is 24)");
    }
    if (!(s->gamma() > 0 && s->gamma() <= 1)) {
      ctx->Error("sampler.gamma",
                 "must be in (0, 1], e.g. 0.1: the share of trials that model "
                 "the good region");
    }
    if (s->gamma_max() < 1) ctx->Error("sampler.gamma_max", "must be at least 1, e.g. 25");
    if (!(s->prior_weight() > 0) || !std::isfinite(s->prior_weight())) {
      ctx->Error("sampler.prior_weight", "must be a number above 0, e.g. 1.0");
    }
    const int n_trials = spec->budget().has_n_trials() ? spec->budget().n_trials() : 10;
    if (s->n_startup_trials() >= n_trials && n_trials > 0) {
      ctx->Warning(
          "sampler.n_startup_trials",
          absl::StrCat("(", s->n_startup_trials(), ") is not below budget.n_trials (", n_trials,
                       "): every trial is a start-up trial and the model is never used; lower it "
                       "or raise n_trials"));
    }
  }
  if (sobol) {
    if (!s->has_scramble()) s->set_scramble(true);
    if (spec->search_space_size() > kSobolMaxDimensions) {
      ctx->Error("search_space", absl::StrCat("has ", spec->search_space_size(),
                                              " parameters; the sobol sampler supports at most ",
                                              kSobolMaxDimensions, ": use tpe or random"));
    }
  }
  if (spec->search_space_size() == 0 && spec->enqueue_size() == 0) {
    ctx->Warning("search_space", "is empty: every trial trains the same fixed configuration");
  }
  if (grid) {
    bool has_grid = true;
    for (const v1::ParameterSpec& p : spec->search_space()) {
      if (p.has_float_range() && !p.float_range().has_step()) {
        has_grid = false;
        ctx->Error(
            "search_space." + p.name() + ".step",
            std::string("the grid sampler needs a step for float parameters: add one, "
                        "e.g. `step: 0.01`, or list the values as `choices`") +
                (p.float_range().log() ? " (a log range: choices such as [1e-5, 1e-4])" : ""));
      }
    }
    if (has_grid && !ctx->has_errors()) {
      absl::StatusOr<uint64_t> points = GridPointCount(*spec);
      if (!points.ok()) {
        ctx->Error("search_space",
                   "spans more than 2^62 grid points: the grid sampler cannot enumerate it; use "
                   "tpe, sobol or random");
      } else if (spec->budget().has_n_trials() &&
                 static_cast<uint64_t>(spec->budget().n_trials()) > *points) {
        ctx->Warning("budget.n_trials",
                     absl::StrCat("the grid has ", *points,
                                  " points; the study ends when they are all tried"));
      }
    }
  }
}

void ValidatePruner(v1::StudySpec* spec, ValidationContext* ctx) {
  v1::PrunerSpec* p = spec->mutable_pruner();
  if (p->type() == v1::PRUNER_TYPE_UNSPECIFIED) p->set_type(v1::PRUNER_TYPE_NONE);
  const bool median = p->type() == v1::PRUNER_TYPE_MEDIAN;
  const bool percentile = p->type() == v1::PRUNER_TYPE_PERCENTILE;
  const bool asha = p->type() == v1::PRUNER_TYPE_ASHA;
  const bool curve = median || percentile;
  const std::string type_name = median       ? "median"
                                : percentile ? "percentile"
                                : asha       ? "asha"
                                             : "none";
  RefuseForeignOptions(
      *p, "pruner", type_name,
      {{"n_startup_trials", "median and percentile", "median"},
       {"n_warmup_epochs", "median and percentile", "median"},
       {"interval_epochs", "median and percentile", "median"},
       {"n_min_trials", "median and percentile", "median"},
       {"percentile", "percentile", "percentile"},
       {"min_resource", "asha", "asha"},
       {"reduction_factor", "asha", "asha"},
       {"min_early_stopping_rate", "asha", "asha"}},
      [&](const std::string& name) {
        if (name == "percentile") return percentile;
        if (name == "min_resource" || name == "reduction_factor" ||
            name == "min_early_stopping_rate") {
          return asha;
        }
        return curve;
      },
      ctx);
  const int epochs = TrainingEpochs(*spec);
  if (curve) {
    if (!p->has_n_startup_trials()) p->set_n_startup_trials(5);
    if (!p->has_n_warmup_epochs()) p->set_n_warmup_epochs(0);
    if (!p->has_interval_epochs()) p->set_interval_epochs(1);
    if (!p->has_n_min_trials()) p->set_n_min_trials(1);
    if (p->n_startup_trials() < 0) ctx->Error("pruner.n_startup_trials", "must be 0 or more");
    if (p->n_warmup_epochs() < 0) ctx->Error("pruner.n_warmup_epochs", "must be 0 or more");
    if (p->interval_epochs() < 1) ctx->Error("pruner.interval_epochs", "must be at least 1");
    if (p->n_min_trials() < 1) ctx->Error("pruner.n_min_trials", "must be at least 1");
    if (epochs > 0 && p->n_warmup_epochs() >= epochs - 1) {
      ctx->Warning("pruner.n_warmup_epochs",
                   absl::StrCat("(", p->n_warmup_epochs(), ") leaves no epoch before the last (",
                                epochs, ") to prune at: lower it"));
    }
  }
  if (percentile) {
    if (!p->has_percentile()) p->set_percentile(25.0);
    if (!(p->percentile() > 0 && p->percentile() < 100)) {
      ctx->Error("pruner.percentile",
                 "must be in (0, 100): the share of trials kept at each epoch, e.g. 25 keeps the "
                 "best quarter (50 is the median pruner)");
    }
  }
  if (asha) {
    if (!p->has_min_resource()) p->set_min_resource(1);
    if (!p->has_reduction_factor()) p->set_reduction_factor(3);
    if (!p->has_min_early_stopping_rate()) p->set_min_early_stopping_rate(0);
    if (p->min_resource() < 1) ctx->Error("pruner.min_resource", "must be at least 1 epoch");
    if (p->reduction_factor() < 2) ctx->Error("pruner.reduction_factor", "must be at least 2");
    if (p->min_early_stopping_rate() < 0) {
      ctx->Error("pruner.min_early_stopping_rate", "must be 0 or more");
    }
    for (const v1::ParameterSpec& param : spec->search_space()) {
      if (param.name() == "epochs") {
        ctx->Error("search_space.epochs",
                   "searching the number of epochs conflicts with the asha pruner, which "
                   "decides how many epochs a trial gets: fix training.epochs (the most a "
                   "trial may train) and remove epochs from search_space, or use the median "
                   "pruner");
      }
    }
    if (epochs > 0 && p->min_resource() >= 1 && p->reduction_factor() >= 2 &&
        p->min_early_stopping_rate() >= 0) {
      double first_rung = p->min_resource();
      for (int i = 0; i < p->min_early_stopping_rate(); ++i) first_rung *= p->reduction_factor();
      if (first_rung >= epochs) {
        ctx->Warning("pruner.min_resource",
                     absl::StrCat("the first rung ends at epoch ", first_rung,
                                  ", not before the last epoch (training.epochs = ", epochs,
                                  "): asha never stops a trial; lower min_resource"));
      }
    }
  }
}

}  // namespace hpsearch::server::internal
