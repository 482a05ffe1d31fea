// Text forms shared by the study report and its charts: parameter values, metric names, trial
// states, and the per-trial values the charts and tables plot. Pure functions over protos;
// thread-safe.
#pragma once

#include <optional>
#include <string>

#include "hpsearch/v1/study.pb.h"
#include "hpsearch/v1/trial.pb.h"

namespace hpsearch::server {

// "learning_rate" -> "Learning Rate"; the seed's names for the canonical metrics ("val_accuracy" ->
// "Accuracy", "val_f1" -> "F1 Score") and "epochs" -> "Number of Epochs".
std::string TitleCase(const std::string& snake);

// A parameter value as the seed writes it: doubles with `significant_digits` significant digits
// (5: 1.2454e-05, 0.0987), ints in full, bools as true/false, strings as they are.
std::string ParamValueText(const v1::ParamValue& value, int significant_digits = 5);

// "complete", "pruned", ... (the lower-case word of the enum).
std::string TrialStateWord(v1::TrialState state);

// The lower-case word of an enum value name without its prefix: ("SAMPLER_TYPE_TPE",
// "SAMPLER_TYPE_") -> "tpe".
std::string EnumWord(const std::string& enum_name, const std::string& prefix);

// The value a chart plots for a search trial: its stored objective, else (pruned, failed, running)
// the objective its reported epochs give under the study's rule; nullopt without one.
std::optional<double> PlottedObjective(const v1::StudySpec& spec, const v1::Trial& trial);

// Why a trial was pruned, in one line: "median of 4 complete trials at epoch 2: 0.61 missed the
// bar 0.7".
std::string PruneReasonText(const v1::PruneReason& reason);

// A file-name-safe form of a parameter name: [A-Za-z0-9_-] kept, anything else becomes '_'.
std::string FileSafe(const std::string& name);

}  // namespace hpsearch::server
