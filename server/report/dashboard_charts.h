// Study charts beyond report.md's own (server/report/report_charts.h), drawn by the same SVG
// writer so the dashboard, report.html and report.md share one renderer:
//   - metric_curves_<METRIC>.svg: one canonical per-epoch metric (train_loss, val_loss,
//     val_accuracy, val_f1, ...) of every search trial, one line per trial, running ones included
//     (beyond 30 trials without markers and legend entries, which would only add weight);
//   - parallel_coordinates.svg: every search trial as a polyline across one vertical axis per
//     searched parameter (log axes for log parameters, evenly spaced bands for categorical ones)
//     and a last axis for the objective; lines are coloured from worst (light) to best (dark), the
//     best trial drawn on top in green, trials without an objective left out.
// Every trial's line is a `<polyline class="line trial-N STATE">` with a `<title>` tooltip, so a
// page can find and highlight it; beyond kCompactChartTrials trials (report_charts.h) the lines are
// drawn compactly instead: a few `<path class="line ...">` elements, each with a subpath per trial
// (starting at its one "M") and `data-ids` naming those trials in order (curves: one path per
// colour and state; parallel coordinates: one per run of trials of one of 12 colour levels, the
// best trial still a polyline of its own). Pure functions of their input; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "hpsearch/v1/trial.pb.h"
#include "server/report/report_charts.h"

namespace hpsearch::server {

// `trials` as the report gets them: in number order, search and final together.
ReportFigure MetricCurvesFigure(const v1::Study& study, const std::vector<v1::Trial>& trials,
                                const std::string& metric);
ReportFigure ParallelCoordinatesFigure(const v1::Study& study,
                                       const std::vector<v1::Trial>& trials);

// The per-epoch metrics a dashboard draws curves of: the canonical ones some epoch of `trials`
// reports, in the order train_loss, val_loss, val_accuracy, val_f1, val_f1_macro.
std::vector<std::string> ReportedEpochMetrics(const std::vector<v1::Trial>& trials);

}  // namespace hpsearch::server
