#include "server/sampling/truncated_normal.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace hpsearch::server {
namespace {

constexpr double kSqrt1_2 = 0.70710678118654752440;
constexpr double kSqrt2Pi = 2.50662827463100050242;

}  // namespace

double NormalMass(double a, double b) {
  if (a >= 0) return 0.5 * (std::erfc(a * kSqrt1_2) - std::erfc(b * kSqrt1_2));
  if (b <= 0) return 0.5 * (std::erfc(-b * kSqrt1_2) - std::erfc(-a * kSqrt1_2));
  return 1.0 - 0.5 * std::erfc(-a * kSqrt1_2) - 0.5 * std::erfc(b * kSqrt1_2);
}

double NormalCdf(double z) { return 0.5 * std::erfc(-z * kSqrt1_2); }

double LogNormalMass(double a, double b) {
  const double mass = NormalMass(a, b);
  return mass > 0 ? std::log(mass) : -std::numeric_limits<double>::infinity();
}

double InverseNormalCdf(double p) {
  // Acklam's approximation (relative error below 1.2e-9) ...
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                 -2.759285104469687e+02, 1.383577518672690e+02,
                                 -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                 -1.556989798598866e+02, 6.680131188771972e+01,
                                 -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                 -2.400758277161838e+00, -2.549732539343734e+00,
                                 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                                 2.445134137142996e+00, 3.754408661907416e+00};
  if (p > 0.5) return -InverseNormalCdf(1.0 - p);
  double x;
  if (p < 0.02425) {
    const double q = std::sqrt(-2 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else {
    const double q = p - 0.5;
    const double r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  }
  // ... then one Halley step on NormalCdf(x) - p, which is exact in the lower half (p <= 0.5).
  const double e = NormalCdf(x) - p;
  const double u = e * kSqrt2Pi * std::exp(0.5 * x * x);
  return x - u / (1 + 0.5 * x * u);
}

double SampleTruncatedNormal(double mu, double sigma, double low, double high, double u) {
  return TruncatedNormal(mu, sigma, low, high, std::nan("")).Sample(u);
}

TruncatedNormal::TruncatedNormal(double mu, double sigma, double low, double high, double mass)
    : mu_(mu), sigma_(sigma), low_(low), high_(high), mass_(mass), upper_sf_(std::nan("")) {
  const double a = (low - mu) / sigma;
  if (std::isnan(mass_)) mass_ = NormalMass(a, (high - mu) / sigma);
  lower_cdf_ = mass_ > 0 ? NormalCdf(a) : 0.0;
}

double TruncatedNormal::Sample(double u) {
  if (!(mass_ > 0)) return std::clamp(mu_, low_, high_);
  // The lower-tail probability of the draw is NormalCdf(a) + u * mass; above one half its upper
  // tail NormalCdf(-b) + (1 - u) * mass is the accurate one to invert.
  const double lower = lower_cdf_ + u * mass_;
  double z;
  if (lower < 0.5) {
    z = InverseNormalCdf(std::max(lower, std::numeric_limits<double>::min()));
  } else {
    if (std::isnan(upper_sf_)) upper_sf_ = NormalCdf(-(high_ - mu_) / sigma_);
    const double upper = upper_sf_ + (1 - u) * mass_;
    z = -InverseNormalCdf(std::max(upper, std::numeric_limits<double>::min()));
  }
  return std::clamp(mu_ + sigma_ * z, low_, high_);
}

}  // namespace hpsearch::server
