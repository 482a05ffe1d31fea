// The normal-distribution arithmetic of the Parzen estimator: CDF masses in log space that stay
// accurate in both tails, the inverse CDF, and draws from a normal truncated to an interval.
// Written from the textbook formulas (erfc for the tails; Acklam's rational approximation of the
// inverse CDF refined by one Halley step, which brings it to double precision).
// Thread-safety: pure functions.
#pragma once

namespace hpsearch::server {

// P(Z <= z) for a standard normal Z.
double NormalCdf(double z);

// P(a <= Z <= b) for a standard normal Z, from erfc on the side where it does not cancel.
// REQUIRES: a <= b.
double NormalMass(double a, double b);

// log P(a <= Z <= b) for a standard normal Z, accurate when both ends lie in the same tail;
// -infinity when the mass underflows.
// REQUIRES: a <= b.
double LogNormalMass(double a, double b);

// The z with NormalCdf(z) == p.
// REQUIRES: 0 < p < 1.
double InverseNormalCdf(double p);

// A draw from N(mu, sigma^2) truncated to [low, high], from one uniform u in (0, 1) by the inverse
// CDF, so the draw is a monotone function of u.
// REQUIRES: sigma > 0, low < high.
double SampleTruncatedNormal(double mu, double sigma, double low, double high, double u);

// The same distribution with what every draw from it shares computed once: a Parzen estimator
// draws from each of its kernels many times. Draws equal SampleTruncatedNormal's bit for bit.
class TruncatedNormal {
 public:
  // `mass` is NormalMass((low - mu) / sigma, (high - mu) / sigma) when the caller has it, else NaN.
  TruncatedNormal(double mu, double sigma, double low, double high, double mass);
  double Sample(double u);

 private:
  double mu_, sigma_, low_, high_;
  double mass_;
  double lower_cdf_;  // NormalCdf((low - mu) / sigma)
  double upper_sf_;   // NormalCdf(-(high - mu) / sigma), NaN until a draw needs it
};

}  // namespace hpsearch::server
