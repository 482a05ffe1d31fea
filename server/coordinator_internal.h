// Private to the Coordinator's implementation files (coordinator*.cc): small helpers they share.
// Not part of the coordinator's contract; include only from those files.
#pragma once

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "base/closest_match.h"
#include "base/status_macros.h"
#include "db/results_store.h"
#include "hpsearch/v1/trial.pb.h"
#include "proto/canonical_metrics.h"
#include "server/study_file/study_view.h"

namespace hpsearch::server {

inline bool IsTerminal(v1::TrialState state) { return TrialStateEnded(state); }

inline bool StudyActive(v1::StudyState state) {
  return state == v1::STUDY_STATE_SEARCHING || state == v1::STUDY_STATE_FINALIZING;
}

// What a call naming an unknown study is told: INVALID_ARGUMENT when the name is empty (the field
// was not set), else NOT_FOUND with the names of the studies there are.
inline absl::Status UnknownStudyError(const std::string& id_or_name,
                                      const std::vector<std::string>& known) {
  if (id_or_name.empty()) {
    return absl::InvalidArgumentError("study: is empty; give a study's id or name");
  }
  return absl::NotFoundError(absl::StrCat("study: no study with id or name '", id_or_name, "'",
                                          KnownNamesHint(id_or_name, known)));
}

// True when `metrics` is the trial's last epoch: as its runner says, else as the spec and the
// trial's parameters say (TrialLastEpoch). A trial's last epoch is never pruned: pruning it would
// save nothing and take a finished trial out of the race for best.
inline bool IsLastEpoch(const v1::StudySpec& spec, const v1::Trial& trial,
                        const v1::EpochMetrics& metrics) {
  if (metrics.has_last()) return metrics.last();
  std::optional<int> last = TrialLastEpoch(spec, trial.params());
  return last.has_value() && metrics.epoch() >= *last;
}

inline std::string FormatSeconds(absl::Duration d) {
  return absl::StrFormat("%.3gs", absl::ToDoubleSeconds(d));
}

// What a late call on an ended lease is told about how it ended.
inline std::string EndedLeaseReason(const db::EndedLease& ended) {
  if (!ended.error.empty()) return ended.error;
  return absl::StrCat("trial ", ended.trial_number, " attempt ", ended.attempt, " ended ",
                      db::TrialStateName(ended.attempt_state));
}

// The trial state the end of that attempt produced: WAITING when it was retried.
inline v1::TrialState EndedTrialState(const db::EndedLease& ended) {
  if (ended.attempt_state == v1::TRIAL_STATE_FAILED && ended.trial_attempt > ended.attempt) {
    return v1::TRIAL_STATE_WAITING;
  }
  return ended.attempt_state;
}

// True when the lease's own holder ended it (CompleteTrial, FailTrial, Tell): a retry of that
// call, after a lost reply or a coordinator restart, gets the same answer again.
inline bool EndedByHolder(const db::EndedLease& ended) {
  return ended.ended_by == db::LeaseEnd::kWorker;
}

inline absl::Status CheckFinite(double value, int epoch, const std::string& name) {
  if (std::isfinite(value)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("epoch ", epoch, ": ", name, " is ", std::isnan(value) ? "NaN" : "infinite",
                   ": report only finite values (leave a metric out when it was not measured)"));
}

inline absl::Status ValidateEpochMetrics(const v1::EpochMetrics& m) {
  if (m.epoch() < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("epoch ", m.epoch(), " is not valid: epochs are numbered from 1"));
  }
  for (proto::MetricField field : proto::EpochMetricFields()) {
    if (std::optional<double> value = proto::GetMetric(m, field)) {
      HPSEARCH_RETURN_IF_ERROR(CheckFinite(*value, m.epoch(), field->name()));
    }
  }
  HPSEARCH_RETURN_IF_ERROR(CheckFinite(m.samples_per_second(), m.epoch(), "samples_per_second"));
  HPSEARCH_RETURN_IF_ERROR(CheckFinite(m.wall_time_seconds(), m.epoch(), "wall_time_seconds"));
  for (const auto& [name, value] : m.extra())
    HPSEARCH_RETURN_IF_ERROR(CheckFinite(value, m.epoch(), name));
  return absl::OkStatus();
}

}  // namespace hpsearch::server
