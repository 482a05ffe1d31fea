#include "server/report/dashboard_charts.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "server/report/report_format.h"
#include "server/report/svg_plot.h"
#include "server/study_file/study_view.h"

namespace hpsearch::server {
namespace {

constexpr const char* kEpochMetrics[] = {"train_loss", "val_loss", "val_accuracy", "val_f1",
                                         "val_f1_macro"};

constexpr int kMaxMarkedTrials = 30;

std::string Num(double v) { return absl::StrFormat("%.1f", v); }

std::optional<double> NumberOf(const v1::ParamValue& v) {
  if (v.kind_case() == v1::ParamValue::kDoubleValue) return v.double_value();
  if (v.kind_case() == v1::ParamValue::kIntValue) return static_cast<double>(v.int_value());
  return std::nullopt;
}

// One vertical axis of the parallel-coordinates chart: where a value lands, as a fraction of the
// axis height from the bottom (nullopt: not drawable).
struct PcAxis {
  std::string name;
  bool log = false;
  double lo = 0;
  double hi = 1;
  std::vector<std::string> categories;  // categorical: band i at i / (size - 1)

  std::optional<double> Fraction(double v) const {
    if (!categories.empty()) {
      if (categories.size() == 1) return 0.5;
      return v / static_cast<double>(categories.size() - 1);
    }
    if (!std::isfinite(v)) return std::nullopt;
    double a = lo, b = hi, x = v;
    if (log) {
      if (v <= 0 || lo <= 0 || hi <= 0) return std::nullopt;
      a = std::log10(lo);
      b = std::log10(hi);
      x = std::log10(v);
    }
    if (b <= a) return 0.5;
    return std::clamp((x - a) / (b - a), 0.0, 1.0);
  }
  std::string Label(double fraction) const {
    double v = log ? std::pow(10.0, std::log10(lo) + fraction * (std::log10(hi) - std::log10(lo)))
                   : lo + fraction * (hi - lo);
    return absl::StrFormat("%.4g", v);
  }
};

// Light blue (worst) to dark blue (best).
std::string QualityColor(double t) {
  t = std::clamp(t, 0.0, 1.0);
  const int r = static_cast<int>(std::lround(198 + t * (8 - 198)));
  const int g = static_cast<int>(std::lround(219 + t * (48 - 219)));
  const int b = static_cast<int>(std::lround(239 + t * (107 - 239)));
  return absl::StrFormat("#%02x%02x%02x", r, g, b);
}

}  // namespace

std::vector<std::string> ReportedEpochMetrics(const std::vector<v1::Trial>& trials) {
  std::vector<std::string> metrics;
  for (const char* metric : kEpochMetrics) {
    bool reported = false;
    for (const v1::Trial& t : trials) {
      for (const v1::EpochMetrics& e : t.epochs()) {
        if (MetricValue(e, metric)) reported = true;
      }
      if (reported) break;
    }
    if (reported) metrics.push_back(metric);
  }
  return metrics;
}

ReportFigure MetricCurvesFigure(const v1::Study& study, const std::vector<v1::Trial>& trials,
                                const std::string& metric) {
  (void)study;
  int max_epoch = 1;
  for (const v1::Trial& t : trials) {
    for (const v1::EpochMetrics& e : t.epochs()) max_epoch = std::max(max_epoch, e.epoch());
  }
  svg::PlotOptions options;
  options.title = absl::StrCat(TitleCase(metric), " per epoch");
  options.x.label = "epoch";
  options.x.min = 0.5;
  options.x.max = max_epoch + 0.5;
  options.x.integer_ticks = true;
  options.y.label = metric;
  options.empty_message = absl::StrCat("no epoch has reported ", metric, " yet");
  svg::Plot plot(options);
  // Beyond a few dozen trials a legend entry and a marker per epoch only add weight (a study of
  // 1,000 trials x 10 epochs would draw 10,000 markers): lines alone then.
  int drawn = 0;
  for (const v1::Trial& t : trials)
    drawn += t.kind() == v1::TRIAL_KIND_SEARCH && t.epochs_size() > 0;
  const bool many = drawn > kMaxMarkedTrials;
  // Compact (beyond kCompactChartTrials): the trials' lines merged into one series per colour and
  // state (a NaN point between trials breaks the line), each drawn as one <path>.
  const bool compact = drawn > kCompactChartTrials;
  std::map<std::pair<std::string, std::string>, svg::Series> merged;
  std::vector<std::pair<std::string, std::string>> merged_order;
  for (const v1::Trial& t : trials) {
    if (t.kind() != v1::TRIAL_KIND_SEARCH || t.epochs().empty()) continue;
    svg::Series s;
    s.color = svg::PaletteColor(t.number());
    s.name = absl::StrCat("trial ", t.number());
    s.css_class = absl::StrCat(TrialStateWord(t.state()), " trial-", t.number());
    if (t.state() == v1::TRIAL_STATE_PRUNED) {
      s.line = svg::Line::kDashed;
      s.marker = svg::Marker::kTriangle;
      s.hollow = true;
      absl::StrAppend(&s.name, " (pruned)");
    } else if (t.state() == v1::TRIAL_STATE_FAILED) {
      s.line = svg::Line::kDotted;
      s.marker = svg::Marker::kCross;
      absl::StrAppend(&s.name, " (failed)");
    } else if (t.state() != v1::TRIAL_STATE_COMPLETE) {
      s.line = svg::Line::kDotted;
      s.hollow = true;
      absl::StrAppend(&s.name, " (", TrialStateWord(t.state()), ")");
    }
    if (many) {
      s.name.clear();
      s.marker = svg::Marker::kNone;
    }
    for (const v1::EpochMetrics& e : t.epochs()) {
      std::optional<double> v = MetricValue(e, metric);
      if (!v) continue;
      s.points.push_back({static_cast<double>(e.epoch()), *v,
                          many ? std::string()
                               : absl::StrFormat("trial %d epoch %d: %s %.4f", t.number(),
                                                 e.epoch(), metric, *v)});
      s.points.back().id = t.number();
    }
    if (s.points.empty()) continue;
    if (!compact) {
      plot.Add(std::move(s));
      continue;
    }
    const std::pair<std::string, std::string> key{s.color, TrialStateWord(t.state())};
    auto [it, added] = merged.try_emplace(key);
    svg::Series& bucket = it->second;
    if (added) {
      merged_order.push_back(key);
      bucket = s;
      bucket.css_class = TrialStateWord(t.state());
      bucket.compact = true;
      bucket.points.clear();
    } else {
      svg::Point gap(std::nan(""), std::nan(""));
      bucket.points.push_back(gap);
    }
    bucket.points.insert(bucket.points.end(), s.points.begin(), s.points.end());
  }
  for (const auto& key : merged_order) plot.Add(std::move(merged[key]));
  return {absl::StrCat("metric_curves_", FileSafe(metric), ".svg"),
          absl::StrCat(metric, " of every search trial per epoch"), plot.Render()};
}

ReportFigure ParallelCoordinatesFigure(const v1::Study& study,
                                       const std::vector<v1::Trial>& trials) {
  const v1::StudySpec& spec = study.spec();
  const std::string metric = ObjectiveMetric(spec);
  const bool minimize = MinimizeObjective(spec);
  std::vector<PcAxis> axes;
  for (const v1::ParameterSpec& p : spec.search_space()) {
    PcAxis axis;
    axis.name = p.name();
    if (p.has_categorical()) {
      for (const v1::ParamValue& c : p.categorical().choices()) {
        axis.categories.push_back(ParamValueText(c));
      }
    } else if (p.has_int_range()) {
      axis.lo = static_cast<double>(p.int_range().low());
      axis.hi = static_cast<double>(p.int_range().high());
      axis.log = p.int_range().log();
    } else {
      axis.lo = p.float_range().low();
      axis.hi = p.float_range().high();
      axis.log = p.float_range().log();
    }
    axes.push_back(std::move(axis));
  }
  // The trials with an objective, and the objective axis over their values.
  struct Row {
    const v1::Trial* trial;
    double value;
  };
  std::vector<Row> rows;
  for (const v1::Trial& t : trials) {
    if (t.kind() != v1::TRIAL_KIND_SEARCH) continue;
    std::optional<double> value = PlottedObjective(spec, t);
    if (value && std::isfinite(*value)) rows.push_back({&t, *value});
  }
  PcAxis objective;
  objective.name = absl::StrCat(metric, minimize ? " (min)" : " (max)");
  if (!rows.empty()) {
    auto [lo, hi] = std::minmax_element(
        rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.value < b.value; });
    objective.lo = lo->value;
    objective.hi = hi->value;
  }
  axes.push_back(objective);

  const int width = std::max(480, 140 * static_cast<int>(axes.size()));
  const int height = 360;
  const double left = 60, right = 60, top = 48, bottom = 56;
  const double plot_h = height - top - bottom;
  auto axis_x = [&](size_t i) {
    if (axes.size() == 1) return width / 2.0;
    return left + (width - left - right) * static_cast<double>(i) / (axes.size() - 1);
  };
  auto y_of = [&](double fraction) { return top + plot_h * (1 - fraction); };

  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"parallel-coordinates\" width=\"%d\" "
      "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"11\">\n"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
      "<text x=\"%d\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">%s</text>\n",
      width, height, width, height, width / 2,
      svg::Escape(absl::StrCat("Parallel coordinates: parameters and ", metric)));
  if (rows.empty()) {
    absl::StrAppend(&svg, "<text x=\"", width / 2, "\" y=\"", height / 2,
                    "\" text-anchor=\"middle\" fill=\"#666\">no search trial has a value "
                    "yet</text>\n");
  }
  // Lines first (worst first, best last, so better trials are on top), then the axes over them.
  std::sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) {
    return minimize ? a.value > b.value : a.value < b.value;
  });
  // Compact (beyond kCompactChartTrials): the lines of consecutive trials of one of kQualityLevels
  // colours share one <path> (a subpath each, data-ids naming their trials); the best keeps its
  // own.
  constexpr int kQualityLevels = 12;
  const bool compact = static_cast<int>(rows.size()) > kCompactChartTrials;
  std::string bucket_d, bucket_ids;
  int bucket_level = -1;
  auto flush_bucket = [&] {
    if (!bucket_d.empty()) {
      absl::StrAppendFormat(&svg,
                            "<path class=\"line trials\" d=\"%s\" data-ids=\"%s\" fill=\"none\" "
                            "stroke=\"%s\" stroke-width=\"1.5\" stroke-opacity=\"0.85\"/>\n",
                            bucket_d, bucket_ids,
                            QualityColor((bucket_level + 0.5) / kQualityLevels));
    }
    bucket_d.clear();
    bucket_ids.clear();
  };
  for (const Row& row : rows) {
    const v1::Trial& t = *row.trial;
    std::string points;
    std::string tip = absl::StrCat("trial ", t.number(), " (", TrialStateWord(t.state()), ")");
    bool complete_line = true;
    for (size_t i = 0; i + 1 < axes.size(); ++i) {
      const PcAxis& axis = axes[i];
      std::optional<double> fraction;
      for (const v1::ParamAssignment& a : t.params()) {
        if (a.name() != axis.name) continue;
        absl::StrAppend(&tip, ", ", a.name(), "=", ParamValueText(a.value()));
        if (!axis.categories.empty()) {
          const std::string text = ParamValueText(a.value());
          for (size_t c = 0; c < axis.categories.size(); ++c) {
            if (axis.categories[c] == text) fraction = axis.Fraction(static_cast<double>(c));
          }
        } else if (std::optional<double> v = NumberOf(a.value())) {
          fraction = axis.Fraction(*v);
        }
      }
      if (!fraction) {
        complete_line = false;
        break;
      }
      absl::StrAppend(&points, Num(axis_x(i)), ",", Num(y_of(*fraction)), " ");
    }
    if (!complete_line) continue;
    absl::StrAppendFormat(&tip, ": %s %.4f", metric, row.value);
    const double quality = objective.hi > objective.lo ? (minimize ? (objective.hi - row.value)
                                                                   : (row.value - objective.lo)) /
                                                             (objective.hi - objective.lo)
                                                       : 1.0;
    const bool best = study.has_best_trial_number() && study.best_trial_number() == t.number() &&
                      t.state() == v1::TRIAL_STATE_COMPLETE;
    absl::StrAppend(&points, Num(axis_x(axes.size() - 1)), ",",
                    Num(y_of(*objective.Fraction(row.value))));
    if (compact && !best) {
      const int level = std::min(kQualityLevels - 1, static_cast<int>(quality * kQualityLevels));
      if (level != bucket_level) flush_bucket();
      bucket_level = level;
      absl::StrAppend(&bucket_d, "M", absl::StrReplaceAll(points, {{" ", "L"}}));
      absl::StrAppend(&bucket_ids, bucket_ids.empty() ? "" : " ", t.number());
      continue;
    }
    flush_bucket();
    absl::StrAppendFormat(
        &svg,
        "<polyline class=\"line trial-%d %s%s\" points=\"%s\" fill=\"none\" stroke=\"%s\" "
        "stroke-width=\"%s\" stroke-opacity=\"0.85\"><title>%s</title></polyline>\n",
        t.number(), TrialStateWord(t.state()), best ? " best" : "", points,
        best ? "#2ca02c" : QualityColor(quality), best ? "3" : "1.5", svg::Escape(tip));
  }
  flush_bucket();
  for (size_t i = 0; i < axes.size(); ++i) {
    const PcAxis& axis = axes[i];
    const double x = axis_x(i);
    absl::StrAppendFormat(&svg,
                          "<g class=\"axis\"><line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\" "
                          "stroke=\"#333\"/>\n<text x=\"%s\" y=\"%s\" text-anchor=\"middle\" "
                          "font-weight=\"bold\">%s</text>\n",
                          Num(x), Num(top), Num(x), Num(top + plot_h), Num(x),
                          Num(height - bottom + 36), svg::Escape(axis.name));
    auto tick = [&](double fraction, const std::string& label) {
      absl::StrAppendFormat(
          &svg,
          "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\" stroke=\"#333\"/>"
          "<text x=\"%s\" y=\"%s\" text-anchor=\"end\" fill=\"#333\" "
          "paint-order=\"stroke\" stroke=\"white\" stroke-width=\"3\">%s</text>\n",
          Num(x - 4), Num(y_of(fraction)), Num(x), Num(y_of(fraction)), Num(x - 6),
          Num(y_of(fraction) + 4), svg::Escape(label));
    };
    if (!axis.categories.empty()) {
      for (size_t c = 0; c < axis.categories.size(); ++c) {
        tick(*axis.Fraction(static_cast<double>(c)), axis.categories[c]);
      }
    } else if (i + 1 < axes.size() || !rows.empty()) {
      for (double f : {0.0, 0.5, 1.0}) tick(f, axis.Label(f));
    }
    absl::StrAppend(&svg, "</g>\n");
  }
  absl::StrAppend(&svg, "</svg>\n");
  return {
      "parallel_coordinates.svg",
      absl::StrCat("Parallel coordinates: each search trial across its parameters and ", metric),
      svg};
}

}  // namespace hpsearch::server
