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

// True for the states a trial (complete, pruned, failed) or a study (complete, failed, cancelled)
// never leaves.
bool TrialStateEnded(v1::TrialState state);
bool StudyStateEnded(v1::StudyState state);

// What the final trial does with the best search trial: final_stage.retrain_on (train when unset),
// except that `train` becomes `reuse` when the retrain would repeat the best trial exactly: the
// study runs the built-in trainer (deterministic for a seed: same data, split, seed, parameters and
// epochs give the same computation; on the CPU bit for bit at the same thread count, on a GPU up to
// the order of floating-point sums) and `source_model_stored` says the best trial's model is stored
// by the coordinator to evaluate instead, unless final_stage.reuse_if_exact is false. Command
// trials are never converted: their determinism is not known (they opt in with retrain_on: reuse).
// The coordinator (the final trial's spec) and the report (what the final stage did) both ask this.
v1::RetrainOn FinalRetrainOn(const v1::StudySpec& spec, bool source_model_stored);

// True when FinalRetrainOn turned `train` into `reuse`.
bool FinalRetrainConverted(const v1::StudySpec& spec, bool source_model_stored);

// What a final trial did, read from its record: true when it ended COMPLETE having reused its
// source trial's stored model (FinalRetrainOn could answer reuse, and it reported no epoch and no
// train summary, which no retrain completes without). `converted` (may be null) is set when
// `train` was the spec's word, i.e. the retrain would have repeated the source trial exactly.
bool FinalTrialReused(const v1::StudySpec& spec, const v1::Trial& final_trial, bool* converted);

// True when the study's trials run the built-in QLoRA trainer (runner type qlora, or unset, which
// means qlora): the one answer to "does this study need a model, data and training settings, and
// do its parameter names have to be the trainer's?". Every other runner kind (command, and any
// added later) brings its own training and answers no.
bool UsesBuiltInTrainer(const v1::StudySpec& spec);

}  // namespace hpsearch::server
