// The study report's pictures, as SVG documents (server/svg_plot.h):
//   - optimization_history.svg: each search trial's objective by trial number, with the best-so-far
//     line over complete trials;
//   - learning_curves.svg: every search trial's objective metric per epoch, one line per trial;
//   - trial_<N>_curves.svg: one trial's objective metric (left axis) and training / validation loss
//     (right axis) per epoch;
//   - param_<NAME>.svg: a searched parameter's value against the objective (log axis for log
//     parameters, integer ticks and jittered points for int ones, bands for categorical ones);
//   - importance.svg: each searched parameter's importance (server/report/importance.h) as a bar.
// Trials are drawn by state: complete as filled circles, pruned as hollow triangles at the value of
// their last reported epoch, failed as red crosses (on the x axis when they have no value), the
// best trial as a diamond. Pure functions of their input; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "hpsearch/v1/trial.pb.h"
#include "server/report/importance.h"

namespace hpsearch::server {

// Beyond this many search trials the per-trial charts (history, slices, learning curves, parallel
// coordinates) draw their trials compactly (svg::Series::compact: a few <path> elements whose
// data-ids name the trials, no per-point <title>): a browser lays out and paints each element, and
// 1,000 trials drawn one element each took seconds.
inline constexpr int kCompactChartTrials = 100;

struct ReportFigure {
  std::string file_name;  // e.g. "optimization_history.svg"
  std::string caption;    // alt text / caption for report.md
  std::string svg;
};

// `trials` as the report gets them: in number order, search and final together.
ReportFigure OptimizationHistoryFigure(const v1::Study& study,
                                       const std::vector<v1::Trial>& trials);
ReportFigure LearningCurvesFigure(const v1::Study& study, const std::vector<v1::Trial>& trials);
ReportFigure TrialCurvesFigure(const v1::Study& study, const v1::Trial& trial);
// One figure per search-space parameter, in search-space order.
std::vector<ReportFigure> ParameterFigures(const v1::Study& study,
                                           const std::vector<v1::Trial>& trials);

// The importances as bars, the most important at the left.
ReportFigure ImportanceFigure(const v1::Study& study, const StudyImportance& importance);

std::string TrialCurvesFileName(int trial_number);

}  // namespace hpsearch::server
