// The sections of report.md (server/study_report.h), one function each, appending markdown to
// *out. Internal to the report; pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hpsearch/v1/trial.pb.h"

namespace hpsearch::server {

// "## Experimental Setup": model, method, training values, data and split sizes, search space,
// sampler, pruner, objective, budget, seeds, final stage, times.
void AppendSetupSection(const v1::Study& study, const std::vector<v1::Trial>& trials,
                        std::string* out);

// A count a runner reported in its trial result's `extra` map (train_examples,
// validation_examples, test_examples, num_labels), from the first trial of `kind` that has it.
std::optional<int64_t> ReportedCount(const std::vector<v1::Trial>& trials, v1::TrialKind kind,
                                     const std::string& name);

}  // namespace hpsearch::server
