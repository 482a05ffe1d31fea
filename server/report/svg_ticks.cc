#include "server/report/svg_ticks.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace hpsearch::server::svg {
namespace {

// "%g" output with a short exponent: 1e-05 -> 1e-5, 2.5e+06 -> 2.5e6.
std::string ShortExponent(const std::string& g) {
  const size_t e = g.find('e');
  if (e == std::string::npos) return g;
  return absl::StrCat(g.substr(0, e), "e", std::stoi(g.substr(e + 1)));
}

// m * 10^k as written by the log-axis rule: plain for 0.01 <= |v| < 10000, else "me<k>".
std::string LogLabel(double value) {
  const double magnitude = std::abs(value);
  int exponent = static_cast<int>(std::floor(std::log10(magnitude) + 1e-9));
  if (exponent >= -2 && exponent <= 3) return absl::StrFormat("%g", value);
  double mantissa = value / std::pow(10.0, exponent);
  if (std::abs(mantissa) >= 10 - 1e-9) {
    mantissa /= 10;
    ++exponent;
  }
  return absl::StrCat(absl::StrFormat("%.4g", mantissa), "e", exponent);
}

// Heckbert's nice number: 1, 2, 5 or 10 times a power of ten, rounded or at least x.
double NiceNumber(double x, bool round) {
  const double exponent = std::floor(std::log10(x));
  const double fraction = x / std::pow(10.0, exponent);
  double nice;
  if (round) {
    nice = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10;
  } else {
    nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10;
  }
  return nice * std::pow(10.0, exponent);
}

}  // namespace

std::vector<double> LogTicksOf(double lo, double hi, const std::vector<int>& mantissas, int every) {
  const int first = static_cast<int>(std::floor(std::log10(lo)));
  const int last = static_cast<int>(std::ceil(std::log10(hi)));
  std::vector<double> values;
  for (int e = first; e <= last; ++e) {
    if (((e % every) + every) % every != 0) continue;
    for (int m : mantissas) {
      // m * 10^e through a string keeps 3e-05 exactly the double that "3e-05" parses to.
      const double v = std::stod(absl::StrFormat("%de%d", m, e));
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) values.push_back(v);
    }
  }
  return values;
}

Ticks LinearTicks(double lo, double hi, int target, bool extend) {
  Ticks ticks;
  if (hi < lo) std::swap(lo, hi);
  if (hi == lo) {
    const double pad = lo == 0 ? 0.5 : std::abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const double range = NiceNumber(hi - lo, false);
  ticks.step = NiceNumber(range / std::max(1, target - 1), true);
  const double first =
      (extend ? std::floor(lo / ticks.step + 1e-9) : std::ceil(lo / ticks.step - 1e-9));
  const double last =
      (extend ? std::ceil(hi / ticks.step - 1e-9) : std::floor(hi / ticks.step + 1e-9));
  for (double k = first; k <= last + 0.5; k += 1) {
    double v = k * ticks.step;
    if (std::abs(v) < ticks.step * 1e-9) v = 0;  // no 1e-17 or -0 at the origin
    ticks.values.push_back(v);
  }
  ticks.lo = extend ? first * ticks.step : lo;
  ticks.hi = extend ? last * ticks.step : hi;
  return ticks;
}

std::vector<double> LogTicks(double lo, double hi) {
  std::vector<double> values = LogTicksOf(lo, hi, {1, 2, 5});
  if (values.size() < 3) return LogTicksOf(lo, hi, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  if (values.size() > kMaxLogTicks) values = LogTicksOf(lo, hi, {1, 3});
  if (values.size() > kMaxLogTicks) values = LogTicksOf(lo, hi, {1});
  return values;
}

std::string FormatTick(double value, double step, bool log) {
  if (value == 0) return "0";
  const double magnitude = std::abs(value);
  if (log) return LogLabel(value);
  if (magnitude >= 1e6 || magnitude < 1e-4 || step < 1e-4) {
    return ShortExponent(absl::StrFormat("%g", value));
  }
  const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  return absl::StrFormat("%.*f", decimals, value);
}

}  // namespace hpsearch::server::svg
