#include "server/sampling/tpe_sampler.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <optional>
#include <set>

#include "server/sampling/random_sampler.h"

namespace hpsearch::server {
namespace {

v1::ParameterSpec* AddFloat(v1::StudySpec* spec, const std::string& name, double low, double high,
                            bool log = false) {
  auto* p = spec->add_search_space();
  p->set_name(name);
  p->mutable_float_range()->set_low(low);
  p->mutable_float_range()->set_high(high);
  p->mutable_float_range()->set_log(log);
  return p;
}

v1::ParameterSpec* AddInt(v1::StudySpec* spec, const std::string& name, int64_t low, int64_t high,
                          int64_t step = 1) {
  auto* p = spec->add_search_space();
  p->set_name(name);
  p->mutable_int_range()->set_low(low);
  p->mutable_int_range()->set_high(high);
  p->mutable_int_range()->set_step(step);
  return p;
}

v1::ParameterSpec* AddChoices(v1::StudySpec* spec, const std::string& name,
                              std::vector<std::string> choices) {
  auto* p = spec->add_search_space();
  p->set_name(name);
  for (const auto& c : choices) p->mutable_categorical()->add_choices()->set_string_value(c);
  return p;
}

v1::StudySpec TpeSpec(uint64_t seed) {
  v1::StudySpec spec;
  spec.set_name("t");
  spec.set_seed(seed);
  spec.mutable_sampler()->set_type(v1::SAMPLER_TYPE_TPE);
  spec.mutable_objective()->set_direction(v1::DIRECTION_MINIMIZE);
  return spec;
}

double Number(const v1::ParamValue& v) {
  return v.kind_case() == v1::ParamValue::kIntValue ? static_cast<double>(v.int_value())
                                                    : v.double_value();
}

std::vector<v1::ParamAssignment> Ask(Sampler* sampler, const v1::StudySpec& spec,
                                     const TrialHistory& history, int number) {
  SampleRequest request;
  request.spec = &spec;
  request.trial_number = number;
  request.seed = SamplingSeed(spec.seed(), number);
  request.history = &history;
  auto params = sampler->Sample(request);
  REQUIRE(params.ok());
  return *params;
}

void AddTrial(TrialHistory* history, std::vector<v1::ParamAssignment> params, v1::TrialState state,
              std::optional<double> value) {
  HistoryTrial t;
  t.number = static_cast<int>(history->trials.size());
  t.state = state;
  t.params = std::move(params);
  t.objective_value = value;
  history->trials.push_back(std::move(t));
}

using Objective = std::function<double(const std::vector<v1::ParamAssignment>&)>;

// Runs `n` sequential trials; returns the best value.
double Optimize(Sampler* sampler, const v1::StudySpec& spec, const Objective& f, int n,
                TrialHistory* history) {
  double best = HUGE_VAL;
  for (int i = 0; i < n; ++i) {
    auto params = Ask(sampler, spec, *history, i);
    const double value = f(params);
    best = std::min(best, value);
    AddTrial(history, params, v1::TRIAL_STATE_COMPLETE, value);
  }
  return best;
}

std::string Key(const std::vector<v1::ParamAssignment>& params) {
  std::string key;
  for (const auto& p : params) key += p.value().SerializeAsString() + "|";
  return key;
}

TEST_CASE("TPE: identical seed and history give the identical suggestion", "[server][tpe]") {
  v1::StudySpec spec = TpeSpec(5);
  AddFloat(&spec, "lr", 1e-5, 1e-2, true);
  AddInt(&spec, "epochs", 1, 8);
  AddChoices(&spec, "opt", {"adamw", "sgd"});
  auto f = [](const std::vector<v1::ParamAssignment>& p) {
    return std::pow(std::log10(p[0].value().double_value()) + 3.5, 2) +
           0.1 * p[1].value().int_value() + (p[2].value().string_value() == "sgd");
  };
  TpeSampler sampler;
  TrialHistory history;
  Optimize(&sampler, spec, f, 20, &history);
  TpeSampler other;
  auto a = Ask(&sampler, spec, history, 20);
  auto b = Ask(&other, spec, history, 20);
  CHECK(Key(a) == Key(b));
  CHECK(Key(a) != Key(Ask(&sampler, spec, history, 21)));  // another trial's seed
  v1::StudySpec reseeded = spec;
  reseeded.set_seed(6);
  CHECK(Key(a) != Key(Ask(&sampler, reseeded, history, 20)));
}

TEST_CASE("TPE: the bandwidth floor shrinks after 50 finished trials, to late_bandwidth_floor",
          "[server][tpe]") {
  CHECK(BandwidthFloorAt(0.6, 0.3, 10) == 0.6);
  CHECK(BandwidthFloorAt(0.6, 0.3, 50) == 0.6);
  CHECK(BandwidthFloorAt(0.6, 0.3, 75) == Approx(0.4));
  CHECK(BandwidthFloorAt(0.6, 0.3, 100) == Approx(0.3));
  CHECK(BandwidthFloorAt(0.6, 0.3, 400) == 0.3);
  CHECK(BandwidthFloorAt(1.0, 1.0, 400) == 1.0);  // Optuna's clip throughout

  // In the sampler: with 75 finished trials the default floors (0.6, shrinking to 0.3) ask what a
  // fixed floor of 0.6 * 50 / 75 asks; with 40, what a fixed 0.6 asks.
  auto with_floors = [](double floor, double late) {
    v1::StudySpec spec = TpeSpec(3);
    AddFloat(&spec, "x", -2, 2);
    AddInt(&spec, "n", 0, 400);
    spec.mutable_sampler()->set_bandwidth_floor(floor);
    spec.mutable_sampler()->set_late_bandwidth_floor(late);
    return spec;
  };
  auto f = [](const std::vector<v1::ParamAssignment>& p) {
    return std::pow(p[0].value().double_value() - 0.3, 2) + std::abs(p[1].value().int_value() - 90);
  };
  for (int n : {40, 75}) {
    INFO(n << " finished trials");
    const v1::StudySpec shrinking = with_floors(0.6, 0.3);
    const double at = n <= 50 ? 0.6 : 0.6 * 50 / n;
    const v1::StudySpec fixed = with_floors(at, at);
    TpeSampler sampler;
    TrialHistory history;
    Optimize(&sampler, shrinking, f, n, &history);
    const std::string shrunk = Key(Ask(&sampler, shrinking, history, n));
    CHECK(shrunk == Key(Ask(&sampler, fixed, history, n)));
    if (n > 50) CHECK(shrunk != Key(Ask(&sampler, with_floors(0.6, 0.6), history, n)));
  }
}

TEST_CASE("TPE: from 30 finished trials on, observation weights ramp beyond late_weight_window",
          "[server][tpe]") {
  auto with_window = [](int window) {
    v1::StudySpec spec = TpeSpec(4);
    AddFloat(&spec, "x", -2, 2);
    AddInt(&spec, "n", 0, 400);
    spec.mutable_sampler()->set_late_weight_window(window);
    return spec;
  };
  auto f = [](const std::vector<v1::ParamAssignment>& p) {
    return std::pow(p[0].value().double_value() - 0.3, 2) + std::abs(p[1].value().int_value() - 90);
  };
  // Unset, the window is the default 10.
  v1::StudySpec unset = with_window(10);
  unset.mutable_sampler()->clear_late_weight_window();
  for (int n : {29, 40}) {
    INFO(n << " finished trials");
    TpeSampler sampler;
    TrialHistory history;
    Optimize(&sampler, with_window(10), f, n, &history);
    const std::string ten = Key(Ask(&sampler, with_window(10), history, n));
    CHECK(ten == Key(Ask(&sampler, unset, history, n)));
    // Before 30 trials every window is Optuna's 25; from 30 on (the bad group holds 36) it tells.
    const std::string optunas = Key(Ask(&sampler, with_window(25), history, n));
    if (n < kWindowShrinkFrom) {
      CHECK(ten == optunas);
    } else {
      CHECK(ten != optunas);
    }
  }
}

// The slices of `slices` equal parts of each parameter's range that trials' values fall in, per
// parameter (x: float in [-1, 1]; n: int in [0, 799]; lr: log float in [1e-6, 1e-2]).
std::vector<std::vector<int>> StartupSlices(
    const std::vector<std::vector<v1::ParamAssignment>>& asks, int slices) {
  std::vector<std::vector<int>> count(3, std::vector<int>(slices, 0));
  for (const auto& params : asks) {
    ++count[0][static_cast<int>((params[0].value().double_value() + 1) / 2 * slices)];
    ++count[1][static_cast<int>(params[1].value().int_value() * slices / 800)];
    ++count[2][static_cast<int>((std::log10(params[2].value().double_value()) + 6) / 4 * slices)];
  }
  return count;
}

v1::StudySpec StartupSpec(uint64_t seed, v1::StartupDesign design) {
  v1::StudySpec spec = TpeSpec(seed);
  if (design != v1::STARTUP_DESIGN_UNSPECIFIED) spec.mutable_sampler()->set_startup(design);
  AddFloat(&spec, "x", -1, 1);
  AddInt(&spec, "n", 0, 799);
  AddFloat(&spec, "lr", 1e-6, 1e-2, true);
  return spec;
}

// The first `n` asks of a study whose trials all fail, so every ask is a start-up ask.
std::vector<std::vector<v1::ParamAssignment>> StartupAsks(const v1::StudySpec& spec, int n) {
  TpeSampler tpe;
  TrialHistory history;
  std::vector<std::vector<v1::ParamAssignment>> asks;
  for (int i = 0; i < n; ++i) {
    asks.push_back(Ask(&tpe, spec, history, i));
    AddTrial(&history, asks.back(), v1::TRIAL_STATE_FAILED, std::nullopt);
  }
  return asks;
}

TEST_CASE("TPE: start-up trials form a Latin hypercube by default", "[server][tpe]") {
  // Each block of n_startup_trials (10) trials puts exactly one value in each tenth of every
  // parameter's range; independent draws would leave about a third of the tenths empty.
  for (uint64_t seed : {1, 2, 3}) {
    const v1::StudySpec spec = StartupSpec(seed, v1::STARTUP_DESIGN_UNSPECIFIED);
    const auto asks = StartupAsks(spec, 20);
    const std::vector<std::vector<int>> once(3, std::vector<int>(10, 1));
    CHECK(StartupSlices({asks.begin(), asks.begin() + 10}, 10) == once);
    CHECK(StartupSlices({asks.begin() + 10, asks.end()}, 10) == once);  // the next block
    // The parameters are paired at random, not in step: x's and n's slice orders differ.
    std::vector<int> x_order, n_order;
    for (int i = 0; i < 10; ++i) {
      x_order.push_back(static_cast<int>((asks[i][0].value().double_value() + 1) / 2 * 10));
      n_order.push_back(static_cast<int>(asks[i][1].value().int_value() / 80));
    }
    CHECK(x_order != n_order);
  }
  // Another seed, another design; n_startup_trials sets the number of slices.
  TpeSampler tpe;
  TrialHistory empty;
  CHECK(Key(Ask(&tpe, StartupSpec(1, v1::STARTUP_DESIGN_UNSPECIFIED), empty, 0)) !=
        Key(Ask(&tpe, StartupSpec(2, v1::STARTUP_DESIGN_UNSPECIFIED), empty, 0)));
  v1::StudySpec four = StartupSpec(4, v1::STARTUP_DESIGN_LATIN_HYPERCUBE);
  four.mutable_sampler()->set_n_startup_trials(4);
  const auto asks = StartupAsks(four, 4);
  CHECK(StartupSlices(asks, 4) == std::vector<std::vector<int>>(3, std::vector<int>(4, 1)));
}

TEST_CASE("TPE: start-up designs sobol and random", "[server][tpe]") {
  // Sobol: the first 8 put exactly one value in each eighth of every parameter's range.
  for (uint64_t seed : {1, 2, 3}) {
    const auto asks = StartupAsks(StartupSpec(seed, v1::STARTUP_DESIGN_SOBOL), 8);
    CHECK(StartupSlices(asks, 8) == std::vector<std::vector<int>>(3, std::vector<int>(8, 1)));
  }
  // Random: independent draws, which leave some tenth of some parameter empty in 10 trials
  // (all 30 tenths filled has probability (10!/10^10)^3, about 5e-11, per seed).
  const std::vector<std::vector<int>> once(3, std::vector<int>(10, 1));
  for (uint64_t seed : {1, 2, 3}) {
    const auto asks = StartupAsks(StartupSpec(seed, v1::STARTUP_DESIGN_RANDOM), 10);
    CHECK(StartupSlices(asks, 10) != once);
    CHECK(Key(asks[0]) != Key(StartupAsks(StartupSpec(seed, v1::STARTUP_DESIGN_SOBOL), 1)[0]));
  }
}

TEST_CASE("TPE: the Latin hypercube coordinate is a permutation of slices per block",
          "[server][tpe]") {
  for (int strata : {1, 7, 10}) {
    std::set<int> slices;
    for (uint64_t k = 0; k < static_cast<uint64_t>(strata); ++k) {
      const double u =
          LatinHypercubeCoordinate(strata, k, 9, SamplingSeed(9, static_cast<int>(k)), "p");
      REQUIRE(u >= 0);
      REQUIRE(u < 1);
      slices.insert(static_cast<int>(u * strata));
    }
    CHECK(static_cast<int>(slices.size()) == strata);
  }
  // Huge start-up counts use blocks of 1,024 slices (no permutation of millions per ask).
  std::set<int> slices;
  for (uint64_t k = 0; k < 1024; ++k) {
    slices.insert(static_cast<int>(
        LatinHypercubeCoordinate(1 << 30, k, 9, SamplingSeed(9, static_cast<int>(k)), "p") * 1024));
  }
  CHECK(slices.size() == 1024);
}

TEST_CASE("TPE concentrates near the optimum of a quadratic faster than random", "[server][tpe]") {
  // Median over seeds of the best value after 60 trials, 3 parameters.
  auto f = [](const std::vector<v1::ParamAssignment>& p) {
    const double x = Number(p[0].value()) - 0.3, y = Number(p[1].value()) + 2,
                 z = Number(p[2].value()) - 7;
    return x * x + y * y + 0.01 * z * z;
  };
  std::vector<double> tpe_best, random_best;
  std::vector<double> tpe_late_distance, random_late_distance;
  for (uint64_t seed = 1; seed <= 7; ++seed) {
    v1::StudySpec spec = TpeSpec(seed);
    AddFloat(&spec, "x", -5, 5);
    AddFloat(&spec, "y", -5, 5);
    AddInt(&spec, "z", -20, 20);
    TpeSampler tpe;
    RandomSampler random;
    TrialHistory th, rh;
    tpe_best.push_back(Optimize(&tpe, spec, f, 60, &th));
    random_best.push_back(Optimize(&random, spec, f, 60, &rh));
    // Where the last 20 proposals went: mean objective.
    double t = 0, r = 0;
    for (int i = 40; i < 60; ++i) {
      t += *th.trials[i].objective_value;
      r += *rh.trials[i].objective_value;
    }
    tpe_late_distance.push_back(t / 20);
    random_late_distance.push_back(r / 20);
  }
  std::sort(tpe_best.begin(), tpe_best.end());
  std::sort(random_best.begin(), random_best.end());
  std::sort(tpe_late_distance.begin(), tpe_late_distance.end());
  std::sort(random_late_distance.begin(), random_late_distance.end());
  CHECK(tpe_best[3] < 0.5 * random_best[3]);
  CHECK(tpe_late_distance[3] < 0.25 * random_late_distance[3]);
}

TEST_CASE("TPE with constant liar gives 8 concurrent asks 8 distinct suggestions",
          "[server][tpe]") {
  // A small discrete space (30 points) where an unaware sampler repeats its favourite point.
  v1::StudySpec spec = TpeSpec(3);
  AddInt(&spec, "a", 0, 9);
  AddChoices(&spec, "b", {"x", "y", "z"});
  auto f = [](const std::vector<v1::ParamAssignment>& p) {
    return std::abs(p[0].value().int_value() - 2) + (p[1].value().string_value() == "y" ? 0 : 1);
  };
  TpeSampler sampler;
  TrialHistory history;
  Optimize(&sampler, spec, f, 12, &history);
  std::set<std::string> seen;
  for (const auto& t : history.trials) seen.insert(Key(t.params));
  std::set<std::string> running;
  for (int k = 0; k < 8; ++k) {
    auto params = Ask(&sampler, spec, history, 12 + k);
    running.insert(Key(params));
    CHECK_FALSE(seen.count(Key(params)));
    AddTrial(&history, params, v1::TRIAL_STATE_RUNNING, std::nullopt);
  }
  CHECK(running.size() == 8);
}

TEST_CASE("TPE: running trials repel nearby continuous proposals under constant liar",
          "[server][tpe]") {
  // 1-d: the finished trials point at 0.5. With the lie, four running trials at 0.5 push the
  // next proposal away from there; without it, the proposal stays close.
  auto make = [](bool liar) {
    v1::StudySpec spec = TpeSpec(21);
    AddFloat(&spec, "x", 0, 1);
    spec.mutable_sampler()->set_constant_liar(liar);
    return spec;
  };
  TrialHistory history;
  for (int i = 0; i < 20; ++i) {
    v1::ParamAssignment a;
    a.set_name("x");
    const double x = (i + 0.5) / 20;
    a.mutable_value()->set_double_value(x);
    AddTrial(&history, {a}, v1::TRIAL_STATE_COMPLETE, std::abs(x - 0.5));
  }
  for (int i = 0; i < 6; ++i) {
    v1::ParamAssignment a;
    a.set_name("x");
    a.mutable_value()->set_double_value(0.49 + 0.004 * i);
    AddTrial(&history, {a}, v1::TRIAL_STATE_RUNNING, std::nullopt);
  }
  TpeSampler sampler;
  double with_liar = 0, without = 0;
  for (int k = 0; k < 20; ++k) {
    with_liar +=
        std::abs(Ask(&sampler, make(true), history, 26 + k)[0].value().double_value() - 0.5);
    without +=
        std::abs(Ask(&sampler, make(false), history, 26 + k)[0].value().double_value() - 0.5);
  }
  CHECK(with_liar > without);
}

TEST_CASE("TPE proposals respect log, step, int and categorical distributions", "[server][tpe]") {
  for (bool multivariate : {false, true}) {
    v1::StudySpec spec = TpeSpec(4);
    spec.mutable_sampler()->set_multivariate(multivariate);
    AddFloat(&spec, "lr", 1e-5, 1e-1, true);
    AddFloat(&spec, "wd", 0, 0.1)->mutable_float_range()->set_step(0.02);
    AddInt(&spec, "warmup", 0, 400, 50);
    auto* log_int = AddInt(&spec, "r", 1, 64);
    log_int->mutable_int_range()->set_log(true);
    AddChoices(&spec, "opt", {"adamw", "sgd", "lion"});
    auto f = [](const std::vector<v1::ParamAssignment>& p) {
      return std::abs(std::log10(p[0].value().double_value()) + 3) + p[1].value().double_value() +
             std::abs(p[2].value().int_value() - 100) / 100.0 +
             std::abs(std::log2(static_cast<double>(p[3].value().int_value())) - 3);
    };
    TpeSampler sampler;
    TrialHistory history;
    Optimize(&sampler, spec, f, 40, &history);
    for (const auto& t : history.trials) {
      const double lr = t.params[0].value().double_value();
      CHECK(lr >= 1e-5);
      CHECK(lr <= 1e-1);
      const double wd = t.params[1].value().double_value();
      CHECK(std::abs(wd / 0.02 - std::round(wd / 0.02)) < 1e-9);
      CHECK(wd <= 0.1 + 1e-12);
      const int64_t warmup = t.params[2].value().int_value();
      CHECK(warmup % 50 == 0);
      CHECK(warmup >= 0);
      CHECK(warmup <= 400);
      const int64_t r = t.params[3].value().int_value();
      CHECK(r >= 1);
      CHECK(r <= 64);
      CHECK(t.params[4].value().kind_case() == v1::ParamValue::kStringValue);
    }
  }
}

TEST_CASE("Multivariate TPE follows a correlated valley better than random", "[server][tpe]") {
  auto f = [](const std::vector<v1::ParamAssignment>& p) {
    const double x = Number(p[0].value()), y = Number(p[1].value());
    return 100 * (y - x) * (y - x) + (x - 0.7) * (x - 0.7);
  };
  std::vector<double> tpe_best, random_best;
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    v1::StudySpec spec = TpeSpec(seed);
    spec.mutable_sampler()->set_multivariate(true);
    AddFloat(&spec, "x", -2, 2);
    AddFloat(&spec, "y", -2, 2);
    TpeSampler tpe;
    RandomSampler random;
    TrialHistory th, rh;
    tpe_best.push_back(Optimize(&tpe, spec, f, 60, &th));
    random_best.push_back(Optimize(&random, spec, f, 60, &rh));
  }
  std::sort(tpe_best.begin(), tpe_best.end());
  std::sort(random_best.begin(), random_best.end());
  CHECK(tpe_best[2] < random_best[2]);
}

TEST_CASE("TPE: pruned trials count, failed ones do not", "[server][tpe]") {
  v1::StudySpec spec = TpeSpec(2);
  AddFloat(&spec, "x", 0, 1);
  spec.mutable_sampler()->set_n_startup_trials(3);
  TrialHistory history;
  auto x = [](double v) {
    v1::ParamAssignment a;
    a.set_name("x");
    a.mutable_value()->set_double_value(v);
    return std::vector<v1::ParamAssignment>{a};
  };
  AddTrial(&history, x(0.1), v1::TRIAL_STATE_COMPLETE, 1.0);
  AddTrial(&history, x(0.2), v1::TRIAL_STATE_FAILED, std::nullopt);
  AddTrial(&history, x(0.3), v1::TRIAL_STATE_FAILED, std::nullopt);
  TpeSampler tpe;
  TrialHistory empty;
  // Two failures do not end the start-up: still the start-up design's point for the trial.
  CHECK(Key(Ask(&tpe, spec, history, 3)) == Key(Ask(&tpe, spec, empty, 3)));
  HistoryTrial pruned;
  pruned.state = v1::TRIAL_STATE_PRUNED;
  pruned.params = x(0.9);
  pruned.epoch_values = {3.0, std::nullopt};
  history.trials.push_back(pruned);
  history.trials.push_back(pruned);
  // Two pruned trials make three finished: the model proposes.
  CHECK(Key(Ask(&tpe, spec, history, 5)) != Key(Ask(&tpe, spec, empty, 5)));
}

TEST_CASE("TPE proposes only what enqueued values leave free", "[server][tpe]") {
  v1::StudySpec spec = TpeSpec(8);
  AddFloat(&spec, "x", 0, 1);
  AddInt(&spec, "n", 0, 9);
  TpeSampler sampler;
  TrialHistory history;
  Optimize(
      &sampler, spec, [](const auto& p) { return Number(p[0].value()); }, 15, &history);
  SampleRequest request;
  request.spec = &spec;
  request.trial_number = 15;
  request.seed = SamplingSeed(8, 15);
  request.history = &history;
  v1::ParamAssignment fixed;
  fixed.set_name("x");
  fixed.mutable_value()->set_double_value(0.5);
  request.fixed.push_back(fixed);
  auto params = sampler.Sample(request);
  REQUIRE(params.ok());
  REQUIRE(params->size() == 1);
  CHECK((*params)[0].name() == "n");
}

TEST_CASE("TPE on an exhausted discrete space still answers", "[server][tpe]") {
  v1::StudySpec spec = TpeSpec(1);
  AddChoices(&spec, "c", {"a", "b"});
  spec.mutable_sampler()->set_n_startup_trials(1);
  TpeSampler sampler;
  TrialHistory history;
  std::set<std::string> values;
  for (int i = 0; i < 4; ++i) {
    auto params = Ask(&sampler, spec, history, i);
    values.insert(params[0].value().string_value());
    AddTrial(&history, params, v1::TRIAL_STATE_COMPLETE, params[0].value().string_value() == "a");
    if (i == 1) CHECK(values.size() == 2);  // both choices before any repeat
  }
}

}  // namespace
}  // namespace hpsearch::server
