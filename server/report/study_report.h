// The study report: report.md in the shape of the seed experiment's write-up, and the SVG pictures
// it links (server/report_charts.h). Sections: Experimental Setup (model, method, data files and
// split sizes, search space, sampler, pruner, objective, budget, seed), Trial Results (every
// trial's parameters, state, attempts and per-epoch table, with its learning curves), Parameters vs
// Objective, Parameter Importance (server/report/importance.h: a table and a bar chart), Best Trial
// (which, and why: metric, direction, epoch rule, ties, runner-up), Final Model Training (epochs
// and the training figures; why validation columns are empty after a retrain on train +
// validation), Test Set Evaluation, Summary.
//
// Everything comes from the study and its trials as the results database stores them, so a report
// can be written at any time (also mid-study, and with the coordinator gone). Output is a function
// of the input only: the same database gives byte-identical files.
//
// Thread-safety: pure functions; WriteStudyReport writes only inside its directory.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "db/results_store.h"
#include "hpsearch/v1/trial.pb.h"
#include "server/report/report_charts.h"

namespace hpsearch::server {

struct StudyReport {
  std::string markdown;               // report.md
  std::vector<ReportFigure> figures;  // the SVG files report.md links, by file name
};

// `trials` in number order (search and final), with their earlier attempts (TrialAttempt) where
// known.
StudyReport BuildStudyReport(const v1::Study& study, const std::vector<v1::Trial>& trials);

// report.md alone.
std::string RenderStudyReport(const v1::Study& study, const std::vector<v1::Trial>& trials);

// Writes report.md and every figure into `dir` (created with its parents if missing). Each file is
// written to a temporary name and renamed, figures first, so report.md never links a missing or
// half-written picture. Returns the path of report.md, or an error naming the file that could not
// be written.
absl::StatusOr<std::string> WriteStudyReport(const StudyReport& report, const std::string& dir);

// Loads `study` (id or name) with its trials from the results database at `db_path`, opened
// read-only so a running coordinator is not disturbed. Errors: NOT_FOUND for a missing file, or
// for an unknown study with the names and ids of the studies the file holds; others as the store
// returns them.
absl::StatusOr<db::StoredStudy> LoadStudyFromDatabase(const std::string& db_path,
                                                      const std::string& study);

// Loads `study` as LoadStudyFromDatabase does and writes its report into `dir`, as `hpsearch report
// --db` does.
absl::StatusOr<std::string> WriteStudyReportFromDatabase(const std::string& db_path,
                                                         const std::string& study,
                                                         const std::string& dir);

}  // namespace hpsearch::server
