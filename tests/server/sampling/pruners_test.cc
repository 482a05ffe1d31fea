// Median, percentile and ASHA pruners on hand-made learning curves.
#include <catch2/catch.hpp>
#include <optional>

#include "server/sampling/asha_pruner.h"
#include "server/sampling/percentile_pruner.h"

namespace hpsearch::server {
namespace {

using Curve = std::vector<std::optional<double>>;

HistoryTrial Trial(int number, v1::TrialState state, Curve curve) {
  HistoryTrial t;
  t.number = number;
  t.state = state;
  t.epoch_values = std::move(curve);
  if (state == v1::TRIAL_STATE_COMPLETE && !t.epoch_values.empty()) {
    t.objective_value = t.epoch_values.back();
  }
  return t;
}

v1::StudySpec Spec(v1::PrunerType type, v1::Direction direction) {
  v1::StudySpec spec;
  spec.mutable_pruner()->set_type(type);
  spec.mutable_objective()->set_direction(direction);
  return spec;
}

bool Prune(Pruner* pruner, const v1::StudySpec& spec, const TrialHistory& history, int trial,
           int epoch) {
  PruneRequest request;
  request.spec = &spec;
  request.trial_number = trial;
  request.epoch = epoch;
  request.history = &history;
  return pruner->ShouldPrune(request);
}

// Five finished accuracy curves (maximised); medians per epoch: 0.5, 0.6, 0.7.
TrialHistory FiveComplete() {
  TrialHistory h;
  h.trials.push_back(Trial(0, v1::TRIAL_STATE_COMPLETE, {0.3, 0.4, 0.5}));
  h.trials.push_back(Trial(1, v1::TRIAL_STATE_COMPLETE, {0.4, 0.5, 0.6}));
  h.trials.push_back(Trial(2, v1::TRIAL_STATE_COMPLETE, {0.5, 0.6, 0.7}));
  h.trials.push_back(Trial(3, v1::TRIAL_STATE_COMPLETE, {0.6, 0.7, 0.8}));
  h.trials.push_back(Trial(4, v1::TRIAL_STATE_COMPLETE, {0.7, 0.8, 0.9}));
  return h;
}

TEST_CASE("Median pruner stops curves below the median and keeps the others", "[server][pruner]") {
  const v1::StudySpec spec = Spec(v1::PRUNER_TYPE_MEDIAN, v1::DIRECTION_MAXIMIZE);
  PercentilePruner pruner;
  TrialHistory h = FiveComplete();
  h.trials.push_back(Trial(5, v1::TRIAL_STATE_RUNNING, {0.45}));       // below 0.5
  h.trials.push_back(Trial(6, v1::TRIAL_STATE_RUNNING, {0.5}));        // at the median: kept
  h.trials.push_back(Trial(7, v1::TRIAL_STATE_RUNNING, {0.9, 0.55}));  // best so far counts
  CHECK(Prune(&pruner, spec, h, 5, 1));
  CHECK_FALSE(Prune(&pruner, spec, h, 6, 1));
  CHECK_FALSE(Prune(&pruner, spec, h, 7, 2));

  // Minimised losses: the same curves negated, so the same trials go.
  v1::StudySpec loss = Spec(v1::PRUNER_TYPE_MEDIAN, v1::DIRECTION_MINIMIZE);
  for (auto& t : h.trials) {
    for (auto& v : t.epoch_values) v = -*v;
  }
  CHECK(Prune(&pruner, loss, h, 5, 1));
  CHECK_FALSE(Prune(&pruner, loss, h, 6, 1));
}

TEST_CASE("Median pruner waits for start-up trials, warm-up epochs and its interval",
          "[server][pruner]") {
  v1::StudySpec spec = Spec(v1::PRUNER_TYPE_MEDIAN, v1::DIRECTION_MAXIMIZE);
  PercentilePruner pruner;
  TrialHistory h = FiveComplete();
  h.trials.push_back(Trial(5, v1::TRIAL_STATE_RUNNING, {0.1, 0.1, 0.1}));
  CHECK(Prune(&pruner, spec, h, 5, 1));
  spec.mutable_pruner()->set_n_startup_trials(6);  // only five are COMPLETE
  CHECK_FALSE(Prune(&pruner, spec, h, 5, 1));
  spec.mutable_pruner()->set_n_startup_trials(5);
  spec.mutable_pruner()->set_n_warmup_epochs(2);  // judged from epoch 3 on
  CHECK_FALSE(Prune(&pruner, spec, h, 5, 1));
  CHECK_FALSE(Prune(&pruner, spec, h, 5, 2));
  CHECK(Prune(&pruner, spec, h, 5, 3));
  spec.mutable_pruner()->set_n_warmup_epochs(0);
  spec.mutable_pruner()->set_interval_epochs(2);  // epochs 1, 3, 5, ...
  CHECK(Prune(&pruner, spec, h, 5, 1));
  CHECK_FALSE(Prune(&pruner, spec, h, 5, 2));
  CHECK(Prune(&pruner, spec, h, 5, 3));
  spec.mutable_pruner()->set_interval_epochs(1);
  spec.mutable_pruner()->set_n_min_trials(6);  // six trials must have reported the epoch
  CHECK_FALSE(Prune(&pruner, spec, h, 5, 1));
}

TEST_CASE("Running and pruned trials are not compared against, and unmeasured epochs are kept",
          "[server][pruner]") {
  const v1::StudySpec spec = Spec(v1::PRUNER_TYPE_MEDIAN, v1::DIRECTION_MAXIMIZE);
  PercentilePruner pruner;
  TrialHistory h = FiveComplete();
  // Many weak running and pruned trials do not drag the median down.
  for (int i = 0; i < 10; ++i) {
    h.trials.push_back(
        Trial(5 + i, i % 2 ? v1::TRIAL_STATE_PRUNED : v1::TRIAL_STATE_RUNNING, {0.0}));
  }
  h.trials.push_back(Trial(15, v1::TRIAL_STATE_RUNNING, {0.45}));
  CHECK(Prune(&pruner, spec, h, 15, 1));
  h.trials.push_back(Trial(16, v1::TRIAL_STATE_RUNNING, {std::nullopt}));
  CHECK_FALSE(Prune(&pruner, spec, h, 16, 1));
}

TEST_CASE("Percentile pruner keeps the best given percent", "[server][pruner]") {
  v1::StudySpec spec = Spec(v1::PRUNER_TYPE_PERCENTILE, v1::DIRECTION_MAXIMIZE);
  spec.mutable_pruner()->set_percentile(25);
  PercentilePruner pruner;
  TrialHistory h = FiveComplete();
  // Epoch-1 values 0.3 .. 0.7: keeping the best quarter means beating the upper quartile 0.6.
  h.trials.push_back(Trial(5, v1::TRIAL_STATE_RUNNING, {0.55}));  // above the median: pruned
  h.trials.push_back(Trial(6, v1::TRIAL_STATE_RUNNING, {0.61}));
  CHECK(Prune(&pruner, spec, h, 5, 1));
  CHECK_FALSE(Prune(&pruner, spec, h, 6, 1));
  // Minimised: the lower quartile is the bar.
  v1::StudySpec loss = Spec(v1::PRUNER_TYPE_PERCENTILE, v1::DIRECTION_MINIMIZE);
  loss.mutable_pruner()->set_percentile(25);
  CHECK(Prune(&pruner, loss, h, 5, 1));  // 0.55 > 0.4
  h.trials.push_back(Trial(7, v1::TRIAL_STATE_RUNNING, {0.39}));
  CHECK_FALSE(Prune(&pruner, loss, h, 7, 1));
  CHECK(Percentile({1, 2, 3, 4}, 50) == 2.5);
  CHECK(Percentile({0.3, 0.4, 0.5, 0.6, 0.7}, 75) == Approx(0.6));
}

// ASHA, reduction factor 3, rungs end at epochs 1, 3, 9.
TEST_CASE("ASHA keeps the best third at each rung, judging whoever arrived first",
          "[server][pruner]") {
  v1::StudySpec spec = Spec(v1::PRUNER_TYPE_ASHA, v1::DIRECTION_MAXIMIZE);
  AshaPruner pruner;
  TrialHistory h;
  // The first trial at rung 0 is alone: promoted.
  h.trials.push_back(Trial(0, v1::TRIAL_STATE_RUNNING, {0.5}));
  CHECK_FALSE(Prune(&pruner, spec, h, 0, 1));
  // The second must beat the first (fewer than 3 competitors: only the best goes on).
  h.trials.push_back(Trial(1, v1::TRIAL_STATE_RUNNING, {0.4}));
  CHECK(Prune(&pruner, spec, h, 1, 1));
  h.trials.push_back(Trial(2, v1::TRIAL_STATE_RUNNING, {0.6}));
  CHECK_FALSE(Prune(&pruner, spec, h, 2, 1));
  // Six at rung 0: the best two (0.6 and 0.7) are promoted; 0.55 is not.
  h.trials.push_back(Trial(3, v1::TRIAL_STATE_RUNNING, {0.2}));
  h.trials.push_back(Trial(4, v1::TRIAL_STATE_RUNNING, {0.7}));
  h.trials.push_back(Trial(5, v1::TRIAL_STATE_RUNNING, {0.55}));
  CHECK(Prune(&pruner, spec, h, 5, 1));
  CHECK_FALSE(Prune(&pruner, spec, h, 4, 1));
  // Epoch 2 ends no rung: never judged there.
  h.trials[4].epoch_values.push_back(0.0);
  CHECK_FALSE(Prune(&pruner, spec, h, 4, 2));
  // Rung 1 ends at epoch 3: trial 0 got there first; trial 4 must beat it.
  h.trials[0].epoch_values = {0.5, 0.6, 0.8};
  CHECK_FALSE(Prune(&pruner, spec, h, 0, 3));
  h.trials[4].epoch_values = {0.7, 0.0, 0.75};
  CHECK(Prune(&pruner, spec, h, 4, 3));
}

TEST_CASE("ASHA options: minimum resource, early-stopping rate, minimisation", "[server][pruner]") {
  v1::StudySpec spec = Spec(v1::PRUNER_TYPE_ASHA, v1::DIRECTION_MINIMIZE);
  spec.mutable_pruner()->set_min_resource(2);
  spec.mutable_pruner()->set_reduction_factor(2);
  AshaPruner pruner;
  TrialHistory h;
  h.trials.push_back(Trial(0, v1::TRIAL_STATE_COMPLETE, {1.0, 0.5, 0.4, 0.3}));
  h.trials.push_back(Trial(1, v1::TRIAL_STATE_RUNNING, {0.9, 0.8}));
  CHECK_FALSE(Prune(&pruner, spec, h, 1, 1));  // rungs end at 2, 4, 8
  CHECK(Prune(&pruner, spec, h, 1, 2));        // 0.8 loses to 0.5 (lower is better)
  h.trials[1].epoch_values = {0.9, 0.45};
  CHECK_FALSE(Prune(&pruner, spec, h, 1, 2));
  // min_early_stopping_rate 1: the first rung ends at 2 * 2 = 4.
  spec.mutable_pruner()->set_min_early_stopping_rate(1);
  h.trials[1].epoch_values = {0.9, 0.8};
  CHECK_FALSE(Prune(&pruner, spec, h, 1, 2));
  // A skipped rung epoch is judged at the next report, with that report's value.
  h.trials[1].epoch_values = {0.9, 0.8, std::nullopt, std::nullopt, 0.25};
  CHECK_FALSE(Prune(&pruner, spec, h, 1, 5));  // 0.25 beats trial 0's 0.3 at epoch 4
  h.trials[1].epoch_values = {0.9, 0.8, std::nullopt, std::nullopt, 0.6};
  CHECK(Prune(&pruner, spec, h, 1, 5));
}

TEST_CASE("Each pruner's verdict names its rule, the epoch, the value and the bar it missed",
          "[server][pruner]") {
  auto judge = [](Pruner* pruner, const v1::StudySpec& spec, const TrialHistory& history, int trial,
                  int epoch) {
    PruneRequest request;
    request.spec = &spec;
    request.trial_number = trial;
    request.epoch = epoch;
    request.history = &history;
    return pruner->Judge(request);
  };
  TrialHistory h = FiveComplete();
  h.trials.push_back(Trial(5, v1::TRIAL_STATE_RUNNING, {0.3, 0.45}));
  PercentilePruner curve;
  std::optional<PruneVerdict> median =
      judge(&curve, Spec(v1::PRUNER_TYPE_MEDIAN, v1::DIRECTION_MAXIMIZE), h, 5, 2);
  REQUIRE(median.has_value());
  CHECK(median->rule == "median of 5 complete trials at epoch 2");
  CHECK(median->epoch == 2);
  CHECK(median->value == 0.45);  // its best so far
  CHECK(median->threshold == Approx(0.6));
  v1::StudySpec quartile = Spec(v1::PRUNER_TYPE_PERCENTILE, v1::DIRECTION_MAXIMIZE);
  quartile.mutable_pruner()->set_percentile(25);
  std::optional<PruneVerdict> percentile = judge(&curve, quartile, h, 5, 2);
  REQUIRE(percentile.has_value());
  CHECK(percentile->rule == "percentile 25 of 5 complete trials at epoch 2");
  CHECK(percentile->threshold == Approx(0.7));
  CHECK_FALSE(judge(&curve, Spec(v1::PRUNER_TYPE_MEDIAN, v1::DIRECTION_MAXIMIZE), h, 4, 2));

  AshaPruner asha;
  TrialHistory rung;
  rung.trials.push_back(Trial(0, v1::TRIAL_STATE_RUNNING, {0.5}));
  rung.trials.push_back(Trial(1, v1::TRIAL_STATE_RUNNING, {0.4}));
  std::optional<PruneVerdict> verdict =
      judge(&asha, Spec(v1::PRUNER_TYPE_ASHA, v1::DIRECTION_MAXIMIZE), rung, 1, 1);
  REQUIRE(verdict.has_value());
  CHECK(verdict->rule == "asha: not in the best 1 of 2 trials at the rung ending at epoch 1");
  CHECK(verdict->epoch == 1);
  CHECK(verdict->value == 0.4);
  CHECK(verdict->threshold == 0.5);
}

}  // namespace
}  // namespace hpsearch::server
