// TPE's defaults and option checks: its row of the sampler table (sampler_kinds.h).
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/sampling/sobol_direction_numbers.h"
#include "server/sampling/tpe_sampler.h"

namespace hpsearch::server {

std::vector<std::string> TpeOptionNames() {
  return {"n_startup_trials",   "n_ei_candidates",      "gamma",
          "gamma_max",          "prior_weight",         "multivariate",
          "consider_endpoints", "constant_liar",        "startup",
          "bandwidth_floor",    "late_bandwidth_floor", "late_weight_window"};
}

void FillTpeRunOptionsFor(v1::SamplerSpec* sampler, bool stored) {
  FillTpeRunOptions(sampler, stored ? kTpeRunBeforeOptions : kTpeRunDefaults);
}

void NormalizeTpeOptions(v1::StudySpec* spec, OptionReport* report) {
  v1::SamplerSpec* s = spec->mutable_sampler();
  // Optuna 3.1's defaults, but for constant_liar (on: workers run trials in parallel).
  if (!s->has_n_startup_trials()) s->set_n_startup_trials(10);
  if (!s->has_n_ei_candidates()) s->set_n_ei_candidates(24);
  if (!s->has_gamma()) s->set_gamma(0.1);
  if (!s->has_gamma_max()) s->set_gamma_max(25);
  if (!s->has_prior_weight()) s->set_prior_weight(1.0);
  if (!s->has_multivariate()) s->set_multivariate(false);
  if (!s->has_consider_endpoints()) s->set_consider_endpoints(false);
  if (!s->has_constant_liar()) s->set_constant_liar(true);
  if (s->multivariate() && (s->has_bandwidth_floor() || s->has_late_bandwidth_floor())) {
    report->Error(
        s->has_bandwidth_floor() ? "sampler.bandwidth_floor" : "sampler.late_bandwidth_floor",
        "applies to univariate TPE only (multivariate kernels take Scott's rule): remove "
        "it, or set multivariate: false");
  }
  FillTpeRunOptions(s, kTpeRunDefaults);  // multivariate: the weight window only
  if (s->late_weight_window() < 1) {
    report->Error(
        "sampler.late_weight_window",
        absl::StrCat("must be at least 1, e.g. ", kDefaultLateWeightWindow, " (the default) or ",
                     kOptunaWeightWindow, " (Optuna 3.1's weights throughout)"));
  }
  if (!s->multivariate()) {
    if (!(s->bandwidth_floor() > 0 && s->bandwidth_floor() <= 1)) {
      report->Error("sampler.bandwidth_floor",
                    "must be in (0, 1], e.g. 0.6 (the default) or 1.0 (Optuna 3.1's)");
    } else if (!(s->late_bandwidth_floor() > 0 &&
                 s->late_bandwidth_floor() <= s->bandwidth_floor())) {
      report->Error("sampler.late_bandwidth_floor",
                    absl::StrCat("must be in (0, bandwidth_floor] = (0, ", s->bandwidth_floor(),
                                 "], e.g. 0.3 (the default with bandwidth_floor 0.6) or equal to "
                                 "bandwidth_floor (no shrinking)"));
    }
  }
  if (!s->has_startup() || s->startup() == v1::STARTUP_DESIGN_UNSPECIFIED) {
    s->set_startup(v1::STARTUP_DESIGN_LATIN_HYPERCUBE);
  }
  if (s->startup() == v1::STARTUP_DESIGN_SOBOL && spec->search_space_size() > kSobolMaxDimensions) {
    report->Error("sampler.startup",
                  absl::StrCat("sobol supports at most ", kSobolMaxDimensions,
                               " parameters and the search space has ", spec->search_space_size(),
                               ": use `startup: latin_hypercube` or `startup: random`"));
  }
  if (s->n_startup_trials() < 0) report->Error("sampler.n_startup_trials", "must be 0 or more");
  if (s->n_ei_candidates() < 1) {
    report->Error("sampler.n_ei_candidates", "must be at least 1 (Optuna's default is 24)");
  }
  if (!(s->gamma() > 0 && s->gamma() <= 1)) {
    report->Error("sampler.gamma",
                  "must be in (0, 1], e.g. 0.1: the share of trials that model the good region");
  }
  if (s->gamma_max() < 1) report->Error("sampler.gamma_max", "must be at least 1, e.g. 25");
  if (!(s->prior_weight() > 0) || !std::isfinite(s->prior_weight())) {
    report->Error("sampler.prior_weight", "must be a number above 0, e.g. 1.0");
  }
  const int n_trials = spec->budget().has_n_trials() ? spec->budget().n_trials() : 10;
  if (s->n_startup_trials() >= n_trials && n_trials > 0) {
    report->Warning(
        "sampler.n_startup_trials",
        absl::StrCat("(", s->n_startup_trials(), ") is not below budget.n_trials (", n_trials,
                     "): every trial is a start-up trial and the model is never used; lower it "
                     "or raise n_trials"));
  }
}

}  // namespace hpsearch::server
