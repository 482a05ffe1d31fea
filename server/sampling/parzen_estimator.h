// ParzenEstimator: the density model of TPE. A weighted mixture with one kernel per observation
// plus one broad prior kernel, over one parameter (univariate TPE) or over several jointly
// (multivariate TPE: each kernel is a product over the parameters, so a draw keeps the
// observation's combination of values).
//
// Kernels, as Optuna 3.1 builds them (the defaults of the TPE sampler):
//  - numbers: a normal truncated to the parameter's range, in log space for log ranges; the range
//    of an int or stepped float is widened by half a step on each side, and a value's density is
//    the kernel mass of its bin (the step around it), so grid values are scored as the discrete
//    values they are. Bandwidths: univariate, the larger gap to the neighbouring observations
//    (the prior's centre counts as one); multivariate, Scott's-rule-like 0.2 * n^(-1/(d+4)) of the
//    range; both clipped to [range / min(100, n + 2), range] (univariate: the lower end scaled by
//    the bandwidth_floor option, see below). The prior kernel sits at the centre with a bandwidth
//    of the whole range.
//  - categoricals: each observation puts weight 1 on its choice plus prior_weight / (n + 1) on
//    every choice; the prior kernel is uniform.
//  - weights: the caller's per-observation weights, then prior_weight for the prior kernel, all
//    normalised.
// Optuna 3.1 computes each continuous kernel's density without its 1/sigma (optuna/optuna#5109,
// changed there in late 2023), so its l(x) and g(x) are mixtures whose kernels weigh in
// proportion to their bandwidths. Here every density is normalised, and that weighting is an
// explicit option (bandwidth_weighted) that the TPE sampler turns on: it measured better (see
// tpe_sampler.h), and with it the scores are Optuna 3.1's up to a constant per estimator.
// Deviation, on purpose: an int with log: true is scored by the mass of its bin [k - 1/2, k + 1/2]
// in log space, like every other discrete value (Optuna 3.1 takes the density at log k, ignoring
// that small integers own much wider bins in log space than large ones; optuna/optuna#6258 made
// the same change there).
//
// Values go in and come out in the samplers' internal form (distributions.h): numbers as they are,
// rounded onto their grid; categoricals as choice indices.
//
// Thread-safety: immutable after construction; const methods are safe from any thread.
#pragma once

#include <vector>

#include "server/sampling/distributions.h"
#include "server/sampling/sampling_rng.h"

namespace hpsearch::server {

struct ParzenEstimatorOptions {
  // Weight of the prior kernel against observations weighing 1 each (Optuna's default 1.0).
  // Larger explores more.
  double prior_weight = 1.0;
  // Univariate bandwidths: let the outermost observations' bandwidth reach to the range's ends
  // (Optuna's consider_endpoints; default off: they use the gap to their inner neighbour).
  bool consider_endpoints = false;
  // Joint kernels with Scott's-rule bandwidths instead of per-parameter gap bandwidths.
  bool multivariate = false;
  // LogPdf weighs each kernel by its bandwidth in every continuous dimension (the weights then
  // normalised again); Sample keeps the plain weights. This is what Optuna 3.1's scores amount to
  // (see the deviations below and tpe_sampler.h).
  bool bandwidth_weighted = false;
  // Univariate bandwidths are at least max(range / 100, bandwidth_floor * range / (n + 2)) for n
  // observations (Optuna's "magic clip" is 1.0). Below 1, kernels of few observations may be
  // narrower than Optuna's, so l(x) can concentrate sooner (the TPE sampler lowers it late in a
  // search: BandwidthFloorAt in tpe_sampler.h). Multivariate estimators keep 1.0.
  // REQUIRES: 0 < bandwidth_floor <= 1.
  double bandwidth_floor = 1.0;
};

// The indices of `values` in ascending order of value, equal values in index order: what sorting
// (value, index) pairs gives (-0.0 and 0.0 are equal), faster for large inputs.
// REQUIRES: no NaN.
std::vector<int> OrderByValue(const std::vector<double>& values);

class ParzenEstimator {
 public:
  // `columns[j]` holds the n observations of dimension j (internal form), `weights` one
  // non-negative weight per observation (all zero is allowed only when n == 0).
  // REQUIRES: columns.size() == dims.size() >= 1, every column and weights of the same size n,
  //           numbers inside their distribution's bounds, choice indices in range;
  //           dims.size() == 1 unless options.multivariate.
  ParzenEstimator(std::vector<Distribution> dims, const std::vector<std::vector<double>>& columns,
                  const std::vector<double>& weights, const ParzenEstimatorOptions& options);

  // `count` draws from the mixture, as columns (internal form, on the grid of discrete values).
  std::vector<std::vector<double>> Sample(int count, SamplingRng* rng) const;

  // The log density (log mass for discrete values) of each point of `columns`.
  // REQUIRES: columns as Sample returns them.
  std::vector<double> LogPdf(const std::vector<std::vector<double>>& columns) const;

 private:
  // One dimension's kernels, in the estimator's space (log applied).
  struct Dim {
    Distribution dist;
    bool binned = false;       // density = kernel mass of the value's bin
    double low = 0, high = 0;  // support of the kernels
    double half_bin = 0;       // binned numbers in linear space: half a step
    // numbers, per kernel:
    std::vector<double> mu, sigma, inv_sigma;
    std::vector<double> log_norm;  // -log(truncation mass) [- log(sigma sqrt(2 pi)) if not binned]
    std::vector<double> mass;      // truncation mass, NaN where the range cuts off nothing
    std::vector<double> log_sigma_sqrt2pi;  // binned: for the cheap bound on a bin's mass
    // Binned, multivariate: kernels share one bandwidth and sit on grid points, so a bin's mass
    // depends on the kernel's grid point alone and is computed once per point (-1: the prior,
    // computed on its own). Empty when it does not apply.
    std::vector<int> grid_point;
    int grid_size = 0;
    // ... and on a linear grid (not a log int) the bins are translates of each other, so the mass
    // depends only on the distance in grid steps between the value and the kernel: one memo
    // entry per distance serves every point of a LogPdf call.
    bool shift_invariant = false;
    // categoricals, per kernel: the observed choice, or -1 for the prior kernel.
    std::vector<int> choice;
    double log_hit = 0, log_miss = 0, log_uniform = 0;
  };

  double ToModel(const Dim& dim, double x) const;
  double FromModel(const Dim& dim, double y) const;
  // Bandwidths and normalisers of a numeric dimension whose centres are in dim->mu (the prior's
  // last). Univariate, it also sorts the kernels by centre and merges equal ones, reordering
  // *weights (linear, normalised) to match.
  void FitNumbers(Dim* dim, int n_dims, std::vector<double>* weights) const;
  // The bin of value x of a binned dimension, in the estimator's space, clipped to the support.
  void BinEdges(const Dim& dim, double x, double* lo, double* hi) const;
  // The log density of point s of `columns`; the vectors are scratch space of n_kernels each;
  // shift_memo[j] holds dimension j's masses by grid distance (shift_invariant dims), shared by
  // the points of one LogPdf call.
  double LogPdfOne(const std::vector<std::vector<double>>& columns, int s,
                   std::vector<double>* exact, std::vector<double>* bound, std::vector<int>* kept,
                   std::vector<double>* memo_scratch,
                   std::vector<std::vector<double>>* shift_memo) const;

  ParzenEstimatorOptions options_;
  std::vector<Dim> dims_;
  std::vector<double> weights_;  // per kernel, normalised
  double log_max_weight_ = 0;
  std::vector<double> cumulative_weights_;  // for drawing a kernel
  std::vector<double> categorical_pmf_;     // univariate categorical: the mixture's pmf
};

}  // namespace hpsearch::server
