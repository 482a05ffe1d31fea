// A small, dependency-free SVG chart writer for the study report: one plot area with an x axis, a
// left y axis and an optional right (secondary) y axis, each linear, logarithmic or (x only)
// categorical; series drawn as lines, markers and/or bars; a legend (one group per y axis when
// there are two); text escaped. Output is a function
// of the input only (fixed number formatting, no clock, no randomness), so a report written twice
// is byte-identical.
//
// Data that cannot be drawn is left out, never drawn wrong: a point with a NaN or infinite
// coordinate, or a non-positive one on a log axis, is skipped (a line breaks there). A plot with
// nothing to draw still renders its frame and says so (PlotOptions::empty_message).
//
// Every drawn data point is a `<g class="point CLASS" transform="translate(X,Y)">` holding its
// marker and a `<title>` tooltip; lines are `<polyline class="line CLASS">` (a compact series,
// Series::compact, draws all its points and all its lines as one `<path>` each instead). Tests and
// tools can find points by that shape; a bar is a `<rect class="bar CLASS">` holding its `<title>`.
// On a categorical axis the points of one band are spread across it, and on an axis with `jitter`
// the points that would overlap at one value are spread sideways; either way points with the same
// non-empty tooltip share a place (a marker drawn over another).
//
// Tick labels (class "tick-label") never overlap: each axis takes the densest tick set whose
// labels, at an estimated 6.6 px per character (11 px sans-serif), keep 4 px apart (14 px between
// rows on a y axis); categorical labels are shortened to their band.
//
// Ownership: a Plot owns copies of its series. Thread-safety: a value type; distinct Plots may be
// used from different threads.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/report/svg_ticks.h"

namespace hpsearch::server::svg {

// Escapes & < > " ' for XML text and attribute values.
std::string Escape(std::string_view text);

enum class Scale {
  kLinear,
  kLog,          // REQUIRES positive data; others are skipped
  kCategorical,  // x only: value i is category i, drawn as a band; points in a band spread out
};

struct AxisOptions {
  std::string label;
  Scale scale = Scale::kLinear;
  // Fixed domain ends; unset ends come from the data (linear: widened to nice ticks; log: padded by
  // 5% of the range in log space).
  std::optional<double> min;
  std::optional<double> max;
  // Scale::kCategorical: the band labels; a point's coordinate is the band index.
  std::vector<std::string> categories;
  // Whole-number ticks (trial numbers, epochs, int parameters), never 0.5 steps. On a linear axis
  // an end taken from the data then lies half a unit beyond the outermost value; on a log axis the
  // ticks that are not whole numbers are left out.
  bool integer_ticks = false;
  // x only (not categorical): points at one x value that would overlap are spread sideways, a few
  // pixels each, in drawing order; the same input always gives the same places. For discrete
  // values (int parameters), where many trials share an x.
  bool jitter = false;
};

enum class Marker { kNone, kCircle, kSquare, kTriangle, kCross, kDiamond };
enum class Line { kNone, kSolid, kDashed, kDotted };

struct Point {
  Point() = default;
  Point(double x_value, double y_value, std::string tooltip = "")
      : x(x_value), y(y_value), title(std::move(tooltip)) {}
  double x = 0;
  double y = 0;
  std::string title;  // tooltip; empty: "x, y"
  int id = -1;        // what the point belongs to (a trial number), named by a compact series
};

struct Series {
  std::string name;  // legend entry; empty keeps it out of the legend
  std::string color = "#1f77b4";
  std::vector<Point> points;  // drawn in this order
  Line line = Line::kSolid;
  bool step = false;  // draw the line as steps: horizontal to the next x, then vertical
  Marker marker = Marker::kCircle;
  bool hollow = false;       // marker outline only
  bool secondary_y = false;  // against the right axis (PlotOptions::y2 must be set)
  // Ignore y and draw the points just above the x axis: values that exist on x but have no y (a
  // failed trial in a plot of objective values). Pinned points do not widen the y domain.
  bool pin_bottom = false;
  // Draw each point as a bar from the y axis's zero (its bottom when zero is outside it) instead of
  // a marker: 60% of the band wide on a categorical x axis, else 10 px. A linear y axis taken from
  // the data then includes zero.
  bool bars = false;
  std::string css_class;  // added to the class of the series' points and lines
  // Thousands of points as two elements (for a browser, which lays out and paints each element):
  // the lines as one `<path class="line CLASS">` with a subpath per unbroken run, the markers as
  // one `<path class="points CLASS">` with a subpath per point (the same shapes and paint), each
  // with `data-ids`: the Point::id of each subpath's (first) point, space-separated, in subpath
  // order. Every subpath opens with the path's only absolute moveto ("M") in it, so a page can
  // split the path there to find one point or run. No per-point <title>. Not for bars.
  bool compact = false;
};

struct PlotOptions {
  int width = 640;
  int height = 400;
  std::string title;
  AxisOptions x;
  AxisOptions y;
  std::optional<AxisOptions> y2;  // a right-hand axis for series with secondary_y
  std::string empty_message = "no data to plot";
  // Pixels around the plot area. The legend (when a series has a name) takes extra room at the
  // right; the secondary axis takes margin_y2 there. With y2, the legend has one group per axis,
  // headed "left axis: LABEL" and "right axis: LABEL", listing the series drawn against it.
  int margin_left = 64;
  int margin_right = 20;
  int margin_top = 36;
  int margin_bottom = 48;
  int margin_y2 = 56;
  int target_ticks = 6;
};

// The plot area in pixels, as Render() lays it out.
struct Frame {
  double left = 0;
  double top = 0;
  double width = 0;
  double height = 0;
};

class Plot {
 public:
  explicit Plot(PlotOptions options) : options_(std::move(options)) {}
  void Add(Series series) { series_.push_back(std::move(series)); }

  // The whole SVG document.
  std::string Render() const;

  // Geometry of Render(): the plot area and where a data value lands (nullopt when it is not
  // drawable on that axis). For tests and for callers that annotate.
  Frame PlotFrame() const;
  std::optional<double> XPixel(double x) const;
  std::optional<double> YPixel(double y, bool secondary = false) const;

 private:
  struct Axis {
    Scale scale = Scale::kLinear;
    double lo = 0;
    double hi = 1;
    std::vector<double> ticks;
    std::vector<std::string> labels;  // one per tick
    double step = 0.1;
    double origin = 0;  // the pixel of lo (left, or bottom when vertical)
    double length = 1;  // pixels from lo to hi
  };
  Axis ResolveAxis(const AxisOptions& options, int which) const;  // which: 0 x, 1 y, 2 y2
  // Whether `labels` at `ticks` of `axis` keep apart on a horizontal (x) or vertical axis.
  bool LabelsFit(const Axis& axis, const std::vector<double>& ticks,
                 const std::vector<std::string>& labels, bool horizontal) const;
  // The pixel of v on `axis` (horizontal or vertical), or nullopt when v is not finite, not
  // positive on a log axis, or outside the domain.
  std::optional<double> Map(const Axis& axis, double v, bool vertical) const;
  static bool InDomain(const Axis& axis, double v);
  struct LegendRow {
    const Series* series;  // nullptr: a heading naming an axis
    std::string heading;
  };
  std::vector<LegendRow> LegendRows() const;
  double LegendWidth() const;
  bool HasData(const Axis& x, const Axis& y, const std::optional<Axis>& y2) const;

  PlotOptions options_;
  std::vector<Series> series_;
};

// Ten distinct colours (matplotlib's tab10), cycled by index.
const std::string& PaletteColor(int index);

}  // namespace hpsearch::server::svg
