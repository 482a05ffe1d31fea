// The command runner's output protocol: a trial command prints JSON lines on stdout, each with a
// "type" ("epoch", "train_summary", "test"); these turn one line into the message reported for it.
// Canonical metric names have their own fields; every other numeric field of an epoch or test line
// becomes an extra metric. Non-numeric fields are ignored.
#pragma once

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "hpsearch/v1/trial.pb.h"

namespace hpsearch::worker {

// {"type":"epoch","epoch":1,"val_accuracy":0.8,...}. `elapsed` (since the attempt started) is the
// wall time unless the line gives wall_time_seconds. InvalidArgument without an integer "epoch".
absl::StatusOr<v1::EpochMetrics> EpochFromJson(const nlohmann::json& line, absl::Duration elapsed);
// A progress line: {"type": "progress", "epoch": 2, "epochs": 4, "step": 120, "total_steps": 400,
// "samples_per_second": 41.2, "eta_seconds": 80}; every key optional, non-numbers ignored.
v1::TrialProgress ProgressFromJson(const nlohmann::json& line);

// {"type":"train_summary","global_steps":...,"train_loss":...,...}: the fields it knows, others
// ignored.
v1::TrainSummary TrainFromJson(const nlohmann::json& line);

// {"type":"test","test_accuracy":...,...}.
v1::TestMetrics TestFromJson(const nlohmann::json& line);

}  // namespace hpsearch::worker
