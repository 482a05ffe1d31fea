// TrialHistory: what samplers and pruners see of a study, kept up to date by the coordinator as
// trials change. Plain data with no gRPC or SQLite, so the algorithms of server/ are tested on
// their own.
#pragma once

#include <optional>
#include <vector>

#include "hpsearch/v1/study.pb.h"
#include "hpsearch/v1/trial.pb.h"

namespace hpsearch::server {

// One search trial as the algorithms see it.
struct HistoryTrial {
  int number = 0;
  v1::TrialState state = v1::TRIAL_STATE_WAITING;
  std::vector<v1::ParamAssignment> params;  // in search-space order
  // The objective of a COMPLETE trial (last or best epoch, as the study says); unset otherwise.
  std::optional<double> objective_value;
  // The objective metric of the current attempt at epochs 1, 2, ... (a value may be missing:
  // NaN-free because the coordinator refuses non-finite metrics, so an unmeasured epoch is
  // std::nullopt).
  std::vector<std::optional<double>> epoch_values;
};

// All search trials of one study, indexed by trial number (final trials are not part of the
// history).
struct TrialHistory {
  std::vector<HistoryTrial> trials;
};

}  // namespace hpsearch::server
