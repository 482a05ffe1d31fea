#include "server/sampling/distributions.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <string>

namespace hpsearch::server {
namespace {

v1::ParameterSpec Float(double low, double high, bool log = false, double step = 0) {
  v1::ParameterSpec p;
  p.set_name("x");
  p.mutable_float_range()->set_low(low);
  p.mutable_float_range()->set_high(high);
  p.mutable_float_range()->set_log(log);
  if (step > 0) p.mutable_float_range()->set_step(step);
  return p;
}

v1::ParameterSpec Int(int64_t low, int64_t high, bool log = false, int64_t step = 0) {
  v1::ParameterSpec p;
  p.set_name("n");
  p.mutable_int_range()->set_low(low);
  p.mutable_int_range()->set_high(high);
  p.mutable_int_range()->set_log(log);
  if (step > 0) p.mutable_int_range()->set_step(step);
  return p;
}

v1::ParameterSpec Strings(std::initializer_list<const char*> choices) {
  v1::ParameterSpec p;
  p.set_name("c");
  for (const char* c : choices) p.mutable_categorical()->add_choices()->set_string_value(c);
  return p;
}

std::vector<v1::ParamValue> Draws(const v1::ParameterSpec& p, int n, uint64_t seed) {
  std::vector<v1::ParamValue> out;
  uint64_t state = seed;
  for (int i = 0; i < n; ++i) {
    auto v = DrawRandomValue(p, &state);
    REQUIRE(v.ok());
    out.push_back(*v);
  }
  return out;
}

// Pearson chi-square of observed counts against equal expected counts.
double ChiSquareUniform(const std::vector<int>& counts) {
  double total = 0;
  for (int c : counts) total += c;
  const double expected = total / counts.size();
  double chi = 0;
  for (int c : counts) chi += (c - expected) * (c - expected) / expected;
  return chi;
}

TEST_CASE("A float range is uniform between its bounds", "[server][distributions]") {
  const auto p = Float(-2.0, 3.0);
  std::vector<int> bins(10, 0);
  for (const auto& v : Draws(p, 20000, 1)) {
    const double x = v.double_value();
    REQUIRE(x >= -2.0);
    REQUIRE(x <= 3.0);
    ++bins[std::min(9, static_cast<int>((x + 2.0) / 0.5))];
  }
  // 9 degrees of freedom: the 99.9% quantile is 27.9.
  CHECK(ChiSquareUniform(bins) < 27.9);
}

TEST_CASE("A log float range is uniform in log space", "[server][distributions]") {
  const auto p = Float(1e-5, 1e-1, true);
  std::vector<int> decades(4, 0);
  for (const auto& v : Draws(p, 20000, 2)) {
    const double x = v.double_value();
    REQUIRE(x >= 1e-5);
    REQUIRE(x <= 1e-1);
    ++decades[std::min(3, static_cast<int>(std::floor(std::log10(x) + 5)))];
  }
  CHECK(ChiSquareUniform(decades) < 16.3);  // 3 dof, 99.9%
}

TEST_CASE("A stepped float draws exactly its grid, both ends included", "[server][distributions]") {
  const auto p = Float(0.0, 0.1, false, 0.025);
  std::map<double, int> counts;
  for (const auto& v : Draws(p, 10000, 3)) ++counts[v.double_value()];
  REQUIRE(counts.size() == 5);
  CHECK(counts.begin()->first == 0.0);
  CHECK(counts.rbegin()->first == Approx(0.1).margin(1e-15));
  std::vector<int> c;
  for (const auto& [x, n] : counts) c.push_back(n);
  CHECK(ChiSquareUniform(c) < 18.5);  // 4 dof, 99.9%
  // An off-grid high: the top point is the last grid point below it.
  auto dist = ToDistribution(Float(0.0, 1.0, false, 0.3));
  REQUIRE(dist.ok());
  CHECK(GridSize(*dist) == 4);
  CHECK(dist->high == Approx(0.9));
}

TEST_CASE("Ints stay in bounds and on their step", "[server][distributions]") {
  std::map<int64_t, int> counts;
  for (const auto& v : Draws(Int(3, 11, false, 2), 10000, 4)) ++counts[v.int_value()];
  REQUIRE(counts.size() == 5);
  CHECK(counts.begin()->first == 3);
  CHECK(counts.rbegin()->first == 11);
  for (const auto& [x, n] : counts) CHECK((x - 3) % 2 == 0);
  std::vector<int> c;
  for (const auto& [x, n] : counts) c.push_back(n);
  CHECK(ChiSquareUniform(c) < 18.5);
}

TEST_CASE("A log int gives each integer its share of log space", "[server][distributions]") {
  // Integer k owns [k - 0.5, k + 0.5) of the log-uniform range [0.5, 8.5).
  std::map<int64_t, int> counts;
  constexpr int kDraws = 40000;
  for (const auto& v : Draws(Int(1, 8, true), kDraws, 5)) ++counts[v.int_value()];
  REQUIRE(counts.size() == 8);
  const double total = std::log(8.5 / 0.5);
  for (int64_t k = 1; k <= 8; ++k) {
    const double share = std::log((k + 0.5) / (k - 0.5)) / total;
    const double sd = std::sqrt(kDraws * share * (1 - share));
    CHECK(std::abs(counts[k] - kDraws * share) < 4 * sd);
  }
}

TEST_CASE("Categorical choices are drawn equally often", "[server][distributions]") {
  std::map<std::string, int> counts;
  for (const auto& v : Draws(Strings({"adamw", "sgd", "lion"}), 9000, 6)) {
    ++counts[v.string_value()];
  }
  REQUIRE(counts.size() == 3);
  CHECK(ChiSquareUniform({counts["adamw"], counts["sgd"], counts["lion"]}) < 13.8);  // 2 dof
}

TEST_CASE("FromUnitInterval gives grid points equal slices and maps the ends",
          "[server][distributions]") {
  const auto p = Int(0, 3);
  auto dist = ToDistribution(p);
  REQUIRE(dist.ok());
  CHECK(FromUnitInterval(p, *dist, 0.0).int_value() == 0);
  CHECK(FromUnitInterval(p, *dist, 0.2499).int_value() == 0);
  CHECK(FromUnitInterval(p, *dist, 0.25).int_value() == 1);
  CHECK(FromUnitInterval(p, *dist, 0.9999).int_value() == 3);
  const auto lr = Float(1e-4, 1e-2, true);
  auto lr_dist = ToDistribution(lr);
  REQUIRE(lr_dist.ok());
  CHECK(FromUnitInterval(lr, *lr_dist, 0.5).double_value() == Approx(1e-3));
  CHECK(FromUnitInterval(lr, *lr_dist, 0.0).double_value() == Approx(1e-4));
  const auto c = Strings({"a", "b"});
  auto c_dist = ToDistribution(c);
  REQUIRE(c_dist.ok());
  CHECK(FromUnitInterval(c, *c_dist, 0.7).string_value() == "b");
}

TEST_CASE("Internal form round-trips and compares numbers by value", "[server][distributions]") {
  const auto c = Strings({"a", "b", "c"});
  v1::ParamValue b;
  b.set_string_value("b");
  REQUIRE(ToInternal(c, b) == 1.0);
  CHECK(ToExternal(c, 1.0).string_value() == "b");
  v1::ParamValue missing;
  missing.set_string_value("z");
  CHECK_FALSE(ToInternal(c, missing).has_value());
  CHECK(ToExternal(Int(0, 9), 4.0).int_value() == 4);
  v1::ParamValue eight_int, eight_double;
  eight_int.set_int_value(8);
  eight_double.set_double_value(8.0);
  CHECK(SameParamValue(eight_int, eight_double));
  CHECK_FALSE(SameParamValue(eight_int, b));
}

TEST_CASE("Malformed distributions are named", "[server][distributions]") {
  CHECK(ToDistribution(Float(1.0, 0.0)).status().message() ==
        "search_space.x: low must not exceed high");
  CHECK(ToDistribution(Float(0.0, 1.0, true)).status().message() ==
        "search_space.x: a log range needs low > 0");
  CHECK(ToDistribution(Int(0, 5, true)).status().message() ==
        "search_space.n: a log range needs low >= 1");
  v1::ParameterSpec empty;
  empty.set_name("e");
  empty.mutable_categorical();
  CHECK_FALSE(ToDistribution(empty).ok());
}

}  // namespace
}  // namespace hpsearch::server
