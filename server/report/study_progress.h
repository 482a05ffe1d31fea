// A study's progress as people read it: search trials ended and running, elapsed time and an ETA.
// The one home for these estimates: `hpsearch watch`/`run` draw them in the terminal and the
// dashboard shows them in the browser, both from the trials they read (over gRPC or from the file).
//
// How the ETA is formed:
//   - a running trial's remaining time comes from its progress row (the worker's own ETA, less the
//     time since the coordinator received it), else from the pace of its finished epochs and its
//     last epoch when known, else from the mean duration of ended trials less its time so far;
//   - trials not yet started take the mean duration of the ended search trials (or, before any
//     ended, that of the running ones as they project themselves);
//   - they run `parallelism` at a time: each takes the lane that frees first, unless the study's
//     time limit has passed by then (no trial starts after it);
//   - a final stage still to run adds the best (or, lacking one, a mean) search trial's duration,
//     unless it reuses the best trial's stored model (final_stage.retrain_on: reuse, or train made
//     reuse): that only evaluates, which is not counted.
// Nothing is known before a trial has ended or reported progress: the ETA is then absent.

#ifndef HPSEARCH_SERVER_REPORT_STUDY_PROGRESS_H_
#define HPSEARCH_SERVER_REPORT_STUDY_PROGRESS_H_

#include <optional>
#include <vector>

#include "absl/time/time.h"
#include "hpsearch/v1/trial.pb.h"

namespace hpsearch::server {

struct StudyProgress {
  int search_ended = 0;    // complete, pruned or failed search trials
  int search_running = 0;  // search trials running now
  int search_budget = 0;   // budget.n_trials
  double elapsed_seconds = 0;
  std::optional<double> eta_seconds;  // until the search and the final stage end; absent: unknown
};

// Seconds until a running trial's training ends; nullopt when nothing tells (or it is not running).
std::optional<double> TrialRemainingSeconds(const v1::StudySpec& spec, const v1::Trial& trial,
                                            absl::Time now);

// `trials` are every trial of `study`, search and final, in any order.
StudyProgress EstimateStudyProgress(const v1::Study& study,
                                    const std::vector<const v1::Trial*>& trials, absl::Time now);

}  // namespace hpsearch::server

#endif  // HPSEARCH_SERVER_REPORT_STUDY_PROGRESS_H_
