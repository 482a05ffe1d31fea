#include "bench/parallel_sim.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "bench/test_functions.h"
#include "server/sampling/pruner.h"
#include "server/sampling/random_sampler.h"
#include "server/sampling/sampling_rng.h"
#include "server/sampling/tpe_sampler.h"

namespace hpsearch::bench {
namespace {

constexpr int kWorkers = 8;
constexpr int kMaxEpochs = 9;

const TestFunction& Function(const std::string& name) {
  for (const auto& fn : QualityFunctions()) {
    if (fn.name == name) return fn;
  }
  std::abort();
}

std::string Key(const std::vector<v1::ParamAssignment>& params) {
  std::string key;
  for (const auto& p : params) key += p.value().SerializeAsString() + "|";
  return key;
}

// A learning curve ending at f(x): a gap that shrinks epoch by epoch at a configuration-dependent
// rate, so early epochs rank trials well but not perfectly (curves cross).
double CurveValue(double final_value, const std::string& key, int epoch) {
  server::SamplingRng rng(server::NameHash(key));
  const double rate = 0.25 + 0.6 * rng.Uniform01();
  const double scale = 0.5 + rng.Uniform01();
  return final_value +
         1.5 * scale * std::exp(-rate * (epoch - 1)) * (epoch == kMaxEpochs ? 0.0 : 1.0);
}

struct SimResult {
  int trials = 0;
  int duplicates = 0;
  int epochs = 0;
  double best = HUGE_VAL;  // best COMPLETE value
};

struct SimConfig {
  const TestFunction* fn;
  uint64_t seed;
  int trials;
  bool tpe = true;
  bool constant_liar = true;
  v1::PrunerType pruner = v1::PRUNER_TYPE_NONE;
  int epochs_per_trial = 1;  // 1: a trial is one evaluation (no curve)
  int epoch_budget = 0;      // > 0: no trial starts once this many epochs are trained
};

SimResult Simulate(const SimConfig& config) {
  v1::StudySpec spec;
  spec.set_name("sim");
  spec.set_seed(config.seed);
  for (const auto& p : config.fn->space) *spec.add_search_space() = p;
  spec.mutable_objective()->set_direction(v1::DIRECTION_MINIMIZE);
  if (config.tpe) {
    spec.mutable_sampler()->set_type(v1::SAMPLER_TYPE_TPE);
    spec.mutable_sampler()->set_constant_liar(config.constant_liar);
  }
  spec.mutable_pruner()->set_type(config.pruner);
  std::unique_ptr<server::Sampler> sampler;
  if (config.tpe) {
    sampler = std::make_unique<server::TpeSampler>();
  } else {
    sampler = std::make_unique<server::RandomSampler>();
  }
  std::unique_ptr<server::Pruner> pruner = *server::MakePruner(spec);
  server::TrialHistory history;
  server::SamplingRng durations(config.seed * 7919 + 1);
  struct Running {
    int number;
    double next_epoch_at;
    double epoch_time;
    double final_value;
  };
  std::vector<Running> running;
  std::set<std::string> seen;
  SimResult result;
  auto start_trial = [&](double now) {
    const int number = static_cast<int>(history.trials.size());
    server::SampleRequest request;
    request.spec = &spec;
    request.trial_number = number;
    request.seed = server::SamplingSeed(config.seed, number);
    request.history = &history;
    auto params = sampler->Sample(request);
    if (!params.ok()) std::abort();
    if (!seen.insert(Key(*params)).second) ++result.duplicates;
    server::HistoryTrial t;
    t.number = number;
    t.state = v1::TRIAL_STATE_RUNNING;
    t.params = *params;
    history.trials.push_back(t);
    // Workers differ in speed, and so do trials: 0.5 .. 1.5 time units per epoch.
    const double epoch_time = 0.5 + durations.Uniform01();
    running.push_back(
        {number, now + epoch_time, epoch_time, config.fn->f(PointOf(*config.fn, *params))});
  };
  for (int w = 0; w < kWorkers && static_cast<int>(history.trials.size()) < config.trials; ++w) {
    start_trial(0.0);
  }
  while (!running.empty()) {
    auto it = std::min_element(
        running.begin(), running.end(),
        [](const Running& a, const Running& b) { return a.next_epoch_at < b.next_epoch_at; });
    Running r = *it;
    running.erase(it);
    server::HistoryTrial& t = history.trials[r.number];
    const int epoch = static_cast<int>(t.epoch_values.size()) + 1;
    const double value = config.epochs_per_trial == 1
                             ? r.final_value
                             : CurveValue(r.final_value, Key(t.params), epoch);
    t.epoch_values.push_back(value);
    ++result.epochs;
    bool ended = false;
    if (epoch >= config.epochs_per_trial) {
      t.state = v1::TRIAL_STATE_COMPLETE;
      t.objective_value = value;
      result.best = std::min(result.best, value);
      ended = true;
    } else {
      server::PruneRequest prune;
      prune.spec = &spec;
      prune.trial_number = r.number;
      prune.epoch = epoch;
      prune.history = &history;
      if (pruner->ShouldPrune(prune)) {
        t.state = v1::TRIAL_STATE_PRUNED;
        ended = true;
      }
    }
    if (!ended) {
      r.next_epoch_at += r.epoch_time;
      running.push_back(r);
    } else if (static_cast<int>(history.trials.size()) < config.trials &&
               (config.epoch_budget == 0 || result.epochs < config.epoch_budget)) {
      start_trial(r.next_epoch_at);
    }
  }
  result.trials = static_cast<int>(history.trials.size());
  return result;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

int ParallelSimulation(bool quick) {
  const int n_seeds = quick ? 2 : 20;
  const int trials = quick ? 32 : 64;
  std::printf(
      "simulated parallel study: %d workers, %d trials, trials of different lengths, "
      "median over %d seeds\n\n",
      kWorkers, trials, n_seeds);

  std::printf("constant liar, on branin_mixed (a discrete space of 16 x 31 points):\n\n");
  std::printf("| sampler | duplicate proposals | best value |\n|---|---|---|\n");
  struct Row {
    const char* name;
    bool tpe, liar;
  };
  for (const Row& row : {Row{"tpe, constant liar on (default)", true, true},
                         Row{"tpe, constant liar off", true, false}, Row{"random", false, false}}) {
    std::vector<double> duplicates, best;
    for (int s = 1; s <= n_seeds; ++s) {
      SimConfig config{&Function("branin_mixed"), static_cast<uint64_t>(s), trials};
      config.tpe = row.tpe;
      config.constant_liar = row.liar;
      SimResult r = Simulate(config);
      duplicates.push_back(r.duplicates);
      best.push_back(r.best);
    }
    std::printf("| %s | %.1f (max %.0f) | %.4g |\n", row.name, Median(duplicates),
                *std::max_element(duplicates.begin(), duplicates.end()), Median(best));
  }

  std::printf(
      "\npruners, on hartmann6_mixed with %d-epoch learning curves (tpe sampler), first "
      "%d trials, then as many trials as the epochs of no pruning allow:\n\n",
      kMaxEpochs, trials);
  std::printf(
      "| pruner | epochs for %d trials | saved | best complete value | trials in the same "
      "epochs | best complete value |\n|---|---|---|---|---|---|\n",
      trials);
  const int budget = trials * kMaxEpochs;
  for (auto [name, type] :
       {std::pair{"none", v1::PRUNER_TYPE_NONE}, std::pair{"median", v1::PRUNER_TYPE_MEDIAN},
        std::pair{"asha", v1::PRUNER_TYPE_ASHA}}) {
    std::vector<double> epochs, best, budget_trials, budget_best;
    for (int s = 1; s <= n_seeds; ++s) {
      SimConfig config{&Function("hartmann6_mixed"), static_cast<uint64_t>(s), trials};
      config.pruner = type;
      config.epochs_per_trial = kMaxEpochs;
      SimResult r = Simulate(config);
      epochs.push_back(r.epochs);
      best.push_back(r.best);
      config.trials = 100000;
      config.epoch_budget = budget;
      SimResult b = Simulate(config);
      budget_trials.push_back(b.trials);
      budget_best.push_back(b.best);
    }
    const double e = Median(epochs);
    std::printf("| %s | %.0f | %.0f%% | %.4g | %.0f | %.4g |\n", name, e, 100.0 * (1 - e / budget),
                Median(best), Median(budget_trials), Median(budget_best));
  }
  return 0;
}

}  // namespace hpsearch::bench
