// Axis ticks for the SVG plots (svg_plot.h): where the ticks of a linear or log axis go, and how
// their labels are written. Pure functions of their arguments; thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace hpsearch::server::svg {

// The most ticks a log axis gets (LogTicks, and the plot's thinning).
inline constexpr size_t kMaxLogTicks = 12;

// "Nice" tick values (1, 2 or 5 times a power of ten apart) covering [lo, hi] with about `target`
// ticks. With `extend`, the first and last ticks enclose [lo, hi] (the axis grows to them);
// otherwise every tick lies inside [lo, hi]. REQUIRES: lo and hi finite, target >= 2.
struct Ticks {
  double lo = 0;  // the axis domain the ticks were made for
  double hi = 1;
  double step = 0.1;
  std::vector<double> values;
};
Ticks LinearTicks(double lo, double hi, int target, bool extend);

// Ticks of a log axis over [lo, hi]: the values 1, 2 and 5 times a power of ten inside it; every
// 1..9 multiple when that gives fewer than three; 1 and 3 times, then only powers of ten, when it
// gives more than twelve. A plot thins these further where their labels would overlap (powers of
// ten every 2, 3, 5, ... decades), and uses linear ticks inside a range too narrow for two of them.
// REQUIRES: 0 < lo < hi, both finite.
std::vector<double> LogTicks(double lo, double hi);

// The values m * 10^e inside [lo, hi] for m in `mantissas`, in every `every`-th decade (the plot's
// candidates when it thins a log axis's ticks). REQUIRES: 0 < lo <= hi, both finite.
std::vector<double> LogTicksOf(double lo, double hi, const std::vector<int>& mantissas,
                               int every = 1);

// A tick label: fixed decimals matching `step` on linear axes ("0.25" for step 0.05), "%g" with a
// short exponent for very large or small values ("1e-5", "2.5e6"). On log axes: plain from 0.01 to
// 1000 ("0.05", "200"), a short exponent outside ("3e-4", "1e-3", "2e4").
std::string FormatTick(double value, double step, bool log);

}  // namespace hpsearch::server::svg
