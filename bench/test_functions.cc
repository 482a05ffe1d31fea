#include "bench/test_functions.h"

#include <cmath>
#include <string>

namespace hpsearch::bench {
namespace {

constexpr double kPi = 3.14159265358979323846;

v1::ParameterSpec Float(const std::string& name, double low, double high, double step = 0) {
  v1::ParameterSpec p;
  p.set_name(name);
  p.mutable_float_range()->set_low(low);
  p.mutable_float_range()->set_high(high);
  if (step > 0) p.mutable_float_range()->set_step(step);
  return p;
}

v1::ParameterSpec Int(const std::string& name, int64_t low, int64_t high) {
  v1::ParameterSpec p;
  p.set_name(name);
  p.mutable_int_range()->set_low(low);
  p.mutable_int_range()->set_high(high);
  p.mutable_int_range()->set_step(1);
  return p;
}

v1::ParameterSpec Choices(const std::string& name, const std::vector<std::string>& values) {
  v1::ParameterSpec p;
  p.set_name(name);
  for (const auto& v : values) p.mutable_categorical()->add_choices()->set_string_value(v);
  return p;
}

std::vector<v1::ParameterSpec> Box(int d, double low, double high) {
  std::vector<v1::ParameterSpec> space;
  for (int i = 0; i < d; ++i) space.push_back(Float("x" + std::to_string(i + 1), low, high));
  return space;
}

double Branin(const std::vector<double>& x) {
  const double a = 1, b = 5.1 / (4 * kPi * kPi), c = 5 / kPi, r = 6, s = 10, t = 1 / (8 * kPi);
  const double u = x[1] - b * x[0] * x[0] + c * x[0] - r;
  return a * u * u + s * (1 - t) * std::cos(x[0]) + s;
}

double Hartmann6(const std::vector<double>& x) {
  static const double alpha[4] = {1.0, 1.2, 3.0, 3.2};
  static const double A[4][6] = {{10, 3, 17, 3.5, 1.7, 8},
                                 {0.05, 10, 17, 0.1, 8, 14},
                                 {3, 3.5, 1.7, 10, 17, 8},
                                 {17, 8, 0.05, 10, 0.1, 14}};
  static const double P[4][6] = {{1312, 1696, 5569, 124, 8283, 5886},
                                 {2329, 4135, 8307, 3736, 1004, 9991},
                                 {2348, 1451, 3522, 2883, 3047, 6650},
                                 {4047, 8828, 8732, 5743, 1091, 381}};
  double sum = 0;
  for (int i = 0; i < 4; ++i) {
    double inner = 0;
    for (int j = 0; j < 6; ++j) {
      const double d = x[j] - 1e-4 * P[i][j];
      inner += A[i][j] * d * d;
    }
    sum += alpha[i] * std::exp(-inner);
  }
  return -sum;
}

double Rosenbrock(const std::vector<double>& x) {
  double sum = 0;
  for (size_t i = 0; i + 1 < x.size(); ++i) {
    const double a = x[i + 1] - x[i] * x[i], b = x[i] - 1;
    sum += 100 * a * a + b * b;
  }
  return sum;
}

double Ackley(const std::vector<double>& x) {
  const double a = 20, b = 0.2, c = 2 * kPi, d = static_cast<double>(x.size());
  double squares = 0, cosines = 0;
  for (double v : x) {
    squares += v * v;
    cosines += std::cos(c * v);
  }
  return -a * std::exp(-b * std::sqrt(squares / d)) - std::exp(cosines / d) + a + std::exp(1.0);
}

double StyblinskiTang(const std::vector<double>& x) {
  double sum = 0;
  for (double v : x) sum += v * v * v * v - 16 * v * v + 5 * v;
  return 0.5 * sum;
}

double Rastrigin(const std::vector<double>& x) {
  double sum = 10.0 * static_cast<double>(x.size());
  for (double v : x) sum += v * v - 10 * std::cos(2 * kPi * v);
  return sum;
}

}  // namespace

const std::vector<TestFunction>& QualityFunctions() {
  static const std::vector<TestFunction> kFunctions = [] {
    std::vector<TestFunction> fns;
    fns.push_back({"branin", {Float("x1", -5, 10), Float("x2", 0, 15)}, Branin, 0.397887});
    fns.push_back({"hartmann6", Box(6, 0, 1), Hartmann6, -3.32237});
    fns.push_back({"rosenbrock4", Box(4, -5, 10), Rosenbrock, 0.0});
    fns.push_back({"ackley5", Box(5, -32.768, 32.768), Ackley, 0.0});
    fns.push_back({"styblinski_tang5", Box(5, -5, 5), StyblinskiTang, -39.16617 * 5});
    fns.push_back({"rastrigin5", Box(5, -5.12, 5.12), Rastrigin, 0.0});
    // Mixed: x1 an int, x2 on a grid of step 0.5.
    fns.push_back({"branin_mixed",
                   {Int("x1", -5, 10), Float("x2", 0, 15, 0.5)},
                   Branin,
                   0.397887 /* not on this grid: the grid's best is a little above */});
    // Mixed: three floats, two ints k in 0..10 read as k / 10, one categorical of five levels.
    fns.push_back({"hartmann6_mixed",
                   {Float("x1", 0, 1), Float("x2", 0, 1), Float("x3", 0, 1), Int("k4", 0, 10),
                    Int("k5", 0, 10), Choices("x6", {"0", "0.25", "0.5", "0.75", "1"})},
                   [](const std::vector<double>& v) {
                     return Hartmann6({v[0], v[1], v[2], v[3] / 10, v[4] / 10, v[5]});
                   },
                   -3.32237});
    // Mixed: two ints, a float, a stepped float and a categorical.
    fns.push_back({"styblinski_tang5_mixed",
                   {Int("x1", -5, 5), Int("x2", -5, 5), Float("x3", -5, 5), Float("x4", -5, 5, 0.5),
                    Choices("x5", {"-5", "-2.5", "0", "2.5", "5"})},
                   StyblinskiTang,
                   -39.16617 * 5});
    return fns;
  }();
  return kFunctions;
}

const std::vector<uint64_t>& QualitySeeds() {
  static const std::vector<uint64_t> kSeeds = [] {
    std::vector<uint64_t> seeds;
    for (uint64_t s = 1; s <= 20; ++s) seeds.push_back(s);
    return seeds;
  }();
  return kSeeds;
}

std::vector<double> PointOf(const TestFunction& fn,
                            const std::vector<v1::ParamAssignment>& params) {
  std::vector<double> x(fn.space.size(), 0.0);
  for (size_t j = 0; j < fn.space.size(); ++j) {
    for (const auto& a : params) {
      if (a.name() != fn.space[j].name()) continue;
      switch (a.value().kind_case()) {
        case v1::ParamValue::kDoubleValue:
          x[j] = a.value().double_value();
          break;
        case v1::ParamValue::kIntValue:
          x[j] = static_cast<double>(a.value().int_value());
          break;
        case v1::ParamValue::kStringValue:
          x[j] = std::stod(a.value().string_value());
          break;
        default:
          break;
      }
    }
  }
  return x;
}

}  // namespace hpsearch::bench
