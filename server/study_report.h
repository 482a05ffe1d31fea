// Renders a study as report.md in the shape of the seed experiment's write-up: setup, each trial's
// parameters and per-epoch table, the best trial and why, the final retrain's epochs and training
// figures, and the test evaluation. Pure formatting over protos (they come from the results
// database or the coordinator); thread-safe.
#pragma once

#include <string>
#include <vector>

#include "hpsearch/v1/trial.pb.h"

namespace hpsearch::server {

// `trials` in number order, with their earlier attempts (TrialAttempt) where known.
std::string RenderStudyReport(const v1::Study& study, const std::vector<v1::Trial>& trials);

// "learning_rate" -> "Learning Rate".
std::string TitleCase(const std::string& snake);

}  // namespace hpsearch::server
