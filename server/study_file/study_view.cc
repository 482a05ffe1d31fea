#include "server/study_file/study_view.h"

#include "absl/strings/match.h"
#include "proto/canonical_metrics.h"

namespace hpsearch::server {

StudyBudget BudgetOf(const v1::StudySpec& spec) {
  StudyBudget budget;
  const v1::BudgetSpec& b = spec.budget();
  if (b.has_n_trials()) budget.n_trials = b.n_trials();
  if (b.has_parallelism() && b.parallelism() > 0) budget.parallelism = b.parallelism();
  if (b.has_max_retries()) budget.max_retries = std::max(0, b.max_retries());
  if (b.trial_timeout_seconds() > 0)
    budget.trial_timeout = absl::Seconds(b.trial_timeout_seconds());
  if (b.time_limit_seconds() > 0) budget.time_limit = absl::Seconds(b.time_limit_seconds());
  if (b.has_max_failures()) budget.max_failures = std::max(0, b.max_failures());
  return budget;
}

std::optional<int> TrialLastEpoch(
    const v1::StudySpec& spec,
    const google::protobuf::RepeatedPtrField<v1::ParamAssignment>& params) {
  for (const v1::ParamAssignment& param : params) {
    if (param.name() == "epochs" && param.value().has_int_value()) {
      return static_cast<int>(param.value().int_value());
    }
  }
  if (UsesBuiltInTrainer(spec) && spec.training().has_epochs()) return spec.training().epochs();
  if (spec.pruner().has_max_epochs()) return spec.pruner().max_epochs();
  return std::nullopt;
}

std::string ObjectiveMetric(const v1::StudySpec& spec) {
  return spec.objective().metric().empty() ? "val_accuracy" : spec.objective().metric();
}

bool MinimizeObjective(const v1::StudySpec& spec) {
  switch (spec.objective().direction()) {
    case v1::DIRECTION_MINIMIZE:
      return true;
    case v1::DIRECTION_MAXIMIZE:
      return false;
    default:
      return absl::EndsWith(ObjectiveMetric(spec), "_loss");
  }
}

std::optional<double> MetricValue(const v1::EpochMetrics& epoch, const std::string& metric) {
  if (proto::MetricField field = proto::FindEpochMetric(metric))
    return proto::GetMetric(epoch, field);
  auto it = epoch.extra().find(metric);
  if (it != epoch.extra().end()) return it->second;
  return std::nullopt;
}

std::optional<double> TrialObjective(
    const v1::StudySpec& spec, const google::protobuf::RepeatedPtrField<v1::EpochMetrics>& epochs) {
  const std::string metric = ObjectiveMetric(spec);
  if (spec.objective().from_epoch() == v1::EPOCH_SELECTION_BEST) {
    std::optional<double> best;
    for (const v1::EpochMetrics& epoch : epochs) {
      std::optional<double> value = MetricValue(epoch, metric);
      if (value && (!best || BetterObjective(spec, *value, *best))) best = value;
    }
    return best;
  }
  if (epochs.empty()) return std::nullopt;
  return MetricValue(epochs[epochs.size() - 1], metric);
}

bool BetterObjective(const v1::StudySpec& spec, double candidate, double incumbent) {
  return MinimizeObjective(spec) ? candidate < incumbent : candidate > incumbent;
}

bool UsesBuiltInTrainer(const v1::StudySpec& spec) {
  return spec.runner().type() == v1::RUNNER_TYPE_QLORA ||
         spec.runner().type() == v1::RUNNER_TYPE_UNSPECIFIED;
}

bool TrialStateEnded(v1::TrialState state) {
  return state == v1::TRIAL_STATE_COMPLETE || state == v1::TRIAL_STATE_PRUNED ||
         state == v1::TRIAL_STATE_FAILED;
}

bool StudyStateEnded(v1::StudyState state) {
  return state == v1::STUDY_STATE_COMPLETE || state == v1::STUDY_STATE_FAILED ||
         state == v1::STUDY_STATE_CANCELLED;
}

bool FinalStageEnabled(const v1::StudySpec& spec) {
  return !spec.final_stage().has_enabled() || spec.final_stage().enabled();
}

v1::RetrainOn FinalRetrainOn(const v1::StudySpec& spec, bool source_model_stored) {
  const v1::RetrainOn asked = spec.final_stage().retrain_on() == v1::RETRAIN_ON_UNSPECIFIED
                                  ? v1::RETRAIN_ON_TRAIN
                                  : spec.final_stage().retrain_on();
  const bool allowed =
      !spec.final_stage().has_reuse_if_exact() || spec.final_stage().reuse_if_exact();
  if (asked == v1::RETRAIN_ON_TRAIN && allowed && UsesBuiltInTrainer(spec) && source_model_stored) {
    return v1::RETRAIN_ON_REUSE;
  }
  return asked;
}

bool FinalRetrainConverted(const v1::StudySpec& spec, bool source_model_stored) {
  return FinalRetrainOn(spec, source_model_stored) == v1::RETRAIN_ON_REUSE &&
         spec.final_stage().retrain_on() != v1::RETRAIN_ON_REUSE;
}

bool FinalTrialReused(const v1::StudySpec& spec, const v1::Trial& final_trial, bool* converted) {
  const bool reused = final_trial.kind() == v1::TRIAL_KIND_FINAL &&
                      final_trial.state() == v1::TRIAL_STATE_COMPLETE &&
                      final_trial.epochs_size() == 0 && !final_trial.result().has_train() &&
                      FinalRetrainOn(spec, /*source_model_stored=*/true) == v1::RETRAIN_ON_REUSE;
  if (converted != nullptr) {
    *converted = reused && spec.final_stage().retrain_on() != v1::RETRAIN_ON_REUSE;
  }
  return reused;
}

}  // namespace hpsearch::server
