// Reads the values the coordinator acts on out of a StudySpec. The validator normally fills every
// default, but the coordinator never trusts that: an unset field reads as its documented default
// here, so a spec that skipped normalisation still schedules sensibly.
#pragma once

#include <optional>
#include <string>

#include "absl/time/time.h"
#include "google/protobuf/repeated_field.h"
#include "hpsearch/v1/study.pb.h"
#include "hpsearch/v1/trial.pb.h"

namespace hpsearch::server {

struct StudyBudget {
  int n_trials = 10;
  int parallelism = 1;
  int max_retries = 2;
  absl::Duration trial_timeout = absl::ZeroDuration();  // zero: none
  absl::Duration time_limit = absl::ZeroDuration();     // zero: none
  int max_failures = 0;  // search trials failed in a row that fail the study; 0: no limit
};

// budget.max_failures of a study submitted without one (a stored spec without the field has none).
inline constexpr int kDefaultMaxFailures = 5;

StudyBudget BudgetOf(const v1::StudySpec& spec);

// The objective metric ("val_accuracy" when unset) and whether smaller is better (explicit
// direction, else minimize for *_loss metrics).
std::string ObjectiveMetric(const v1::StudySpec& spec);
bool MinimizeObjective(const v1::StudySpec& spec);

// The named metric of one epoch: a canonical field or an `extra` entry; nullopt when not measured.
std::optional<double> MetricValue(const v1::EpochMetrics& epoch, const std::string& metric);

// The trial's objective from its epochs: the last epoch's value or the best one, as the spec says.
std::optional<double> TrialObjective(
    const v1::StudySpec& spec, const google::protobuf::RepeatedPtrField<v1::EpochMetrics>& epochs);

// The last epoch a search trial will train, when known: the trial's integer `epochs` parameter,
// else the built-in trainer's training.epochs, else pruner.max_epochs; nullopt when none says.
// (A runner that knows reports EpochMetrics.last itself, which wins over this.)
std::optional<int> TrialLastEpoch(
    const v1::StudySpec& spec,
    const google::protobuf::RepeatedPtrField<v1::ParamAssignment>& params);

// True when `candidate` beats `incumbent` in the study's direction.
bool BetterObjective(const v1::StudySpec& spec, double candidate, double incumbent);

bool FinalStageEnabled(const v1::StudySpec& spec);

// True when the study's trials run the built-in QLoRA trainer (runner type qlora, or unset, which
// means qlora): the one answer to "does this study need a model, data and training settings, and
// do its parameter names have to be the trainer's?". Every other runner kind (command, and any
// added later) brings its own training and answers no.
bool UsesBuiltInTrainer(const v1::StudySpec& spec);

}  // namespace hpsearch::server
