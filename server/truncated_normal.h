// The normal-distribution arithmetic of the Parzen estimator: CDF masses in log space that stay
// accurate in both tails, the inverse CDF, and draws from a normal truncated to an interval.
// Written from the textbook formulas (erfc for the tails; Acklam's rational approximation of the
// inverse CDF refined by one Halley step, which brings it to double precision).
// Thread-safety: pure functions.
#pragma once

namespace hpsearch::server {

// P(Z <= z) for a standard normal Z.
double NormalCdf(double z);

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

}  // namespace hpsearch::server
