// The Parzen estimator and its normal arithmetic. Reference log densities come from Optuna 3.1's
// _ParzenEstimator (default TPE parameters) on the same observations: the estimator is meant to
// build the same kernels (centres, bandwidths, weights). For continuous values the references
// evaluate those kernels with scipy.stats.truncnorm.logpdf(x, a, b, loc, scale): Optuna 3.1's own
// log_pdf leaves out the 1/sigma of each kernel (optuna/optuna#5109, fixed there in late 2023), so
// its densities do not integrate to one; discrete values (bin masses) are Optuna 3.1's as they are.
#include "server/sampling/parzen_estimator.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "server/sampling/tpe_sampler.h"
#include "server/sampling/truncated_normal.h"

namespace hpsearch::server {
namespace {

Distribution FloatDist(double low, double high, bool log = false, double step = 0) {
  Distribution d;
  d.kind = Distribution::Kind::kFloat;
  d.low = low;
  d.high = high;
  d.log = log;
  d.step = step;
  return d;
}

Distribution IntDist(double low, double high, bool log = false) {
  Distribution d;
  d.kind = Distribution::Kind::kInt;
  d.low = low;
  d.high = high;
  d.log = log;
  d.step = 1;
  return d;
}

Distribution Choices(int n) {
  Distribution d;
  d.kind = Distribution::Kind::kCategorical;
  d.n_choices = n;
  return d;
}

ParzenEstimator Univariate(const Distribution& d, const std::vector<double>& obs) {
  return ParzenEstimator({d}, {obs}, TpeObservationWeights(static_cast<int>(obs.size())), {});
}

void CheckLogPdf(const ParzenEstimator& pe, const std::vector<std::vector<double>>& points,
                 const std::vector<double>& expected) {
  std::vector<double> got = pe.LogPdf(points);
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("point " << i);
    CHECK(got[i] == Approx(expected[i]).epsilon(1e-9));
  }
}

TEST_CASE("Normal CDF arithmetic is accurate in both tails", "[server][tpe]") {
  CHECK(NormalCdf(0) == 0.5);
  CHECK(NormalCdf(1.0) == Approx(0.8413447460685429).epsilon(1e-14));
  // log P(Z <= -10) and log P(Z >= 10).
  CHECK(LogNormalMass(-1e300, -10) == Approx(-53.23128515051247).epsilon(1e-12));
  CHECK(LogNormalMass(10, 1e300) == Approx(-53.23128515051247).epsilon(1e-12));
  CHECK(LogNormalMass(-1, 1) == Approx(std::log(0.6826894921370859)).epsilon(1e-13));
  for (double p : {1e-300, 1e-12, 0.001, 0.2, 0.5, 0.7, 0.999999}) {
    INFO("p = " << p);
    CHECK(NormalCdf(InverseNormalCdf(p)) == Approx(p).epsilon(1e-12));
  }
}

TEST_CASE("Truncated normal draws stay inside, grow with u, and have the right mean",
          "[server][tpe]") {
  double previous = -1;
  double sum = 0;
  constexpr int kN = 20000;
  for (int i = 0; i < kN; ++i) {
    const double u = (i + 0.5) / kN;
    const double x = SampleTruncatedNormal(0.2, 0.5, 0.0, 1.0, u);
    REQUIRE(x >= 0.0);
    REQUIRE(x <= 1.0);
    REQUIRE(x >= previous);
    previous = x;
    sum += x;
  }
  // E[X] = mu + sigma (phi(a) - phi(b)) / (Phi(b) - Phi(a)), a = -0.4, b = 1.6.
  const double phi_a = std::exp(-0.5 * 0.16) / std::sqrt(2 * M_PI);
  const double phi_b = std::exp(-0.5 * 2.56) / std::sqrt(2 * M_PI);
  const double mean = 0.2 + 0.5 * (phi_a - phi_b) / (NormalCdf(1.6) - NormalCdf(-0.4));
  CHECK(sum / kN == Approx(mean).epsilon(1e-4));
  // Far in a tail the draw still lands inside.
  const double tail = SampleTruncatedNormal(0.0, 1.0, 30.0, 31.0, 0.5);
  CHECK(tail >= 30.0);
  CHECK(tail <= 31.0);
}

TEST_CASE("A truncated normal set up once draws what a fresh one draws, in both halves",
          "[server][tpe]") {
  struct Kernel {
    double mu, sigma, low, high;
  };
  for (const Kernel& k : {Kernel{0.2, 0.5, 0.0, 1.0}, Kernel{0.9, 0.05, 0.0, 1.0},
                          Kernel{0.0, 1.0, 30.0, 31.0}, Kernel{-3.0, 2.0, -4.0, 4.0}}) {
    INFO("mu " << k.mu << " sigma " << k.sigma);
    const double mass = NormalMass((k.low - k.mu) / k.sigma, (k.high - k.mu) / k.sigma);
    TruncatedNormal reused(k.mu, k.sigma, k.low, k.high, std::nan(""));
    TruncatedNormal given_mass(k.mu, k.sigma, k.low, k.high, mass);
    // Upper-half draws first, lower ones after, then upper again: the upper tail's cached
    // probability must not leak into the lower half.
    for (double u : {0.999, 0.7, 0.5, 0.01, 0.3, 1e-9, 0.95}) {
      const double fresh = TruncatedNormal(k.mu, k.sigma, k.low, k.high, std::nan("")).Sample(u);
      CHECK(reused.Sample(u) == fresh);
      CHECK(given_mass.Sample(u) == fresh);
      CHECK(SampleTruncatedNormal(k.mu, k.sigma, k.low, k.high, u) == fresh);
    }
  }
}

TEST_CASE("Univariate kernels are Optuna 3.1's, normalised", "[server][tpe]") {
  CheckLogPdf(Univariate(FloatDist(0, 1), {0.2, 0.5, 0.9}), {{0.1, 0.3, 0.5, 0.95}},
              {-0.1370023279472805, 0.10484945766824982, 0.14587198730915762, -0.2279159025958747});
  CheckLogPdf(Univariate(IntDist(0, 10), {2, 2, 7}), {{0, 2, 5, 10}},
              {-2.4146615468456125, -2.1226472832674794, -2.2885592477335432, -3.176124121683693});
  CheckLogPdf(Univariate(FloatDist(1e-4, 1e-1, true), {1e-3, 2e-3}), {{5e-4, 1e-2}},
              {-1.6823139954275201, -1.9860287987166036});
  CheckLogPdf(Univariate(Choices(3), {0, 0, 2}), {{0, 1, 2}},
              {-0.7419373447293773, -1.6582280766035324, -1.0986122886681096});
  CheckLogPdf(Univariate(FloatDist(0, 1, false, 0.1), {0.2, 0.3}), {{0.2, 0.6, 1.0}},
              {-1.9692257276184661, -2.5020365562973135, -3.4565115537677693});
  // 30 observations: the five oldest weigh less (the ramp).
  std::vector<double> many;
  for (int i = 1; i <= 30; ++i) many.push_back(0.1 * i);
  CheckLogPdf(Univariate(FloatDist(0, 4), many), {{0.15, 2.0}},
              {-2.4685303628258115, -1.0245263929070867});
}

TEST_CASE("OrderByValue orders like sorting (value, index) pairs, ties by index", "[server][tpe]") {
  // Both paths (a comparison sort below 512 values, the radix sort from there), with ties, both
  // zeros, negatives, subnormals and infinities.
  SamplingRng rng(11);
  for (int n : {0, 1, 7, 200, 511, 512, 1000, 3000}) {
    std::vector<double> values(n);
    for (double& v : values) {
      const double u = rng.Uniform01();
      v = u < 0.3    ? std::round(10 * rng.Uniform01()) - 5  // ints: many ties
          : u < 0.4  ? (rng.Uniform01() < 0.5 ? -0.0 : 0.0)
          : u < 0.45 ? (rng.Uniform01() < 0.5 ? -1 : 1) * 4.9e-324 * (1 + rng.UniformIndex(5))
          : u < 0.5  ? (rng.Uniform01() < 0.5 ? -1 : 1) * std::numeric_limits<double>::infinity()
                     : (rng.Uniform01() - 0.5) * std::pow(10.0, 40 * rng.Uniform01() - 20);
    }
    std::vector<std::pair<double, int>> pairs(n);
    for (int i = 0; i < n; ++i) pairs[i] = {values[i], i};
    std::sort(pairs.begin(), pairs.end());
    std::vector<int> expected(n);
    for (int k = 0; k < n; ++k) expected[k] = pairs[k].second;
    INFO("n = " << n);
    CHECK(OrderByValue(values) == expected);
  }
}

TEST_CASE("The bandwidth floor: 1 is Optuna 3.1's magic clip, lower lets kernels narrow",
          "[server][tpe]") {
  // Two observations at one point: their gap bandwidths are 0, so the floor sets their width,
  // max(range / 100, floor * range / (n + 2)) with n = 2. The prior kernel keeps the whole range.
  auto log_density_at_centre = [](double floor) {
    ParzenEstimatorOptions options;
    options.bandwidth_floor = floor;
    ParzenEstimator pe({FloatDist(0, 1)}, {{0.5, 0.5}}, TpeObservationWeights(2), options);
    return pe.LogPdf({{0.5}})[0];
  };
  // A normal centred in [0, 1] with width sigma, truncated there, has density
  // phi(0) / sigma / erf(0.5 / (sigma sqrt 2)) at its centre.
  auto centre_density = [](double sigma) {
    return 1 / std::sqrt(2 * M_PI) / sigma / std::erf(0.5 / (sigma * std::sqrt(2.0)));
  };
  auto expected = [&](double sigma) {
    return std::log(2.0 / 3 * centre_density(sigma) + 1.0 / 3 * centre_density(1.0));
  };
  CHECK(log_density_at_centre(1.0) == Approx(expected(0.25)).epsilon(1e-12));
  CHECK(log_density_at_centre(ParzenEstimatorOptions().bandwidth_floor) ==
        Approx(expected(0.25)).epsilon(1e-12));
  CHECK(log_density_at_centre(0.6) == Approx(expected(0.15)).epsilon(1e-12));
  CHECK(log_density_at_centre(0.02) == Approx(expected(0.01)).epsilon(1e-12));  // range / 100
}

TEST_CASE("Multivariate kernels are Optuna 3.1's, normalised", "[server][tpe]") {
  ParzenEstimatorOptions options;
  options.multivariate = true;
  ParzenEstimator pe({FloatDist(0, 1), IntDist(0, 4)}, {{0.2, 0.8}, {1, 3}},
                     TpeObservationWeights(2), options);
  CheckLogPdf(pe, {{0.25, 0.5}, {1, 2}}, {-1.1770987765430525, -1.4135295265279204});
}

// Optuna 3.1's raw log_pdf values (no 1/sigma) differ from the bandwidth-weighted normalised
// mixture by one constant per estimator: the differences between points agree.
void CheckOffsetFrom(const ParzenEstimator& pe, const std::vector<std::vector<double>>& points,
                     const std::vector<double>& optuna) {
  std::vector<double> got = pe.LogPdf(points);
  REQUIRE(got.size() == optuna.size());
  for (size_t i = 1; i < got.size(); ++i) {
    INFO("point " << i);
    CHECK(got[i] - got[0] == Approx(optuna[i] - optuna[0]).epsilon(1e-9));
  }
}

TEST_CASE("Bandwidth-weighted scores are Optuna 3.1's up to a constant", "[server][tpe]") {
  ParzenEstimatorOptions bw;
  bw.bandwidth_weighted = true;
  CheckOffsetFrom(
      ParzenEstimator({FloatDist(0, 1)}, {{0.2, 0.5, 0.9}}, TpeObservationWeights(3), bw),
      {{0.1, 0.3, 0.5, 0.95}},
      {-0.8309234837405515, -0.6430715509603937, -0.5883895074424972, -0.8078740911337842});
  std::vector<double> many;
  for (int i = 1; i <= 30; ++i) many.push_back(0.1 * i);
  CheckOffsetFrom(ParzenEstimator({FloatDist(0, 4)}, {many}, TpeObservationWeights(30), bw),
                  {{0.15, 2.0}}, {-3.1625685642735455, -2.523473618588226});
  CheckOffsetFrom(
      ParzenEstimator({FloatDist(1e-4, 1e-1, true)}, {{1e-3, 2e-3}}, TpeObservationWeights(2), bw),
      {{5e-4, 1e-2}}, {-0.5578320552156449, -0.7054854879968774});
  bw.multivariate = true;
  CheckOffsetFrom(ParzenEstimator({FloatDist(0, 1), IntDist(0, 4)}, {{0.2, 0.8}, {1, 3}},
                                  TpeObservationWeights(2), bw),
                  {{0.25, 0.5}, {1, 2}}, {-2.0516738779807193, -2.162815857274961});
  // Discrete values are scored by bin masses, which Optuna 3.1 normalises: unchanged.
  bw.multivariate = false;
  CheckLogPdf(ParzenEstimator({IntDist(0, 10)}, {{2, 2, 7}}, TpeObservationWeights(3), bw),
              {{0, 2, 5, 10}},
              {-2.4146615468456125, -2.1226472832674794, -2.2885592477335432, -3.176124121683693});
}

TEST_CASE("Densities are normalised: a density integrates and masses sum to one", "[server][tpe]") {
  const ParzenEstimator cont = Univariate(FloatDist(-1, 3), {-0.9, 0.0, 0.1, 2.5});
  std::vector<double> xs;
  constexpr int kSteps = 40000;
  for (int i = 0; i < kSteps; ++i) xs.push_back(-1 + 4.0 * (i + 0.5) / kSteps);
  double integral = 0;
  for (double lp : cont.LogPdf({xs})) integral += std::exp(lp) * 4.0 / kSteps;
  CHECK(integral == Approx(1.0).epsilon(1e-6));

  // A log int (bin masses in log space) and a stepped float: their masses add up to one.
  const ParzenEstimator log_int = Univariate(IntDist(1, 64, true), {2, 3, 3, 40});
  std::vector<double> ks;
  for (int k = 1; k <= 64; ++k) ks.push_back(k);
  double mass = 0;
  for (double lp : log_int.LogPdf({ks})) mass += std::exp(lp);
  CHECK(mass == Approx(1.0).epsilon(1e-9));
  const ParzenEstimator stepped = Univariate(FloatDist(0, 1, false, 0.25), {0.25, 1.0});
  mass = 0;
  for (double lp : stepped.LogPdf({{0, 0.25, 0.5, 0.75, 1.0}})) mass += std::exp(lp);
  CHECK(mass == Approx(1.0).epsilon(1e-9));

  ParzenEstimatorOptions options;
  options.multivariate = true;
  ParzenEstimator joint({Choices(3), IntDist(0, 2)}, {{0, 2, 2}, {1, 1, 0}}, {1, 1, 1}, options);
  std::vector<double> c, n;
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j <= 2; ++j) {
      c.push_back(i);
      n.push_back(j);
    }
  }
  mass = 0;
  for (double lp : joint.LogPdf({c, n})) mass += std::exp(lp);
  CHECK(mass == Approx(1.0).epsilon(1e-9));
}

TEST_CASE("A repeated discrete point gets the mass it gets alone", "[server][tpe]") {
  // LogPdf evaluates each distinct value of a univariate discrete dimension once.
  const ParzenEstimator pe = Univariate(IntDist(0, 400), {3, 17, 17, 250, 399});
  const std::vector<double> points{17, 3, 17, 200, 3, 17, 0, 200};
  const std::vector<double> together = pe.LogPdf({points});
  REQUIRE(together.size() == points.size());
  for (size_t i = 0; i < points.size(); ++i) {
    INFO("point " << i);
    CHECK(together[i] == pe.LogPdf({{points[i]}})[0]);
  }
}

TEST_CASE("Multivariate masses on a linear grid are each kernel's bin mass", "[server][tpe]") {
  // Computed here from the kernels directly: observations with Scott's-rule bandwidth
  // 0.2 n^(-1/5) of the range widened by half a step, the prior at the centre with the whole
  // range, each kernel's mass over the value's bin divided by its mass over the range. The
  // estimator reuses masses by grid distance across the points of one call (3 and 4, 39 and 40
  // share distances to several kernels), which must not change them.
  ParzenEstimatorOptions options;
  options.multivariate = true;
  const std::vector<double> obs = {3, 3, 10, 17, 39};
  std::vector<double> w = TpeObservationWeights(5);
  const ParzenEstimator pe({IntDist(0, 40)}, {obs}, w, options);
  const double low = -0.5, high = 40.5, range = high - low;
  std::vector<double> mu = obs, sigma(5, 0.2 * std::pow(5.0, -0.2) * range);
  mu.push_back(20);
  sigma.push_back(range);
  w.push_back(1.0);
  double total = 0;
  for (double x : w) total += x;
  const std::vector<double> points = {0, 3, 4, 20, 39, 40};
  std::vector<double> expected;
  for (double k : points) {
    double p = 0;
    for (size_t i = 0; i < mu.size(); ++i) {
      const double bin =
          NormalCdf((k + 0.5 - mu[i]) / sigma[i]) - NormalCdf((k - 0.5 - mu[i]) / sigma[i]);
      const double all = NormalCdf((high - mu[i]) / sigma[i]) - NormalCdf((low - mu[i]) / sigma[i]);
      p += w[i] / total * bin / all;
    }
    expected.push_back(std::log(p));
  }
  CheckLogPdf(pe, {points}, expected);
}

TEST_CASE("Draws follow the estimator's own density", "[server][tpe]") {
  const ParzenEstimator pe = Univariate(IntDist(0, 5), {1, 1, 4});
  SamplingRng rng(11);
  constexpr int kN = 30000;
  auto draws = pe.Sample(kN, &rng);
  std::vector<int> counts(6, 0);
  for (double x : draws[0]) {
    REQUIRE(x == std::round(x));
    REQUIRE(x >= 0);
    REQUIRE(x <= 5);
    ++counts[static_cast<int>(x)];
  }
  auto lp = pe.LogPdf({{0, 1, 2, 3, 4, 5}});
  for (int k = 0; k <= 5; ++k) {
    const double p = std::exp(lp[k]);
    INFO("k = " << k);
    CHECK(std::abs(counts[k] - kN * p) < 5 * std::sqrt(kN * p * (1 - p)));
  }
  const ParzenEstimator cat = Univariate(Choices(4), {3, 3, 0});
  auto cat_draws = cat.Sample(kN, &rng);
  std::vector<int> cat_counts(4, 0);
  for (double x : cat_draws[0]) ++cat_counts[static_cast<int>(x)];
  auto cat_lp = cat.LogPdf({{0, 1, 2, 3}});
  for (int k = 0; k < 4; ++k) {
    const double p = std::exp(cat_lp[k]);
    CHECK(std::abs(cat_counts[k] - kN * p) < 5 * std::sqrt(kN * p * (1 - p)));
  }
}

TEST_CASE("Multivariate draws keep the observations' combinations", "[server][tpe]") {
  // Observations on the diagonal of [0, 1]^2: joint kernels stay near it, independent ones
  // would fill the off-diagonal corners as often.
  ParzenEstimatorOptions options;
  options.multivariate = true;
  std::vector<double> xs, ys;
  for (int i = 0; i < 10; ++i) {
    xs.push_back(i < 5 ? 0.1 : 0.9);
    ys.push_back(i < 5 ? 0.1 : 0.9);
  }
  ParzenEstimator joint({FloatDist(0, 1), FloatDist(0, 1)}, {xs, ys}, TpeObservationWeights(10),
                        options);
  SamplingRng rng(3);
  auto draws = joint.Sample(4000, &rng);
  int diagonal = 0, off = 0;
  for (int s = 0; s < 4000; ++s) {
    const bool x_low = draws[0][s] < 0.5, y_low = draws[1][s] < 0.5;
    (x_low == y_low ? diagonal : off) += 1;
  }
  CHECK(diagonal > 4 * off);
}

TEST_CASE("Ramp weights: flat up to 25 observations, older ones lighter beyond", "[server][tpe]") {
  CHECK(TpeObservationWeights(25) == std::vector<double>(25, 1.0));
  auto w = TpeObservationWeights(30);
  REQUIRE(w.size() == 30);
  CHECK(w[0] == Approx(1.0 / 30));
  CHECK(w[4] == Approx(1.0));
  CHECK(w[2] == Approx((1.0 / 30 + 1.0) / 2));
  CHECK(w[29] == 1.0);

  // A window of 10: the newest 10 weigh 1, the oldest n - 10 ramp up from 1/n.
  CHECK(TpeObservationWeights(10, 10) == std::vector<double>(10, 1.0));
  w = TpeObservationWeights(30, 10);
  REQUIRE(w.size() == 30);
  CHECK(w[0] == Approx(1.0 / 30));
  CHECK(w[19] == Approx(1.0));
  CHECK(w[9] < w[10]);
  CHECK(w[20] == 1.0);
}

}  // namespace
}  // namespace hpsearch::server
