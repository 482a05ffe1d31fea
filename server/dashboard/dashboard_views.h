// What the dashboard shows, as JSON documents built from the results database's studies and trials
// (db::StoredStudy): the list of studies and one study in full with its SVG charts, drawn by the
// report's renderer (server/report/). The page's script (dashboard_page.h) only lays these out, so
// the live dashboard and the frozen report.html show the same thing.
//
// Pure functions of their input and `now` (elapsed time and ETA of running studies); thread-safe.
#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "db/results_store.h"
#include "nlohmann/json.hpp"

namespace hpsearch::dashboard {

// {"studies": [{id, name, state, metric, direction, budget_used, budget_total, best_trial,
//   best_value, elapsed_seconds, eta_seconds, counts}]}, in database order.
nlohmann::json StudiesView(const std::vector<db::StoredStudy>& studies, absl::Time now);

// One study's entry of StudiesView; StudyView holds the same fields.
nlohmann::json StudySummary(const db::StoredStudy& study, absl::Time now);

// One study: the summary fields of StudiesView, plus "params" (searched parameter names),
// "trials" (number, kind, state, params, objective, epochs with their metrics, attempts, worker,
// error), "charts" ([{id, title, svg}]: optimisation history, the learning curves of each
// reported per-epoch metric, parallel coordinates, one slice plot per parameter, parameter
// importance), "importance" ({parameters: [{name, importance}] most important first, trials_used,
// skipped_trials}, or {error} while too few trials are complete) and "final" (the
// final trial's train summary and test metrics, when there is one). With `final_artifact` (the
// final trial's stored adapter), "final" also lists its files with the URL that downloads each:
// api/artifact?study=ID&file=NAME.
nlohmann::json StudyView(const db::StoredStudy& study, absl::Time now,
                         const db::ArtifactRecord* final_artifact = nullptr);

}  // namespace hpsearch::dashboard
