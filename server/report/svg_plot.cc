#include "server/report/svg_plot.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace hpsearch::server::svg {
namespace {

constexpr double kCharWidth = 6.6;  // average width of a 11-12 px sans-serif character
constexpr double kLegendRow = 18;
constexpr double kLabelGap = 4;         // pixels between neighbouring x tick labels
constexpr double kLabelRowHeight = 14;  // pixels between y tick labels' centres, at least
constexpr double kJitterSpacing = 7;    // pixels between points spread at one x value

// Pixel coordinates with two decimals; never "-0.00", so output does not depend on rounding sign.
std::string Px(double v) {
  std::string s = absl::StrFormat("%.2f", v);
  return s == "-0.00" ? "0.00" : s;
}

bool Finite(double v) { return std::isfinite(v); }

double Transform(Scale scale, double v) { return scale == Scale::kLog ? std::log10(v) : v; }

std::string Truncate(const std::string& text, size_t max_chars) {
  if (text.size() <= max_chars) return text;
  size_t cut = max_chars - 1;
  // Never split a UTF-8 sequence: back up over continuation bytes (10xxxxxx).
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut) + "\xE2\x80\xA6";  // U+2026
}

std::string MarkerShape(Marker marker, const std::string& color, bool hollow) {
  const std::string fill = hollow ? "#ffffff" : color;
  const std::string paint = absl::StrCat(" fill=\"", fill, "\" stroke=\"", color, "\"");
  switch (marker) {
    case Marker::kNone:
      return "";
    case Marker::kCircle:
      return absl::StrCat("<circle r=\"4\"", paint, " stroke-width=\"1.5\"/>");
    case Marker::kSquare:
      return absl::StrCat("<rect x=\"-3.5\" y=\"-3.5\" width=\"7\" height=\"7\"", paint,
                          " stroke-width=\"1.5\"/>");
    case Marker::kTriangle:
      return absl::StrCat("<path d=\"M0,-5 L4.5,3.5 L-4.5,3.5 Z\"", paint,
                          " stroke-width=\"1.5\"/>");
    case Marker::kDiamond:
      return absl::StrCat("<path d=\"M0,-5 L5,0 L0,5 L-5,0 Z\"", paint, " stroke-width=\"1.5\"/>");
    case Marker::kCross:
      return absl::StrCat("<path d=\"M-4,-4 L4,4 M-4,4 L4,-4\" fill=\"none\" stroke=\"", color,
                          "\" stroke-width=\"2\"/>");
  }
  return "";
}

// One decimal: a compact series' thousands of coordinates (1/10 px is below what a screen shows).
std::string Px1(double v) {
  std::string s = absl::StrFormat("%.1f", v);
  return s == "-0.0" ? "0.0" : s;
}

// A marker as one subpath of a compact series' path at (x, y), the same shape as MarkerShape draws
// there. Each starts with the only absolute moveto "M" of its subpath (relative "m" inside), so a
// page can split the path into markers at each "M".
std::string MarkerPath(Marker marker, double x, double y) {
  switch (marker) {
    case Marker::kNone:
      return "";
    case Marker::kCircle:
      return absl::StrCat("M", Px1(x - 4), ",", Px1(y), "a4,4 0 1,0 8,0a4,4 0 1,0 -8,0");
    case Marker::kSquare:
      return absl::StrCat("M", Px1(x - 3.5), ",", Px1(y - 3.5), "h7v7h-7z");
    case Marker::kTriangle:
      return absl::StrCat("M", Px1(x), ",", Px1(y - 5), "l4.5,8.5h-9z");
    case Marker::kDiamond:
      return absl::StrCat("M", Px1(x), ",", Px1(y - 5), "l5,5l-5,5l-5,-5z");
    case Marker::kCross:
      return absl::StrCat("M", Px1(x - 4), ",", Px1(y - 4), "l8,8m-8,0l8,-8");
  }
  return "";
}

// The paint MarkerShape gives a marker, for a compact series' marker path.
std::string MarkerPaint(Marker marker, const std::string& color, bool hollow) {
  if (marker == Marker::kCross) {
    return absl::StrCat(" fill=\"none\" stroke=\"", color, "\" stroke-width=\"2\"");
  }
  return absl::StrCat(" fill=\"", hollow ? "#ffffff" : color, "\" stroke=\"", color,
                      "\" stroke-width=\"1.5\"");
}

std::string DashArray(Line line) {
  switch (line) {
    case Line::kDashed:
      return " stroke-dasharray=\"6,4\"";
    case Line::kDotted:
      return " stroke-dasharray=\"2,3\"";
    default:
      return "";
  }
}

}  // namespace

std::string Escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // Control characters other than tab and newline are not allowed in XML 1.0.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n') {
          out += ' ';
        } else {
          out += c;
        }
    }
  }
  return out;
}

const std::string& PaletteColor(int index) {
  static const std::array<std::string, 10> kPalette = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                                       "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                                                       "#bcbd22", "#17becf"};
  return kPalette[static_cast<size_t>(std::abs(index)) % kPalette.size()];
}

bool Plot::HasData(const Axis& x, const Axis& y, const std::optional<Axis>& y2) const {
  for (const Series& s : series_) {
    const Axis* y_axis = s.secondary_y ? (y2 ? &*y2 : nullptr) : &y;
    for (const Point& p : s.points) {
      if (InDomain(x, p.x) && (s.pin_bottom || (y_axis != nullptr && InDomain(*y_axis, p.y)))) {
        return true;
      }
    }
  }
  return false;
}

bool Plot::LabelsFit(const Axis& axis, const std::vector<double>& ticks,
                     const std::vector<std::string>& labels, bool horizontal) const {
  std::optional<double> previous;
  double previous_half = 0;
  for (size_t i = 0; i < ticks.size(); ++i) {
    std::optional<double> at = Map(axis, ticks[i], !horizontal);
    if (!at) continue;
    const double half =
        horizontal ? kCharWidth * static_cast<double>(labels[i].size()) / 2 : kLabelRowHeight / 2;
    if (previous) {
      const double room = horizontal ? previous_half + half + kLabelGap : kLabelRowHeight;
      if (std::abs(*at - *previous) < room) return false;
    }
    previous = at;
    previous_half = half;
  }
  return true;
}

Plot::Axis Plot::ResolveAxis(const AxisOptions& options, int which) const {
  Axis axis;
  axis.scale = options.scale;
  const bool horizontal = which == 0;
  const Frame frame = PlotFrame();
  axis.origin = horizontal ? frame.left : frame.top + frame.height;
  axis.length = horizontal ? frame.width : frame.height;
  if (options.scale == Scale::kCategorical) {
    const double n = static_cast<double>(std::max<size_t>(1, options.categories.size()));
    axis.lo = -0.5;
    axis.hi = n - 0.5;
    // A label as wide as its band at most (less a character of room), 16 characters at most.
    const double band = frame.width / n;
    const size_t chars = static_cast<size_t>(std::clamp(band / kCharWidth - 1, 3.0, 16.0));
    for (size_t i = 0; i < options.categories.size(); ++i) {
      axis.ticks.push_back(i);
      axis.labels.push_back(Truncate(options.categories[i], chars));
    }
    axis.step = 1;
    return axis;
  }
  const bool log = options.scale == Scale::kLog;
  std::optional<double> data_lo, data_hi;
  for (const Series& s : series_) {
    if (which != 0 && (s.secondary_y != (which == 2) || s.pin_bottom)) continue;
    if (which != 0 && s.bars && !log) {  // bars grow from zero
      data_lo = std::min(data_lo.value_or(0.0), 0.0);
      data_hi = std::max(data_hi.value_or(0.0), 0.0);
    }
    for (const Point& p : s.points) {
      const double v = which == 0 ? p.x : p.y;
      if (!Finite(v) || (log && v <= 0)) continue;
      data_lo = data_lo ? std::min(*data_lo, v) : v;
      data_hi = data_hi ? std::max(*data_hi, v) : v;
    }
  }
  double lo = options.min.value_or(data_lo.value_or(log ? 1.0 : 0.0));
  double hi = options.max.value_or(data_hi.value_or(log ? 10.0 : 1.0));
  if (log) {
    if (lo <= 0) lo = hi > 0 ? hi / 10 : 1;
    if (hi <= lo) hi = lo * 10;
  }
  if (hi < lo) std::swap(lo, hi);
  auto labelled = [&](Axis* a, bool as_log) {
    a->labels.clear();
    for (double v : a->ticks) a->labels.push_back(FormatTick(v, a->step, as_log));
    return LabelsFit(*a, a->ticks, a->labels, horizontal);
  };
  if (log) {
    if (hi == lo) {
      lo /= std::sqrt(10.0);
      hi *= std::sqrt(10.0);
    }
    const double pad = (std::log10(hi) - std::log10(lo)) * 0.05;
    if (!options.min) lo = std::pow(10.0, std::log10(lo) - pad);
    if (!options.max) hi = std::pow(10.0, std::log10(hi) + pad);
    axis.lo = lo;
    axis.hi = hi;
    axis.step = 0;
    // The densest set whose labels fit: every 1..9 multiple, 1-2-3-4-5-6-8 or 1-2-3-5 (only where
    // 1-2-5 give fewer than four), 1-2-5, 1-3, powers of ten, then powers of ten every 2, 3, 5, 10,
    // ... decades.
    std::vector<std::vector<double>> candidates;
    if (LogTicksOf(lo, hi, {1, 2, 5}).size() < 4) {
      candidates.push_back(LogTicksOf(lo, hi, {1, 2, 3, 4, 5, 6, 7, 8, 9}));
      candidates.push_back(LogTicksOf(lo, hi, {1, 2, 3, 4, 5, 6, 8}));
      candidates.push_back(LogTicksOf(lo, hi, {1, 2, 3, 5}));
    }
    candidates.push_back(LogTicksOf(lo, hi, {1, 2, 5}));
    candidates.push_back(LogTicksOf(lo, hi, {1, 3}));
    candidates.push_back(LogTicksOf(lo, hi, {1}));
    for (int every : {2, 3, 5, 10, 20, 50, 100})
      candidates.push_back(LogTicksOf(lo, hi, {1}, every));
    for (const std::vector<double>& values : candidates) {
      if (values.size() > kMaxLogTicks) continue;
      if (values.size() < 2) break;  // sparser sets have fewer still
      axis.ticks.clear();
      for (double v : values) {
        if (InDomain(axis, v) && (!options.integer_ticks || v == std::round(v))) {
          axis.ticks.push_back(v);
        }
      }
      if (axis.ticks.size() >= 2 && labelled(&axis, true)) return axis;
    }
    // Too narrow for two 1..9 multiples: plain ticks inside the range, labelled as on a linear
    // axis (0.0012, 0.0014, ...).
    for (int target = options_.target_ticks; target >= 2; --target) {
      Ticks ticks = LinearTicks(lo, hi, target, false);
      axis.step = ticks.step;
      axis.ticks.clear();
      for (double v : ticks.values) {
        if (v > 0 && InDomain(axis, v) && (!options.integer_ticks || v == std::round(v))) {
          axis.ticks.push_back(v);
        }
      }
      if (labelled(&axis, false) || target == 2) break;
    }
    return axis;
  }
  const bool fixed = options.min && options.max;
  // The most ticks (up to target_ticks) whose labels fit.
  for (int target = std::max(2, options_.target_ticks); target >= 2; --target) {
    axis.ticks.clear();
    Ticks ticks = LinearTicks(lo, hi, target, !fixed);
    axis.lo = options.min.value_or(ticks.lo);
    axis.hi = options.max.value_or(ticks.hi);
    axis.step = ticks.step;
    if (options.integer_ticks && ticks.step < 1) {
      // Whole numbers only; an end from the data lies half a unit beyond the outermost value.
      axis.step = 1;
      axis.lo = options.min.value_or(std::floor(lo) - 0.5);
      axis.hi = options.max.value_or(std::ceil(hi) + 0.5);
      ticks.values.clear();
      for (double v = std::ceil(axis.lo); v <= std::floor(axis.hi); v += 1) {
        ticks.values.push_back(v);
      }
    }
    if (axis.hi == axis.lo) axis.hi = axis.lo + 1;
    for (double v : ticks.values) {
      if (InDomain(axis, v)) axis.ticks.push_back(v);
    }
    if (labelled(&axis, false)) break;
  }
  return axis;
}

std::vector<Plot::LegendRow> Plot::LegendRows() const {
  std::vector<LegendRow> rows;
  if (!options_.y2) {
    for (const Series& s : series_) {
      if (!s.name.empty()) rows.push_back({&s, ""});
    }
    return rows;
  }
  // One group per axis, each under a heading that says which axis its series are drawn against.
  for (bool secondary : {false, true}) {
    std::vector<LegendRow> group;
    for (const Series& s : series_) {
      if (!s.name.empty() && s.secondary_y == secondary) group.push_back({&s, ""});
    }
    if (group.empty()) continue;
    const std::string& label = secondary ? options_.y2->label : options_.y.label;
    rows.push_back({nullptr, absl::StrCat(secondary ? "right axis" : "left axis",
                                          label.empty() ? "" : ": " + label)});
    rows.insert(rows.end(), group.begin(), group.end());
  }
  return rows;
}

double Plot::LegendWidth() const {
  double widest = 0;
  for (const LegendRow& row : LegendRows()) {
    widest = std::max(widest, row.series != nullptr
                                  ? 28 + kCharWidth * std::min<double>(row.series->name.size(), 28)
                                  : kCharWidth * std::min<double>(row.heading.size(), 32));
  }
  return widest == 0 ? 0 : widest + 12;
}

Frame Plot::PlotFrame() const {
  Frame frame;
  frame.left = options_.margin_left;
  frame.top = options_.margin_top;
  frame.width = options_.width - options_.margin_left - options_.margin_right -
                (options_.y2 ? options_.margin_y2 : 0) - LegendWidth();
  frame.height = options_.height - options_.margin_top - options_.margin_bottom;
  frame.width = std::max(frame.width, 10.0);
  frame.height = std::max(frame.height, 10.0);
  return frame;
}

bool Plot::InDomain(const Axis& axis, double v) {
  if (!Finite(v) || (axis.scale == Scale::kLog && v <= 0)) return false;
  const double t0 = Transform(axis.scale, axis.lo), t1 = Transform(axis.scale, axis.hi);
  const double t = Transform(axis.scale, v);
  const double slack = 1e-9 * std::abs(t1 - t0);
  return t >= std::min(t0, t1) - slack && t <= std::max(t0, t1) + slack;
}

std::optional<double> Plot::Map(const Axis& axis, double v, bool vertical) const {
  if (!InDomain(axis, v)) return std::nullopt;
  const double t0 = Transform(axis.scale, axis.lo), t1 = Transform(axis.scale, axis.hi);
  const double t = Transform(axis.scale, v);
  const double f = (t - t0) / (t1 - t0);
  return vertical ? axis.origin - f * axis.length : axis.origin + f * axis.length;
}

std::optional<double> Plot::XPixel(double x) const {
  return Map(ResolveAxis(options_.x, 0), x, false);
}

std::optional<double> Plot::YPixel(double y, bool secondary) const {
  if (secondary && !options_.y2) return std::nullopt;
  return Map(ResolveAxis(secondary ? *options_.y2 : options_.y, secondary ? 2 : 1), y, true);
}

std::string Plot::Render() const {
  const Frame frame = PlotFrame();
  const Axis x = ResolveAxis(options_.x, 0);
  const Axis y = ResolveAxis(options_.y, 1);
  std::optional<Axis> y2;
  if (options_.y2) y2 = ResolveAxis(*options_.y2, 2);
  // XPixel and YPixel over the axes resolved once.
  auto x_pixel = [&](double v) { return Map(x, v, false); };
  auto y_pixel = [&](double v, bool secondary = false) -> std::optional<double> {
    if (secondary && !y2) return std::nullopt;
    return Map(secondary ? *y2 : y, v, true);
  };
  const double right = frame.left + frame.width;
  const double bottom = frame.top + frame.height;
  std::string out;
  absl::StrAppend(&out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"", options_.width,
                  "\" height=\"", options_.height, "\" viewBox=\"0 0 ", options_.width, " ",
                  options_.height, "\" font-family=\"sans-serif\" font-size=\"11\">\n");
  absl::StrAppend(&out, "<title>", Escape(options_.title), "</title>\n");
  absl::StrAppend(&out, "<rect class=\"background\" width=\"", options_.width, "\" height=\"",
                  options_.height, "\" fill=\"#ffffff\"/>\n");
  absl::StrAppend(&out, "<text class=\"plot-title\" x=\"", Px(options_.width / 2.0),
                  "\" y=\"20\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">",
                  Escape(options_.title), "</text>\n");

  // Categorical bands, then grid lines, under everything else.
  const bool categorical = x.scale == Scale::kCategorical;
  if (categorical) {
    absl::StrAppend(&out, "<g class=\"bands\">\n");
    const double band = frame.width / (x.hi - x.lo);
    for (size_t i = 0; i < options_.x.categories.size(); ++i) {
      absl::StrAppend(&out, "<rect class=\"band\" x=\"", Px(frame.left + band * i), "\" y=\"",
                      Px(frame.top), "\" width=\"", Px(band), "\" height=\"", Px(frame.height),
                      "\" fill=\"", i % 2 == 0 ? "#f2f2f2" : "#fafafa", "\"/>\n");
    }
    absl::StrAppend(&out, "</g>\n");
  }
  absl::StrAppend(&out, "<g class=\"grid\" stroke=\"#e0e0e0\" stroke-width=\"1\">\n");
  for (double v : y.ticks) {
    const std::string py = Px(*y_pixel(v));
    absl::StrAppend(&out, "<line x1=\"", Px(frame.left), "\" y1=\"", py, "\" x2=\"", Px(right),
                    "\" y2=\"", py, "\"/>\n");
  }
  if (!categorical) {
    for (double v : x.ticks) {
      const std::string px = Px(*x_pixel(v));
      absl::StrAppend(&out, "<line x1=\"", px, "\" y1=\"", Px(frame.top), "\" x2=\"", px,
                      "\" y2=\"", Px(bottom), "\"/>\n");
    }
  }
  absl::StrAppend(&out, "</g>\n");

  // Axes: frame, ticks, tick labels, axis labels.
  absl::StrAppend(&out, "<g class=\"axes\" stroke=\"#333333\" fill=\"none\">\n<rect x=\"",
                  Px(frame.left), "\" y=\"", Px(frame.top), "\" width=\"", Px(frame.width),
                  "\" height=\"", Px(frame.height), "\"/>\n</g>\n");
  absl::StrAppend(&out, "<g class=\"x-axis\" text-anchor=\"middle\">\n");
  for (size_t i = 0; i < x.ticks.size(); ++i) {
    const double v = x.ticks[i];
    const std::string px = Px(*x_pixel(v));
    absl::StrAppend(&out, "<line x1=\"", px, "\" y1=\"", Px(bottom), "\" x2=\"", px, "\" y2=\"",
                    Px(bottom + 4), "\" stroke=\"#333333\"/>\n<text class=\"tick-label\" x=\"", px,
                    "\" y=\"", Px(bottom + 16), "\">", Escape(x.labels[i]), "</text>\n");
  }
  absl::StrAppend(&out, "<text class=\"axis-label\" x=\"", Px(frame.left + frame.width / 2),
                  "\" y=\"", Px(bottom + 36), "\" font-size=\"12\">", Escape(options_.x.label),
                  options_.x.scale == Scale::kLog ? " (log scale)" : "", "</text>\n</g>\n");
  auto y_axis = [&](const Axis& axis, const AxisOptions& axis_options, bool secondary) {
    const double edge = secondary ? right : frame.left;
    const double tick_end = secondary ? edge + 4 : edge - 4;
    const double text_x = secondary ? edge + 6 : edge - 6;
    absl::StrAppend(&out, "<g class=\"", secondary ? "y2-axis" : "y-axis", "\" text-anchor=\"",
                    secondary ? "start" : "end", "\">\n");
    for (size_t i = 0; i < axis.ticks.size(); ++i) {
      const double v = axis.ticks[i];
      const std::string py = Px(*y_pixel(v, secondary));
      absl::StrAppend(&out, "<line x1=\"", Px(edge), "\" y1=\"", py, "\" x2=\"", Px(tick_end),
                      "\" y2=\"", py, "\" stroke=\"#333333\"/>\n<text class=\"tick-label\" x=\"",
                      Px(text_x), "\" y=\"", Px(*y_pixel(v, secondary) + 4), "\">",
                      Escape(axis.labels[i]), "</text>\n");
    }
    const double label_x = secondary ? right + options_.margin_y2 - 8 : 14;
    const double label_y = frame.top + frame.height / 2;
    absl::StrAppend(&out, "<text class=\"axis-label\" x=\"", Px(label_x), "\" y=\"", Px(label_y),
                    "\" font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 ",
                    Px(label_x), " ", Px(label_y), ")\">", Escape(axis_options.label),
                    axis_options.scale == Scale::kLog ? " (log scale)" : "", "</text>\n</g>\n");
  };
  y_axis(y, options_.y, false);
  if (y2) y_axis(*y2, *options_.y2, true);

  // Where each point goes; points sharing a category band spread across it in drawing order, one
  // slot per distinct tooltip (so a highlight drawn over a point lands on it).
  std::map<long, std::map<std::string, int>> band_slots;
  std::map<long, int> band_count;
  auto slot_key = [](const Point& p, size_t series, size_t index) {
    return p.title.empty() ? absl::StrCat("\x01", series, ":", index) : p.title;
  };
  if (categorical) {
    for (size_t si = 0; si < series_.size(); ++si) {
      const Series& s = series_[si];
      for (size_t pi = 0; pi < s.points.size(); ++pi) {
        const Point& p = s.points[pi];
        if (!x_pixel(p.x) || (!s.pin_bottom && !y_pixel(p.y, s.secondary_y))) continue;
        const long band = std::lround(p.x);
        auto& slots = band_slots[band];
        if (slots.emplace(slot_key(p, si, pi), band_count[band]).second) ++band_count[band];
      }
    }
  }
  const double band_width = frame.width / (x.hi - x.lo);
  // Where a point lands before any spreading, or nullopt when it is not drawable.
  auto base = [&](size_t si, size_t pi) -> std::optional<std::pair<double, double>> {
    const Series& s = series_[si];
    const Point& p = s.points[pi];
    std::optional<double> px = x_pixel(p.x);
    std::optional<double> py =
        s.pin_bottom ? std::optional<double>(bottom - 6) : y_pixel(p.y, s.secondary_y);
    if (!px || !py) return std::nullopt;
    return std::make_pair(*px, *py);
  };
  // Jitter: at each x value, a point that would land within a marker of one already there moves
  // to the nearest free slot of 0, +1, -1, +2, ... times kJitterSpacing, up to a third of the gap
  // to the neighbouring x value.
  std::vector<std::vector<double>> shift(series_.size());
  for (size_t si = 0; si < series_.size(); ++si) shift[si].assign(series_[si].points.size(), 0.0);
  if (options_.x.jitter && !categorical) {
    std::set<double> columns;
    for (size_t si = 0; si < series_.size(); ++si) {
      for (size_t pi = 0; pi < series_[si].points.size(); ++pi) {
        if (auto at = base(si, pi)) columns.insert(at->first);
      }
    }
    double gap = frame.width / 4;
    for (auto it = columns.begin(); it != columns.end() && std::next(it) != columns.end(); ++it) {
      gap = std::min(gap, *std::next(it) - *it);
    }
    const int reach = std::max(1, static_cast<int>(gap / 3 / kJitterSpacing));
    std::map<double, std::vector<std::pair<double, int>>> taken;  // x -> (y pixel, slot)
    std::map<std::pair<double, std::string>, int> slot_of_title;
    for (size_t si = 0; si < series_.size(); ++si) {
      for (size_t pi = 0; pi < series_[si].points.size(); ++pi) {
        std::optional<std::pair<double, double>> at = base(si, pi);
        if (!at) continue;
        const Point& p = series_[si].points[pi];
        int slot = 0;
        auto titled = slot_of_title.find({at->first, p.title});
        if (!p.title.empty() && titled != slot_of_title.end()) {
          slot = titled->second;
        } else {
          std::vector<std::pair<double, int>>& here = taken[at->first];
          for (int n = 0; n <= 2 * reach; ++n) {
            const int candidate = n % 2 == 1 ? (n + 1) / 2 : -(n / 2);
            const bool clash =
                std::any_of(here.begin(), here.end(), [&](const std::pair<double, int>& q) {
                  return q.second == candidate && std::abs(q.first - at->second) < 7;
                });
            if (!clash) {
              slot = candidate;
              break;
            }
          }
          here.push_back({at->second, slot});
          if (!p.title.empty()) slot_of_title[{at->first, p.title}] = slot;
        }
        shift[si][pi] = slot * kJitterSpacing;
      }
    }
  }
  auto place = [&](size_t si, size_t pi) -> std::optional<std::pair<double, double>> {
    std::optional<std::pair<double, double>> at = base(si, pi);
    if (!at) return std::nullopt;
    const Point& p = series_[si].points[pi];
    if (categorical) {
      const long band = std::lround(p.x);
      const int n = band_count[band];
      const int k = band_slots[band][slot_key(p, si, pi)];
      at->first = *x_pixel(static_cast<double>(band)) +
                  ((k + 0.5) / static_cast<double>(n) - 0.5) * band_width * 0.7;
    }
    at->first += shift[si][pi];
    return at;
  };

  if (!HasData(x, y, y2)) {
    absl::StrAppend(&out, "<text class=\"empty\" x=\"", Px(frame.left + frame.width / 2), "\" y=\"",
                    Px(frame.top + frame.height / 2),
                    "\" text-anchor=\"middle\" font-size=\"13\" fill=\"#666666\">",
                    Escape(options_.empty_message), "</text>\n");
  }
  for (size_t si = 0; si < series_.size(); ++si) {
    const Series& s = series_[si];
    const std::string cls = s.css_class.empty() ? "" : " " + Escape(s.css_class);
    absl::StrAppend(&out, "<g class=\"series", cls, "\">\n");
    std::vector<std::optional<std::pair<double, double>>> placed;
    for (size_t pi = 0; pi < s.points.size(); ++pi) placed.push_back(place(si, pi));
    if (s.compact && !s.bars) {
      // One <path> for the lines (a subpath per run) and one for the markers (a subpath each),
      // data-ids naming each subpath's point, in order.
      if (s.line != Line::kNone) {
        std::string d, ids, run;
        int points_in_run = 0;
        int run_id = -1;
        auto flush = [&] {
          if (points_in_run > 1) {
            absl::StrAppend(&d, run);
            absl::StrAppend(&ids, ids.empty() ? "" : " ", run_id);
          }
          run.clear();
          points_in_run = 0;
        };
        for (size_t pi = 0; pi < s.points.size(); ++pi) {
          const auto& point = placed[pi];
          if (!point) {
            flush();
            continue;
          }
          if (points_in_run == 0) {
            run_id = s.points[pi].id;
            absl::StrAppend(&run, "M", Px1(point->first), ",", Px1(point->second));
          } else {
            if (s.step) absl::StrAppend(&run, "H", Px1(point->first));
            absl::StrAppend(&run, "L", Px1(point->first), ",", Px1(point->second));
          }
          ++points_in_run;
        }
        flush();
        if (!d.empty()) {
          absl::StrAppend(&out, "<path class=\"line", cls, "\" d=\"", d, "\" data-ids=\"", ids,
                          "\" fill=\"none\" stroke=\"", s.color, "\" stroke-width=\"1.8\"",
                          DashArray(s.line), "/>\n");
        }
      }
      if (s.marker != Marker::kNone) {
        std::string d, ids;
        for (size_t pi = 0; pi < s.points.size(); ++pi) {
          if (!placed[pi]) continue;
          absl::StrAppend(&d, MarkerPath(s.marker, placed[pi]->first, placed[pi]->second));
          absl::StrAppend(&ids, ids.empty() ? "" : " ", s.points[pi].id);
        }
        if (!d.empty()) {
          absl::StrAppend(&out, "<path class=\"points", cls, "\" d=\"", d, "\" data-ids=\"", ids,
                          "\"", MarkerPaint(s.marker, s.color, s.hollow), "/>\n");
        }
      }
      absl::StrAppend(&out, "</g>\n");
      continue;
    }
    if (s.line != Line::kNone) {
      std::string run;
      bool has_previous = false;
      double previous_y = 0;
      auto flush = [&] {
        if (!run.empty() && run.find(' ') != std::string::npos) {
          absl::StrAppend(&out, "<polyline class=\"line", cls, "\" points=\"", run,
                          "\" fill=\"none\" stroke=\"", s.color, "\" stroke-width=\"1.8\"",
                          DashArray(s.line), "/>\n");
        }
        run.clear();
        has_previous = false;
      };
      for (const auto& point : placed) {
        if (!point) {
          flush();
          continue;
        }
        if (has_previous && s.step) {
          absl::StrAppend(&run, " ", Px(point->first), ",", Px(previous_y));
        }
        absl::StrAppend(&run, run.empty() ? "" : " ", Px(point->first), ",", Px(point->second));
        has_previous = true;
        previous_y = point->second;
      }
      flush();
    }
    auto tip = [&](const Point& p) {
      return p.title.empty() ? absl::StrFormat("%g, %g", p.x, p.y) : p.title;
    };
    if (s.bars) {
      const Axis& y_axis = s.secondary_y && y2 ? *y2 : y;
      // Zero, or the axis end nearest to it when zero is outside the axis.
      double zero = y_axis.scale == Scale::kLog ? y_axis.lo : 0.0;
      zero = std::clamp(zero, std::min(y_axis.lo, y_axis.hi), std::max(y_axis.lo, y_axis.hi));
      const double base_y = *Map(y_axis, zero, true);
      const double width = categorical ? band_width * 0.6 : 10;
      for (size_t i = 0; i < s.points.size(); ++i) {
        if (!placed[i]) continue;
        const double top = std::min(placed[i]->second, base_y);
        absl::StrAppend(&out, "<rect class=\"bar", cls, "\" x=\"", Px(placed[i]->first - width / 2),
                        "\" y=\"", Px(top), "\" width=\"", Px(width), "\" height=\"",
                        Px(std::abs(placed[i]->second - base_y)), "\" fill=\"", s.color,
                        "\"><title>", Escape(tip(s.points[i])), "</title></rect>\n");
      }
    } else if (s.marker != Marker::kNone) {
      for (size_t i = 0; i < s.points.size(); ++i) {
        if (!placed[i]) continue;
        absl::StrAppend(&out, "<g class=\"point", cls, "\" transform=\"translate(",
                        Px(placed[i]->first), ",", Px(placed[i]->second), ")\">",
                        MarkerShape(s.marker, s.color, s.hollow), "<title>",
                        Escape(tip(s.points[i])), "</title></g>\n");
      }
    }
    absl::StrAppend(&out, "</g>\n");
  }

  // Legend: one row per named series at the right of the plot (and of the secondary axis); with a
  // secondary axis, one group per axis under a heading naming it.
  const double legend_left = right + (options_.y2 ? options_.margin_y2 : 0) + 12;
  const std::vector<LegendRow> rows = LegendRows();
  if (!rows.empty()) {
    const size_t fit = std::max<size_t>(1, static_cast<size_t>(frame.height / kLegendRow));
    absl::StrAppend(&out, "<g class=\"legend\">\n");
    bool in_group = false;
    for (size_t i = 0; i < rows.size(); ++i) {
      const double row_y = frame.top + 8 + kLegendRow * static_cast<double>(i);
      if (i + 1 == fit && rows.size() > fit) {
        size_t left_out = 0;
        for (size_t j = i; j < rows.size(); ++j) left_out += rows[j].series != nullptr;
        absl::StrAppend(&out, "<text x=\"", Px(legend_left), "\" y=\"", Px(row_y + 4),
                        "\" fill=\"#666666\">\xE2\x80\xA6 and ", left_out, " more</text>\n");
        break;
      }
      if (rows[i].series == nullptr) {
        if (in_group) absl::StrAppend(&out, "</g>\n");
        const bool secondary = rows[i].heading.rfind("right", 0) == 0;
        absl::StrAppend(&out, "<g class=\"legend-axis ", secondary ? "legend-y2" : "legend-y",
                        "\">\n<text class=\"legend-heading\" x=\"", Px(legend_left), "\" y=\"",
                        Px(row_y + 4), "\" font-weight=\"bold\">",
                        Escape(Truncate(rows[i].heading, 32)), "</text>\n");
        in_group = true;
        continue;
      }
      const Series& s = *rows[i].series;
      absl::StrAppend(&out, "<g class=\"legend-entry\">");
      if (s.bars) {
        absl::StrAppend(&out, "<rect x=\"", Px(legend_left + 5), "\" y=\"", Px(row_y - 5),
                        "\" width=\"12\" height=\"10\" fill=\"", s.color, "\"/>");
      } else {
        if (s.line != Line::kNone) {
          absl::StrAppend(&out, "<line x1=\"", Px(legend_left), "\" y1=\"", Px(row_y), "\" x2=\"",
                          Px(legend_left + 22), "\" y2=\"", Px(row_y), "\" stroke=\"", s.color,
                          "\" stroke-width=\"1.8\"", DashArray(s.line), "/>");
        }
        if (s.marker != Marker::kNone) {
          absl::StrAppend(&out, "<g transform=\"translate(", Px(legend_left + 11), ",", Px(row_y),
                          ")\">", MarkerShape(s.marker, s.color, s.hollow), "</g>");
        }
      }
      absl::StrAppend(&out, "<text x=\"", Px(legend_left + 28), "\" y=\"", Px(row_y + 4), "\">",
                      Escape(Truncate(s.name, 28)), "</text></g>\n");
    }
    if (in_group) absl::StrAppend(&out, "</g>\n");
    absl::StrAppend(&out, "</g>\n");
  }
  absl::StrAppend(&out, "</svg>\n");
  return out;
}

}  // namespace hpsearch::server::svg
