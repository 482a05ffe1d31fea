#include "server/sampling/parzen_estimator.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <optional>
#include <utility>

#include "server/sampling/truncated_normal.h"

namespace hpsearch::server {
namespace {

constexpr double kLogSqrt2Pi = 0.91893853320467274178;
constexpr double kNegInf = -std::numeric_limits<double>::infinity();
// Beyond this many bandwidths a normal's tail holds under 1e-17: a kernel that far from both ends
// of the range is untruncated to double precision, and its truncation mass needs no erfc.
constexpr double kUntruncated = 8.5;
// Kernels whose log contribution lies this far below the largest add less than e^-50 (1e-22)
// each: left out of a sum, they change nothing a double can hold.
constexpr double kNegligible = 50.0;
// Grids up to this many points get their bin masses memoised per grid point (multivariate).
constexpr uint64_t kMaxMemoGrid = 1 << 16;

// log(sum(w * exp(v))) over the kernels that can matter: w <= exp(log_max_w), so a term whose v
// lies more than kNegligible + log(max_w / w_top) below the top term's is negligible.
double WeightedLogSumExp(const double* v, const double* w, const int* index, int n,
                         double log_max_w) {
  int top = -1;
  for (int k = 0; k < n; ++k) {
    if (top < 0 || v[k] > v[top]) top = k;
  }
  if (top < 0 || v[top] == kNegInf) return kNegInf;
  const double max = v[top];
  const double floor = max + std::log(w[index ? index[top] : top]) - log_max_w - kNegligible;
  double sum = 0;
  for (int k = 0; k < n; ++k) {
    if (v[k] > floor) sum += w[index ? index[k] : k] * std::exp(v[k] - max);
  }
  return max + std::log(sum);
}

// From this many values OrderByValue's radix sort beats sorting pairs. Measured in the sampler's
// asks: the two were level at 300-500 observations, and at 1,000 the radix sort saved a quarter of
// the ask.
constexpr int kRadixSortFrom = 512;

}  // namespace

// Large inputs take a stable LSD radix sort on the values' bits, a byte per pass: sorting the
// centres was the largest cost of fitting a group of 1,000 observations. Smaller inputs sort
// (value, index) pairs.
std::vector<int> OrderByValue(const std::vector<double>& values) {
  const int n = static_cast<int>(values.size());
  std::vector<int> order(n);
  if (n < kRadixSortFrom) {
    std::vector<std::pair<double, int>> pairs(n);
    for (int i = 0; i < n; ++i) pairs[i] = {values[i], i};
    std::sort(pairs.begin(), pairs.end());
    for (int k = 0; k < n; ++k) order[k] = pairs[k].second;
    return order;
  }
  std::iota(order.begin(), order.end(), 0);
  // Map each double to an unsigned key of the same order (-0.0 first made +0.0, equal to it).
  std::vector<uint64_t> keys(n);
  for (int i = 0; i < n; ++i) {
    const double v = values[i] + 0.0;
    uint64_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    keys[i] = (bits >> 63) ? ~bits : bits | (uint64_t{1} << 63);
  }
  std::vector<int> next(n);
  for (int shift = 0; shift < 64; shift += 8) {
    int start[257] = {0};
    for (int i : order) ++start[((keys[i] >> shift) & 0xFF) + 1];
    if (*std::max_element(start + 1, start + 257) == n) continue;  // one digit: nothing moves
    for (int d = 0; d < 256; ++d) start[d + 1] += start[d];
    for (int i : order) next[start[(keys[i] >> shift) & 0xFF]++] = i;
    order.swap(next);
  }
  return order;
}

ParzenEstimator::ParzenEstimator(std::vector<Distribution> dists,
                                 const std::vector<std::vector<double>>& columns,
                                 const std::vector<double>& weights,
                                 const ParzenEstimatorOptions& options)
    : options_(options) {
  const int n = static_cast<int>(weights.size());
  const int n_dims = static_cast<int>(dists.size());
  // Kernel weights: the observations', then the prior's; normalised.
  std::vector<double> w(weights);
  w.push_back(options.prior_weight);
  const double total = std::accumulate(w.begin(), w.end(), 0.0);
  for (double& x : w) x /= total;

  dims_.resize(n_dims);
  for (int j = 0; j < n_dims; ++j) {
    Dim& dim = dims_[j];
    dim.dist = dists[j];
    const Distribution& d = dim.dist;
    if (d.kind == Distribution::Kind::kCategorical) {
      // Each observation's row: prior_weight / (n + 1) everywhere, + 1 on its choice, normalised.
      const double spread = options.prior_weight / (n + 1);
      const double row_total = spread * d.n_choices + 1;
      dim.log_hit = std::log((spread + 1) / row_total);
      dim.log_miss = std::log(spread / row_total);
      dim.log_uniform = -std::log(static_cast<double>(d.n_choices));
      dim.choice.resize(n + 1);
      for (int i = 0; i < n; ++i) dim.choice[i] = static_cast<int>(std::lround(columns[j][i]));
      dim.choice[n] = -1;
      continue;
    }
    dim.binned = d.discrete();
    if (d.kind == Distribution::Kind::kInt && d.log) {
      dim.low = std::log(d.low - 0.5);
      dim.high = std::log(d.high + 0.5);
    } else if (d.discrete()) {
      dim.half_bin = 0.5 * d.step;
      dim.low = d.low - dim.half_bin;
      dim.high = d.high + dim.half_bin;
    } else if (d.log) {
      dim.low = std::log(d.low);
      dim.high = std::log(d.high);
    } else {
      dim.low = d.low;
      dim.high = d.high;
    }
    if (!(dim.high > dim.low))
      dim.high = dim.low + 1;  // a single value: one bin every kernel covers
    dim.mu.resize(n + 1);
    for (int i = 0; i < n; ++i) dim.mu[i] = ToModel(dim, columns[j][i]);
    dim.mu[n] = 0.5 * (dim.low + dim.high);  // the prior kernel
  }

  if (n_dims == 1 && dims_[0].dist.kind == Distribution::Kind::kCategorical) {
    // One categorical: the mixture is a pmf.
    const Dim& dim = dims_[0];
    const double hit = std::exp(dim.log_hit), miss = std::exp(dim.log_miss);
    categorical_pmf_.assign(dim.dist.n_choices, (1 - w[n]) * miss + w[n] / dim.dist.n_choices);
    for (int i = 0; i < n; ++i) categorical_pmf_[dim.choice[i]] += w[i] * (hit - miss);
    return;
  }
  for (Dim& dim : dims_) {
    if (dim.dist.kind != Distribution::Kind::kCategorical) FitNumbers(&dim, n_dims, &w);
  }
  cumulative_weights_.resize(w.size());
  double running = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    running += w[i];
    cumulative_weights_[i] = running;
  }
  if (options_.bandwidth_weighted) {
    for (const Dim& dim : dims_) {
      if (dim.dist.kind == Distribution::Kind::kCategorical || dim.binned) continue;
      for (size_t i = 0; i < w.size(); ++i) w[i] *= dim.sigma[i];
    }
    const double sum = std::accumulate(w.begin(), w.end(), 0.0);
    for (double& x : w) x /= sum;
  }
  weights_ = std::move(w);
  log_max_weight_ = std::log(*std::max_element(weights_.begin(), weights_.end()));
}

double ParzenEstimator::ToModel(const Dim& dim, double x) const {
  return dim.dist.log ? std::log(x) : x;
}

double ParzenEstimator::FromModel(const Dim& dim, double y) const {
  const Distribution& d = dim.dist;
  double x = d.log ? std::exp(y) : y;
  if (d.discrete()) x = d.low + std::round((x - d.low) / d.step) * d.step;
  return std::clamp(x, d.low, d.high);
}

void ParzenEstimator::FitNumbers(Dim* dim, int n_dims, std::vector<double>* weights) const {
  const int m = static_cast<int>(dim->mu.size());
  const int prior = m - 1;
  const double range = dim->high - dim->low;
  std::vector<double> sigma(m);
  std::vector<int> order;  // univariate: kernels by centre
  if (options_.multivariate) {
    const double sigma0 = 0.2 * std::pow(std::max(m - 1, 1), -1.0 / (n_dims + 4));
    std::fill(sigma.begin(), sigma.end(), sigma0 * range);
  } else {
    // Each kernel is as wide as the larger gap to its sorted neighbours (range ends included).
    order = OrderByValue(dim->mu);
    auto at = [&](int k) {  // k in [-1, m]: the centres with the range ends around them
      return k < 0 ? dim->low : k >= m ? dim->high : dim->mu[order[k]];
    };
    for (int k = 0; k < m; ++k) {
      sigma[order[k]] = std::max(at(k) - at(k - 1), at(k + 1) - at(k));
    }
    if (!options_.consider_endpoints && m >= 2) {
      sigma[order[0]] = at(1) - at(0);
      sigma[order[m - 1]] = at(m - 1) - at(m - 2);
    }
  }
  // m counts the prior kernel, so 1 + m is Optuna's n + 2 for n observations.
  const double floor = options_.multivariate ? 1.0 : options_.bandwidth_floor;
  const double min_sigma = std::max(range / 100.0, floor * range / (1.0 + m));
  for (double& s : sigma) s = std::clamp(s, min_sigma, range);
  sigma[prior] = range;

  std::vector<double> mu = std::move(dim->mu);
  dim->mu.clear();
  dim->sigma.clear();
  if (order.empty()) {
    dim->mu = std::move(mu);
    dim->sigma = std::move(sigma);
  } else {
    // Univariate: kernels in centre order, neighbours with equal centre and width merged into one
    // with their summed weight (many observations of an int share a value).
    std::vector<double> merged_weights;
    merged_weights.reserve(m);
    dim->mu.reserve(m);
    dim->sigma.reserve(m);
    for (int k = 0; k < m; ++k) {
      const int i = order[k];
      if (!dim->mu.empty() && dim->mu.back() == mu[i] && dim->sigma.back() == sigma[i]) {
        merged_weights.back() += (*weights)[i];
        continue;
      }
      dim->mu.push_back(mu[i]);
      dim->sigma.push_back(sigma[i]);
      merged_weights.push_back((*weights)[i]);
    }
    *weights = std::move(merged_weights);
  }
  const size_t kernels = dim->mu.size();
  const uint64_t grid = GridSize(dim->dist);
  if (options_.multivariate && dim->binned && grid > 0 && grid <= kMaxMemoGrid) {
    dim->grid_size = static_cast<int>(grid);
    dim->grid_point.resize(kernels, -1);
    for (size_t i = 0; i + 1 < kernels; ++i) {  // the last kernel is the prior
      const double x = FromModel(*dim, dim->mu[i]);
      dim->grid_point[i] = static_cast<int>(std::llround((x - dim->dist.low) / dim->dist.step));
      if (dim->sigma[i] != dim->sigma[0]) dim->grid_point[i] = -1;
    }
    dim->shift_invariant = !(dim->dist.kind == Distribution::Kind::kInt && dim->dist.log);
  }
  dim->inv_sigma.resize(kernels);
  dim->log_norm.resize(kernels);
  dim->mass.resize(kernels);
  if (dim->binned) dim->log_sigma_sqrt2pi.resize(kernels);
  double last_sigma = -1, log_sigma = 0;  // many bandwidths are the clipped minimum: log it once
  for (size_t i = 0; i < kernels; ++i) {
    const double s = dim->sigma[i];
    dim->inv_sigma[i] = 1.0 / s;
    const double a = (dim->low - dim->mu[i]) / s, b = (dim->high - dim->mu[i]) / s;
    double norm = 0.0;
    dim->mass[i] = std::numeric_limits<double>::quiet_NaN();
    if (!(a < -kUntruncated && b > kUntruncated)) {
      dim->mass[i] = NormalMass(a, b);
      norm = dim->mass[i] > 0 ? -std::log(dim->mass[i]) : -kNegInf;
    }
    if (s != last_sigma) {
      last_sigma = s;
      log_sigma = std::log(s) + kLogSqrt2Pi;
    }
    if (dim->binned) {
      dim->log_sigma_sqrt2pi[i] = log_sigma;
    } else {
      norm -= log_sigma;
    }
    dim->log_norm[i] = norm;
  }
}

std::vector<std::vector<double>> ParzenEstimator::Sample(int count, SamplingRng* rng) const {
  std::vector<std::vector<double>> columns(dims_.size(), std::vector<double>(count));
  // Per numeric dimension, each kernel's truncated normal, set up on its first draw.
  std::vector<std::vector<std::optional<TruncatedNormal>>> drawn(dims_.size());
  for (size_t j = 0; j < dims_.size(); ++j) drawn[j].resize(dims_[j].mu.size());
  for (int s = 0; s < count; ++s) {
    if (!categorical_pmf_.empty()) {
      double u = rng->Uniform01();
      int c = 0;
      const int last = static_cast<int>(categorical_pmf_.size()) - 1;
      while (c < last && u >= categorical_pmf_[c]) u -= categorical_pmf_[c++];
      columns[0][s] = c;
      continue;
    }
    const double u = rng->Uniform01() * cumulative_weights_.back();
    const int kernel = static_cast<int>(std::min<size_t>(
        std::upper_bound(cumulative_weights_.begin(), cumulative_weights_.end(), u) -
            cumulative_weights_.begin(),
        cumulative_weights_.size() - 1));
    for (size_t j = 0; j < dims_.size(); ++j) {
      const Dim& dim = dims_[j];
      if (dim.dist.kind == Distribution::Kind::kCategorical) {
        // The kernel's row: `miss` for every choice, `hit` for the observed one; choices below
        // the observed one own [k * miss, (k + 1) * miss), then the observed one, then the rest.
        const int n_choices = dim.dist.n_choices;
        const int observed = dim.choice[kernel];
        const double v = rng->Uniform01();
        int choice;
        if (observed < 0) {
          choice = static_cast<int>(v * n_choices);
        } else {
          const double miss = std::exp(dim.log_miss), hit = std::exp(dim.log_hit);
          if (v < observed * miss) {
            choice = static_cast<int>(v / miss);
          } else if (v < observed * miss + hit) {
            choice = observed;
          } else {
            choice = observed + 1 + static_cast<int>((v - observed * miss - hit) / miss);
          }
        }
        columns[j][s] = std::clamp(choice, 0, n_choices - 1);
        continue;
      }
      std::optional<TruncatedNormal>& normal = drawn[j][kernel];
      if (!normal)
        normal.emplace(dim.mu[kernel], dim.sigma[kernel], dim.low, dim.high, dim.mass[kernel]);
      const double y = normal->Sample(rng->UniformOpen01());
      columns[j][s] = FromModel(dim, y);
    }
  }
  return columns;
}

void ParzenEstimator::BinEdges(const Dim& dim, double x, double* lo, double* hi) const {
  if (dim.dist.kind == Distribution::Kind::kInt && dim.dist.log) {
    *lo = std::log(x - 0.5);
    *hi = std::log(x + 0.5);
  } else {
    *lo = x - dim.half_bin;
    *hi = x + dim.half_bin;
  }
  *lo = std::max(*lo, dim.low);
  *hi = std::min(*hi, dim.high);
}

double ParzenEstimator::LogPdfOne(const std::vector<std::vector<double>>& columns, int s,
                                  std::vector<double>* exact, std::vector<double>* bound,
                                  std::vector<int>* kept, std::vector<double>* memo_scratch,
                                  std::vector<std::vector<double>>* shift_memo) const {
  // Terms are per-kernel log densities without the kernel weights (those multiply in at the end).
  // Continuous and categorical dimensions are cheap and exact; a binned one needs two erfc per
  // kernel, so it first gets a cheap upper bound (the bin's width times the kernel's peak density
  // over the bin), and only kernels that could matter next to the best get their exact mass.
  const int m = static_cast<int>(weights_.size());
  double* ex = exact->data();
  double* bd = bound->data();
  std::fill(ex, ex + m, 0.0);
  bool any_binned = false;
  for (size_t j = 0; j < dims_.size(); ++j) {
    const Dim& dim = dims_[j];
    const double x = columns[j][s];
    if (dim.dist.kind == Distribution::Kind::kCategorical) {
      const int c = static_cast<int>(std::lround(x));
      for (int i = 0; i < m; ++i) {
        ex[i] += dim.choice[i] < 0    ? dim.log_uniform
                 : dim.choice[i] == c ? dim.log_hit
                                      : dim.log_miss;
      }
      continue;
    }
    const double* mu = dim.mu.data();
    const double* inv = dim.inv_sigma.data();
    const double* norm = dim.log_norm.data();
    if (!dim.binned) {
      const double y = ToModel(dim, x);
      for (int i = 0; i < m; ++i) {
        const double z = (y - mu[i]) * inv[i];
        ex[i] += norm[i] - 0.5 * z * z;
      }
      continue;
    }
    double lo, hi;
    BinEdges(dim, x, &lo, &hi);
    if (dim.shift_invariant) {
      // Exact masses by distance in grid steps, memoised across the call's points. The kernels
      // with a grid point share one bandwidth (that of the first kernel).
      std::vector<double>& memo = (*shift_memo)[j];
      const int* point = dim.grid_point.data();
      const int k = static_cast<int>(std::llround((x - dim.dist.low) / dim.dist.step));
      const double step_inv = dim.dist.step * inv[0];
      for (int i = 0; i < m; ++i) {
        double mass;
        if (point[i] >= 0) {
          const int d = k - point[i];
          double& slot = memo[d + dim.grid_size - 1];
          if (std::isnan(slot)) slot = LogNormalMass((d - 0.5) * step_inv, (d + 0.5) * step_inv);
          mass = norm[i] + slot;
        } else {
          mass = norm[i] + LogNormalMass((lo - mu[i]) * inv[i], (hi - mu[i]) * inv[i]);
        }
        ex[i] += mass;
      }
      continue;
    }
    if (!dim.grid_point.empty()) {
      // Exact masses, one per grid point that holds kernels.
      std::vector<double>& memo = *memo_scratch;
      memo.assign(dim.grid_size, std::numeric_limits<double>::quiet_NaN());
      const int* point = dim.grid_point.data();
      for (int i = 0; i < m; ++i) {
        double mass;
        if (point[i] >= 0 && !std::isnan(memo[point[i]])) {
          mass = memo[point[i]];
        } else {
          mass = norm[i] + LogNormalMass((lo - mu[i]) * inv[i], (hi - mu[i]) * inv[i]);
          if (point[i] >= 0) memo[point[i]] = mass;
        }
        ex[i] += mass;
      }
      continue;
    }
    if (!any_binned) std::fill(bd, bd + m, 0.0);
    any_binned = true;
    const double log_width = std::log(hi - lo);
    const double* log_sigma = dim.log_sigma_sqrt2pi.data();
    for (int i = 0; i < m; ++i) {
      const double gap = mu[i] < lo ? lo - mu[i] : mu[i] > hi ? mu[i] - hi : 0.0;
      const double z = gap * inv[i];
      bd[i] += norm[i] + std::min(0.0, log_width - log_sigma[i] - 0.5 * z * z);
    }
  }
  if (!any_binned) return WeightedLogSumExp(ex, weights_.data(), nullptr, m, log_max_weight_);

  auto exact_binned = [&](int i) {
    double sum = ex[i];
    for (size_t j = 0; j < dims_.size(); ++j) {
      const Dim& dim = dims_[j];
      if (!dim.binned || !dim.grid_point.empty()) continue;
      double lo, hi;
      BinEdges(dim, columns[j][s], &lo, &hi);
      sum += dim.log_norm[i] + LogNormalMass((lo - dim.mu[i]) * dim.inv_sigma[i],
                                             (hi - dim.mu[i]) * dim.inv_sigma[i]);
    }
    return sum;
  };
  int top = 0;
  for (int i = 1; i < m; ++i) {
    if (ex[i] + bd[i] > ex[top] + bd[top]) top = i;
  }
  const double top_exact = exact_binned(top);
  const double threshold =
      top_exact == kNegInf ? kNegInf
                           : top_exact + std::log(weights_[top]) - log_max_weight_ - kNegligible;
  int* index = kept->data();
  int n = 0;
  for (int i = 0; i < m; ++i) {
    if (i == top) {
      bd[n] = top_exact;
      index[n++] = i;
    } else if (ex[i] + bd[i] >= threshold) {
      bd[n] = exact_binned(i);
      index[n++] = i;
    }
  }
  return WeightedLogSumExp(bd, weights_.data(), index, n, log_max_weight_);
}

std::vector<double> ParzenEstimator::LogPdf(const std::vector<std::vector<double>>& columns) const {
  const int count = columns.empty() ? 0 : static_cast<int>(columns[0].size());
  std::vector<double> result(count);
  std::vector<double> exact(weights_.size()), bound(weights_.size());
  std::vector<int> kept(weights_.size());
  std::vector<double> memo;
  std::vector<std::vector<double>> shift_memo(dims_.size());
  for (size_t j = 0; j < dims_.size(); ++j) {
    if (dims_[j].shift_invariant) {
      shift_memo[j].assign(2 * dims_[j].grid_size - 1, std::numeric_limits<double>::quiet_NaN());
    }
  }
  // A univariate discrete dimension draws the same value for many points (an int over a few
  // values, a narrow kernel over a grid): each distinct value is evaluated once.
  const bool repeats = dims_.size() == 1 && dims_[0].binned;
  std::vector<std::pair<double, double>> seen;
  for (int s = 0; s < count; ++s) {
    if (!categorical_pmf_.empty()) {
      result[s] = std::log(categorical_pmf_[static_cast<int>(std::lround(columns[0][s]))]);
      continue;
    }
    const double x = columns[0][s];
    if (repeats) {
      auto it = std::find_if(seen.begin(), seen.end(), [x](const auto& p) { return p.first == x; });
      if (it != seen.end()) {
        result[s] = it->second;
        continue;
      }
    }
    result[s] = LogPdfOne(columns, s, &exact, &bound, &kept, &memo, &shift_memo);
    if (repeats) seen.emplace_back(x, result[s]);
  }
  return result;
}

}  // namespace hpsearch::server
