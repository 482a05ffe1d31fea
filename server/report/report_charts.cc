#include "server/report/report_charts.h"

#include <algorithm>
#include <functional>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/report/report_format.h"
#include "server/report/svg_plot.h"
#include "server/study_file/study_view.h"

namespace hpsearch::server {
namespace {

constexpr char kCompleteColor[] = "#1f77b4";
constexpr char kPrunedColor[] = "#ff7f0e";
constexpr char kFailedColor[] = "#d62728";
constexpr char kBestColor[] = "#2ca02c";
constexpr char kUnfinishedColor[] = "#7f7f7f";

std::string ObjectiveLabel(const v1::StudySpec& spec) {
  return absl::StrCat(ObjectiveMetric(spec), " (",
                      MinimizeObjective(spec) ? "minimize" : "maximize", ")");
}

std::string ValueText(double v) { return absl::StrFormat("%.4f", v); }

std::string Tooltip(const v1::StudySpec& spec, const v1::Trial& trial,
                    std::optional<double> value) {
  std::string tip =
      absl::StrCat("trial ", trial.number(), " (", TrialStateWord(trial.state()), ")");
  for (const v1::ParamAssignment& p : trial.params()) {
    absl::StrAppend(&tip, ", ", p.name(), "=", ParamValueText(p.value()));
  }
  absl::StrAppend(&tip, ": ", ObjectiveMetric(spec), " ", value ? ValueText(*value) : "none");
  return tip;
}

// The search trials drawn by state, at x = x_of(trial) (trials without an x are left out). The best
// trial gets its own diamond on top.
void AddTrialsByState(const v1::Study& study, const std::vector<v1::Trial>& trials,
                      const std::function<std::optional<double>(const v1::Trial&)>& x_of,
                      svg::Plot* plot) {
  const v1::StudySpec& spec = study.spec();
  svg::Series complete, pruned, failed_with_value, failed_no_value, unfinished, best;
  complete.color = kCompleteColor;
  complete.css_class = "complete";
  pruned.color = kPrunedColor;
  pruned.marker = svg::Marker::kTriangle;
  pruned.hollow = true;
  pruned.css_class = "pruned";
  for (svg::Series* f : {&failed_with_value, &failed_no_value}) {
    f->color = kFailedColor;
    f->marker = svg::Marker::kCross;
    f->css_class = "failed";
  }
  failed_no_value.pin_bottom = true;
  unfinished.color = kUnfinishedColor;
  unfinished.hollow = true;
  unfinished.css_class = "unfinished";
  best.color = kBestColor;
  best.marker = svg::Marker::kDiamond;
  best.css_class = "best";
  for (svg::Series* s :
       {&complete, &pruned, &failed_with_value, &failed_no_value, &unfinished, &best}) {
    s->line = svg::Line::kNone;
  }
  int search_trials = 0;
  for (const v1::Trial& t : trials) search_trials += t.kind() == v1::TRIAL_KIND_SEARCH;
  const bool compact = search_trials > kCompactChartTrials;
  for (svg::Series* s : {&complete, &pruned, &failed_with_value, &failed_no_value, &unfinished}) {
    s->compact = compact;
  }
  for (const v1::Trial& t : trials) {
    if (t.kind() != v1::TRIAL_KIND_SEARCH) continue;
    std::optional<double> x = x_of(t);
    if (!x) continue;
    std::optional<double> value = PlottedObjective(spec, t);
    svg::Point point{*x, value.value_or(0), Tooltip(spec, t, value)};
    point.id = t.number();
    switch (t.state()) {
      case v1::TRIAL_STATE_COMPLETE:
        if (value) complete.points.push_back(point);
        if (value && study.has_best_trial_number() && study.best_trial_number() == t.number()) {
          best.points.push_back(point);
        }
        break;
      case v1::TRIAL_STATE_PRUNED:  // pruned at a reported epoch, so it normally has a value
        if (value) pruned.points.push_back(point);
        break;
      case v1::TRIAL_STATE_FAILED:
        (value ? failed_with_value : failed_no_value).points.push_back(point);
        break;
      default:
        if (value) unfinished.points.push_back(point);
    }
  }
  auto named = [](svg::Series* s, const std::string& what) {
    s->name = absl::StrCat(what, " (", s->points.size(), ")");
  };
  named(&complete, "complete");
  named(&pruned, "pruned, last epoch");
  const size_t failed_count = failed_with_value.points.size() + failed_no_value.points.size();
  failed_with_value.name = absl::StrCat("failed (", failed_count, ")");
  failed_no_value.name = failed_with_value.points.empty() ? failed_with_value.name : "";
  named(&unfinished, "unfinished");
  if (!best.points.empty()) best.name = absl::StrCat("best: trial ", study.best_trial_number());
  for (svg::Series* s :
       {&complete, &pruned, &failed_with_value, &failed_no_value, &unfinished, &best}) {
    if (!s->points.empty()) plot->Add(std::move(*s));
  }
}

int LastSearchTrialNumber(const std::vector<v1::Trial>& trials) {
  int last = 0;
  for (const v1::Trial& t : trials) {
    if (t.kind() == v1::TRIAL_KIND_SEARCH) last = std::max(last, t.number());
  }
  return last;
}

// A trial number / epoch axis: integer ticks with half a unit of room either side.
svg::AxisOptions CountAxis(const std::string& label, int first, int last) {
  svg::AxisOptions axis;
  axis.label = label;
  axis.min = first - 0.5;
  axis.max = std::max(first, last) + 0.5;
  axis.integer_ticks = true;
  return axis;
}

bool SameValue(const v1::ParamValue& a, const v1::ParamValue& b) {
  auto number = [](const v1::ParamValue& v) -> std::optional<double> {
    if (v.kind_case() == v1::ParamValue::kDoubleValue) return v.double_value();
    if (v.kind_case() == v1::ParamValue::kIntValue) return static_cast<double>(v.int_value());
    return std::nullopt;
  };
  if (number(a) && number(b)) return *number(a) == *number(b);
  if (a.kind_case() != b.kind_case()) return false;
  if (a.kind_case() == v1::ParamValue::kBoolValue) return a.bool_value() == b.bool_value();
  return a.string_value() == b.string_value();
}

std::optional<double> NumericValue(const v1::ParamValue& v) {
  if (v.kind_case() == v1::ParamValue::kDoubleValue) return v.double_value();
  if (v.kind_case() == v1::ParamValue::kIntValue) return static_cast<double>(v.int_value());
  return std::nullopt;
}

}  // namespace

std::string TrialCurvesFileName(int trial_number) {
  return absl::StrCat("trial_", trial_number, "_curves.svg");
}

ReportFigure OptimizationHistoryFigure(const v1::Study& study,
                                       const std::vector<v1::Trial>& trials) {
  const v1::StudySpec& spec = study.spec();
  svg::PlotOptions options;
  options.title = "Optimisation history";
  options.x = CountAxis("trial number", 0, LastSearchTrialNumber(trials));
  options.y.label = ObjectiveLabel(spec);
  options.empty_message = "no search trial has a value yet";
  svg::Plot plot(options);

  // Best so far over complete trials, in trial-number order, held to the last trial.
  svg::Series best_so_far;
  best_so_far.name = "best so far";
  best_so_far.color = kBestColor;
  best_so_far.marker = svg::Marker::kNone;
  best_so_far.step = true;
  best_so_far.css_class = "best-so-far";
  std::optional<double> best;
  for (const v1::Trial& t : trials) {
    if (t.kind() != v1::TRIAL_KIND_SEARCH || t.state() != v1::TRIAL_STATE_COMPLETE ||
        !t.has_objective_value()) {
      continue;
    }
    if (!best || BetterObjective(spec, t.objective_value(), *best)) best = t.objective_value();
    best_so_far.points.push_back({static_cast<double>(t.number()), *best, ""});
  }
  if (best && best_so_far.points.back().x < LastSearchTrialNumber(trials)) {
    best_so_far.points.push_back({static_cast<double>(LastSearchTrialNumber(trials)), *best, ""});
  }
  if (!best_so_far.points.empty()) plot.Add(std::move(best_so_far));
  AddTrialsByState(
      study, trials, [](const v1::Trial& t) { return static_cast<double>(t.number()); }, &plot);
  return {"optimization_history.svg",
          absl::StrCat("Optimisation history: ", ObjectiveMetric(spec),
                       " of each search trial and the best so far"),
          plot.Render()};
}

ReportFigure LearningCurvesFigure(const v1::Study& study, const std::vector<v1::Trial>& trials) {
  const v1::StudySpec& spec = study.spec();
  const std::string metric = ObjectiveMetric(spec);
  int max_epoch = 1;
  for (const v1::Trial& t : trials) {
    for (const v1::EpochMetrics& e : t.epochs()) max_epoch = std::max(max_epoch, e.epoch());
  }
  svg::PlotOptions options;
  options.title = absl::StrCat("Learning curves: ", metric, " per epoch");
  options.x = CountAxis("epoch", 1, max_epoch);
  options.y.label = metric;
  options.empty_message = absl::StrCat("no epoch has reported ", metric, " yet");
  svg::Plot plot(options);
  for (const v1::Trial& t : trials) {
    if (t.kind() != v1::TRIAL_KIND_SEARCH || t.epochs().empty()) continue;
    svg::Series s;
    s.color = svg::PaletteColor(t.number());
    s.name = absl::StrCat("trial ", t.number());
    s.css_class = absl::StrCat(TrialStateWord(t.state()), " trial-", t.number());
    switch (t.state()) {
      case v1::TRIAL_STATE_COMPLETE:
        break;
      case v1::TRIAL_STATE_PRUNED:
        s.line = svg::Line::kDashed;
        s.marker = svg::Marker::kTriangle;
        s.hollow = true;
        absl::StrAppend(&s.name, " (pruned)");
        break;
      case v1::TRIAL_STATE_FAILED:
        s.line = svg::Line::kDotted;
        s.marker = svg::Marker::kCross;
        absl::StrAppend(&s.name, " (failed)");
        break;
      default:
        s.line = svg::Line::kDotted;
        s.hollow = true;
        absl::StrAppend(&s.name, " (", TrialStateWord(t.state()), ")");
    }
    for (const v1::EpochMetrics& e : t.epochs()) {
      std::optional<double> v = MetricValue(e, metric);
      if (!v) continue;
      s.points.push_back({static_cast<double>(e.epoch()), *v,
                          absl::StrCat("trial ", t.number(), " epoch ", e.epoch(), ": ", metric,
                                       " ", ValueText(*v))});
    }
    plot.Add(std::move(s));
  }
  return {"learning_curves.svg",
          absl::StrCat("Learning curves: ", metric, " of every search trial per epoch"),
          plot.Render()};
}

ReportFigure TrialCurvesFigure(const v1::Study& study, const v1::Trial& trial) {
  const v1::StudySpec& spec = study.spec();
  const std::string metric = ObjectiveMetric(spec);
  const bool metric_is_loss = metric == "train_loss" || metric == "val_loss";
  int max_epoch = 1;
  for (const v1::EpochMetrics& e : trial.epochs()) max_epoch = std::max(max_epoch, e.epoch());
  svg::PlotOptions options;
  options.title = absl::StrCat(trial.kind() == v1::TRIAL_KIND_FINAL ? "Final trial " : "Trial ",
                               trial.number(), " (", TrialStateWord(trial.state()), ")");
  options.x = CountAxis("epoch", 1, max_epoch);
  options.empty_message = "no epoch reported";
  if (metric_is_loss) {
    options.y.label = "loss";
  } else {
    options.y.label = metric == "val_accuracy" ? "accuracy / F1" : metric;
    options.y2 = svg::AxisOptions{};
    options.y2->label = "loss";
  }
  svg::Plot plot(options);
  auto curve = [&](const std::string& name, const std::string& color, svg::Line line,
                   svg::Marker marker, bool secondary) {
    svg::Series s;
    s.name = name;
    s.color = color;
    s.line = line;
    s.marker = marker;
    s.secondary_y = secondary;
    s.css_class = name;
    for (const v1::EpochMetrics& e : trial.epochs()) {
      std::optional<double> v = MetricValue(e, name);
      if (v) {
        s.points.push_back({static_cast<double>(e.epoch()), *v,
                            absl::StrCat("epoch ", e.epoch(), ": ", name, " ", ValueText(*v))});
      }
    }
    if (!s.points.empty()) plot.Add(std::move(s));
  };
  if (!metric_is_loss) {
    curve(metric, kCompleteColor, svg::Line::kSolid, svg::Marker::kCircle, false);
    if (metric == "val_accuracy") {
      curve("val_f1", kBestColor, svg::Line::kDotted, svg::Marker::kDiamond, false);
    }
  }
  curve("train_loss", kPrunedColor, svg::Line::kDashed, svg::Marker::kSquare, !metric_is_loss);
  curve("val_loss", kFailedColor, svg::Line::kDotted, svg::Marker::kTriangle, !metric_is_loss);
  return {TrialCurvesFileName(trial.number()),
          absl::StrCat("Trial ", trial.number(), ": ", metric, " and losses per epoch"),
          plot.Render()};
}

ReportFigure ImportanceFigure(const v1::Study& study, const StudyImportance& importance) {
  const v1::StudySpec& spec = study.spec();
  svg::PlotOptions options;
  options.title = "Parameter importance (fANOVA)";
  options.x.label = "parameter";
  options.x.scale = svg::Scale::kCategorical;
  options.y.label = absl::StrCat("share of ", ObjectiveMetric(spec), " variance");
  options.y.min = 0;
  options.y.max = 1;
  options.empty_message = "no importance to show";
  svg::Series bars;
  bars.color = kCompleteColor;
  bars.bars = true;
  bars.line = svg::Line::kNone;
  bars.css_class = "importance";
  for (const ParameterImportance& p : importance.parameters) {
    bars.points.push_back({static_cast<double>(options.x.categories.size()), p.importance,
                           absl::StrFormat("%s: %.4f", p.name, p.importance)});
    options.x.categories.push_back(p.name);
  }
  svg::Plot plot(options);
  plot.Add(std::move(bars));
  return {"importance.svg",
          absl::StrCat("Parameter importance: the share of the variance of ", ObjectiveMetric(spec),
                       " each parameter explains (fANOVA over ", importance.trials_used,
                       " complete trials)"),
          plot.Render()};
}

std::vector<ReportFigure> ParameterFigures(const v1::Study& study,
                                           const std::vector<v1::Trial>& trials) {
  const v1::StudySpec& spec = study.spec();
  std::vector<ReportFigure> figures;
  for (const v1::ParameterSpec& p : spec.search_space()) {
    svg::PlotOptions options;
    options.title = absl::StrCat(p.name(), " vs ", ObjectiveMetric(spec));
    options.x.label = p.name();
    options.y.label = ObjectiveLabel(spec);
    options.empty_message = "no search trial has a value yet";
    std::function<std::optional<double>(const v1::ParamValue&)> x_of = NumericValue;
    if (p.has_categorical()) {
      options.x.scale = svg::Scale::kCategorical;
      for (const v1::ParamValue& c : p.categorical().choices()) {
        options.x.categories.push_back(ParamValueText(c));
      }
      const v1::CategoricalDistribution choices = p.categorical();
      x_of = [choices](const v1::ParamValue& v) -> std::optional<double> {
        for (int i = 0; i < choices.choices_size(); ++i) {
          if (SameValue(choices.choices(i), v)) return static_cast<double>(i);
        }
        return std::nullopt;
      };
    } else if ((p.has_float_range() && p.float_range().log()) ||
               (p.has_int_range() && p.int_range().log())) {
      options.x.scale = svg::Scale::kLog;
      options.x.integer_ticks = p.has_int_range();
      options.x.jitter = p.has_int_range();
    } else if (p.has_int_range()) {
      options.x.integer_ticks = true;
      options.x.jitter = true;
    }
    svg::Plot plot(options);
    const std::string name = p.name();
    AddTrialsByState(
        study, trials,
        [&](const v1::Trial& t) -> std::optional<double> {
          for (const v1::ParamAssignment& a : t.params()) {
            if (a.name() == name) return x_of(a.value());
          }
          return std::nullopt;
        },
        &plot);
    figures.push_back({absl::StrCat("param_", FileSafe(p.name()), ".svg"),
                       absl::StrCat(p.name(), " against ", ObjectiveMetric(spec), " per trial"),
                       plot.Render()});
  }
  return figures;
}

}  // namespace hpsearch::server
