// TpeSampler: the Tree-structured Parzen Estimator (Bergstra et al. 2011), with Optuna 3.1's
// defaults (sampler options in study.proto / docs/study-file.md).
//
// One proposal:
//  1. Observations: COMPLETE trials rank by their objective; PRUNED ones after them, those that
//     got further first, each by its last reported value; with constant_liar, RUNNING and WAITING
//     trials rank last (the "lie": whatever they are evaluating counts as bad). FAILED trials do
//     not count.
//  2. While fewer than n_startup_trials trials are COMPLETE or PRUNED, the proposal is a point of
//     the start-up design (option `startup`).
//  3. Otherwise the best min(ceil(gamma * n), gamma_max) finished trials form the "good" group,
//     everything else the "bad" one; each gets a ParzenEstimator (per parameter, or one joint
//     estimator when multivariate), weighted by Optuna's ramp (old observations weigh less once a
//     group holds more than a window of 25; 10 from 30 finished trials on, see below).
//     n_ei_candidates draws from the good density l are scored by
//     log l(x) - log g(x), which orders them as expected improvement does; the best one wins.
//
// Where it departs from Optuna 3.1, each on purpose (docs/performance.md has the measurements):
//  - Start-up points form a Latin hypercube by default (startup: latin_hypercube) instead of
//    independent draws (startup: random, Optuna's): trials 0..n-1 (n = n_startup_trials) put
//    exactly one value in each of the n equal slices of every parameter, in an independent random
//    order per parameter, each value uniform within its slice. Every point is still uniformly
//    random, and parameters stay independent of each other, but each parameter's range is covered
//    evenly, which is what the first univariate models (one per parameter) see. Trials n..2n-1
//    form the next block (start-up runs on while trials fail), and so on. A scrambled Sobol
//    sequence (startup: sobol, the default before) stratifies only 2^m points and, through its
//    digital structure, pairs trial 2i with 2i+1 on opposite halves of every parameter. On 400
//    development seeds (not the benchmark's) the Latin hypercube beat Sobol and random start-up
//    by a small margin; docs/performance.md has the figures.
//  - Scores weigh each continuous kernel by its bandwidth (ParzenEstimatorOptions::
//    bandwidth_weighted): Optuna 3.1 does so by leaving 1/sigma out of its densities. Kernels are
//    as wide as the gaps around them, so this weighs observations by the inverse of how densely
//    the search sampled there: g(x) then measures where bad results are, not where the search has
//    been (it samples densely around good points, and many of those are mediocre). The
//    "corrected" normalised mixtures were worse on 6 of 9 test functions.
//  - constant_liar defaults to true: hpsearch always runs with parallel workers, and a lie costs
//    nothing when parallelism is 1. With it off, running and waiting trials are invisible to the
//    sampler, as in Optuna.
//  - No repeats: a proposal never repeats the full configuration of a trial the sampler sees
//    (finished or failed ones; running and waiting ones under constant liar). When the best
//    candidates all repeat one, the next best combination of per-parameter candidates is taken,
//    then fresh random draws; only a space with nothing new left repeats. In continuous spaces
//    this never triggers; in discrete ones Optuna re-evaluates points it already knows and, in
//    parallel, hands the same point to several workers even with its constant liar.
//  - Log-scaled ints are scored by bin mass (see parzen_estimator.h).
//  - Univariate kernels may be narrower: their bandwidth floor is max(range / 100, 0.6 * range /
//    (n + 2)) for a group of n, against Optuna's range / min(100, n + 2) (option bandwidth_floor,
//    kDefaultBandwidthFloor; 1.0 gives Optuna's). Optuna's floor keeps the good group's kernels
//    at least range / 3 or range / 4 wide up to 20 finished trials and range / 12 at 100, so l(x)
//    stays broad after the group has agreed on a region. On 400 development seeds (not the
//    benchmark's) 0.6 ended lower than 1.0 on all 9 test functions after 50 trials and on 6 of 9
//    after 100 (the multimodal Rastrigin and Hartmann-6 gain from the broader kernels by then);
//    docs/performance.md has the figures. After 50 finished trials the factor shrinks as 50 / N,
//    to 0.3 at 100 (option late_bandwidth_floor): late in a search narrower kernels refine the
//    region the good trials agree on (on 400 development seeds, ours with the shrinking ended
//    lower than without it after 100 trials on 6 of 9 functions, and level on a seventh).
//  - From 30 finished trials on, each group's observations beyond its newest 10 ramp down
//    (option late_weight_window, kDefaultLateWeightWindow), where Optuna keeps the newest 25 at
//    full weight throughout. Until 100 trials only the bad group is that large: g(x) then follows
//    the bad results near where the search is now, and no longer marks the regions of the
//    start-up and early trials as bad for long. On 800 development seeds (not the benchmark's)
//    it ended lower than Optuna's window after 100 trials with probability 0.52: ahead on 7 of
//    the 9 test functions and level on the other two (docs/performance.md).
//
// Determinism: the proposal is a function of the request alone (spec, seed, fixed values,
// history); each parameter draws from its own stream keyed by its name.
// Thread-safety: stateless; Sample may run concurrently.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "server/sampling/option_report.h"
#include "server/sampling/sampler.h"

namespace hpsearch::server {

// The defaults of sampler options bandwidth_floor and late_bandwidth_floor.
inline constexpr double kDefaultBandwidthFloor = 0.6;
inline constexpr double kDefaultLateBandwidthFloor = 0.3;
// After this many finished trials the floor's factor shrinks as kFloorShrinkFrom / N, down to
// late_bandwidth_floor.
inline constexpr int kFloorShrinkFrom = 50;
// Observation weights: a group's newest kOptunaWeightWindow observations weigh 1 (Optuna's
// default_weights); from kWindowShrinkFrom finished trials on, the newest late_weight_window.
inline constexpr int kOptunaWeightWindow = 25;
inline constexpr int kDefaultLateWeightWindow = 10;
inline constexpr int kWindowShrinkFrom = 30;

// The factor of the univariate bandwidth floor for a history of `n_finished` finished trials:
// `floor` up to kFloorShrinkFrom, then floor * kFloorShrinkFrom / n_finished, never below `late`.
double BandwidthFloorAt(double floor, double late, int n_finished);

// The options a stored TPE spec runs with when it does not name them (see FillTpeRunOptions).
struct TpeRunOptions {
  double bandwidth_floor;
  double late_bandwidth_floor;
  int late_weight_window;
};
// What a submission gets today.
inline constexpr TpeRunOptions kTpeRunDefaults = {
    kDefaultBandwidthFloor, kDefaultLateBandwidthFloor, kDefaultLateWeightWindow};
// What a spec stored before these options existed ran with: Optuna's clip and weights.
inline constexpr TpeRunOptions kTpeRunBeforeOptions = {1.0, 1.0, kOptunaWeightWindow};

// When `sampler` is TPE, sets the options it lacks from `fill`: late_weight_window; and when
// univariate, bandwidth_floor, and late_bandwidth_floor to fill's when bandwidth_floor was unset
// too, else to the spec's bandwidth_floor (a floor chosen alone stays the floor throughout). The
// validator fills kTpeRunDefaults, the coordinator stores unvalidated specs with them, and a
// restart gives specs stored before an option existed what they ran with (kTpeRunBeforeOptions;
// no shrinking before late_bandwidth_floor existed).
void FillTpeRunOptions(v1::SamplerSpec* sampler, const TpeRunOptions& fill);

// TPE's row of the sampler table (sampler_kinds.h; tpe_options.cc): its SamplerSpec options, its
// defaults-and-checks, and FillTpeRunOptions with kTpeRunDefaults (`stored` false) or
// kTpeRunBeforeOptions (`stored` true).
std::vector<std::string> TpeOptionNames();
void NormalizeTpeOptions(v1::StudySpec* spec, OptionReport* report);
void FillTpeRunOptionsFor(v1::SamplerSpec* sampler, bool stored);

class TpeSampler : public Sampler {
 public:
  absl::StatusOr<std::vector<v1::ParamAssignment>> Sample(const SampleRequest& request) override;
};

// Observation weights for a group of n, oldest first: the newest `window` weigh 1 each; the
// oldest n - window ramp up linearly from 1/n, so the model follows the search as it moves.
// Optuna's default_weights is window 25. REQUIRES: window >= 1.
std::vector<double> TpeObservationWeights(int n, int window = kOptunaWeightWindow);

// The Latin hypercube start-up coordinate in [0, 1) of one parameter for trial `trial_number`:
// block trial_number / strata permutes the `strata` slices (strata clamped to [1, 1024]) by a
// generator keyed by study_seed, the parameter's name and the block; the value is uniform inside
// its slice, drawn from sampling_seed (the trial's SampleRequest::seed).
double LatinHypercubeCoordinate(int strata, uint64_t trial_number, uint64_t study_seed,
                                uint64_t sampling_seed, const std::string& name);

}  // namespace hpsearch::server
