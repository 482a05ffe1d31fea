#include <catch2/catch.hpp>
#include <cmath>
#include <set>
#include <string>

#include "server/sampling/grid_sampler.h"
#include "server/sampling/sobol_sampler.h"

namespace hpsearch::server {
namespace {

v1::StudySpec GridSpec(uint64_t seed) {
  v1::StudySpec spec;
  spec.set_name("g");
  spec.set_seed(seed);
  spec.mutable_sampler()->set_type(v1::SAMPLER_TYPE_GRID);
  auto* wd = spec.add_search_space();
  wd->set_name("wd");
  wd->mutable_float_range()->set_low(0.0);
  wd->mutable_float_range()->set_high(0.1);
  wd->mutable_float_range()->set_step(0.05);
  auto* bs = spec.add_search_space();
  bs->set_name("bs");
  for (int64_t v : {8, 16}) bs->mutable_categorical()->add_choices()->set_int_value(v);
  auto* e = spec.add_search_space();
  e->set_name("epochs");
  e->mutable_int_range()->set_low(2);
  e->mutable_int_range()->set_high(6);
  e->mutable_int_range()->set_step(2);
  return spec;
}

std::string Key(const std::vector<v1::ParamAssignment>& params) {
  std::string key;
  for (const auto& p : params) key += p.name() + "=" + p.value().ShortDebugString() + ";";
  return key;
}

SampleRequest Request(const v1::StudySpec& spec, const TrialHistory& history, int number) {
  SampleRequest request;
  request.spec = &spec;
  request.trial_number = number;
  request.seed = SamplingSeed(spec.seed(), number);
  request.history = &history;
  return request;
}

std::vector<std::string> RunGrid(const v1::StudySpec& spec, int max_trials, int* exhausted_at) {
  GridSampler sampler;
  TrialHistory history;
  std::vector<std::string> keys;
  *exhausted_at = -1;
  for (int i = 0; i < max_trials; ++i) {
    SampleRequest request = Request(spec, history, i);
    if (sampler.Exhausted(request)) {
      *exhausted_at = i;
      break;
    }
    auto params = sampler.Sample(request);
    REQUIRE(params.ok());
    keys.push_back(Key(*params));
    HistoryTrial t;
    t.number = i;
    t.state = i % 3 == 0 ? v1::TRIAL_STATE_RUNNING : v1::TRIAL_STATE_COMPLETE;
    t.params = *params;
    history.trials.push_back(t);
  }
  return keys;
}

TEST_CASE("Grid enumerates exactly its points, then is exhausted", "[server][grid]") {
  int exhausted_at;
  const auto keys = RunGrid(GridSpec(1), 50, &exhausted_at);
  CHECK(exhausted_at == 18);  // 3 x 2 x 3 points
  const std::set<std::string> distinct(keys.begin(), keys.end());
  CHECK(distinct.size() == 18);
  std::set<std::string> expected;
  for (double wd : {0.0, 0.05, 0.1}) {
    for (int64_t bs : {8, 16}) {
      for (int64_t e : {2, 4, 6}) {
        std::vector<v1::ParamAssignment> p(3);
        p[0].set_name("wd");
        p[0].mutable_value()->set_double_value(wd);
        p[1].set_name("bs");
        p[1].mutable_value()->set_int_value(bs);
        p[2].set_name("epochs");
        p[2].mutable_value()->set_int_value(e);
        expected.insert(Key(p));
      }
    }
  }
  CHECK(distinct == expected);
  GridSampler sampler;
  TrialHistory empty;
  CHECK_FALSE(sampler.Exhausted(Request(GridSpec(1), empty, 0)));
  CHECK(*GridPointCount(GridSpec(1)) == 18);
}

TEST_CASE("Grid order is shuffled by the study seed and reproducible", "[server][grid]") {
  int unused;
  const auto a = RunGrid(GridSpec(1), 18, &unused);
  const auto b = RunGrid(GridSpec(1), 18, &unused);
  const auto c = RunGrid(GridSpec(2), 18, &unused);
  CHECK(a == b);
  CHECK(a != c);
}

TEST_CASE("Grid refuses a float without a step and keeps enqueued values", "[server][grid]") {
  v1::StudySpec spec = GridSpec(1);
  spec.mutable_search_space(0)->mutable_float_range()->clear_step();
  GridSampler sampler;
  TrialHistory history;
  auto refused = sampler.Sample(Request(spec, history, 0));
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().message() ==
        "search_space.wd: the grid sampler needs a step for float parameters (or use choices)");

  v1::StudySpec grid = GridSpec(3);
  for (int i = 0; i < 3; ++i) {
    SampleRequest request = Request(grid, history, i);
    v1::ParamAssignment fixed;
    fixed.set_name("bs");
    fixed.mutable_value()->set_int_value(16);
    request.fixed.push_back(fixed);
    auto params = sampler.Sample(request);
    REQUIRE(params.ok());
    REQUIRE(params->size() == 2);  // wd and epochs
    HistoryTrial t;
    t.params = *params;
    t.params.push_back(fixed);
    history.trials.push_back(t);
  }
  std::set<std::string> distinct;
  for (const auto& t : history.trials) distinct.insert(Key(t.params));
  CHECK(distinct.size() == 3);  // unused points that agree with bs = 16
}

TEST_CASE("Sobol matches the published unscrambled sequence", "[server][sobol]") {
  // Joe-Kuo direction numbers in Gray-code order (as scipy.stats.qmc.Sobol prints them).
  const double expected[8][4] = {
      {0, 0, 0, 0},
      {0.5, 0.5, 0.5, 0.5},
      {0.75, 0.25, 0.25, 0.25},
      {0.25, 0.75, 0.75, 0.75},
      {0.375, 0.375, 0.625, 0.875},
      {0.875, 0.875, 0.125, 0.375},
      {0.625, 0.125, 0.875, 0.625},
      {0.125, 0.625, 0.375, 0.125},
  };
  for (int i = 0; i < 8; ++i) {
    const auto point = SobolPoint(4, i, false, 0);
    for (int j = 0; j < 4; ++j) CHECK(point[j] == expected[i][j]);
  }
}

// The first 2^m points form a (t, m, 2)-net in dimensions (a, b): every box of
// 2^-k x 2^-(m - t - k) holds exactly 2^t points.
bool IsNet(bool scramble, uint64_t seed, int dim_a, int dim_b, int m, int t) {
  const int n = 1 << m;
  for (int k = 0; k <= m - t; ++k) {
    std::vector<int> boxes(1 << (m - t), 0);
    for (int i = 0; i < n; ++i) {
      const auto p = SobolPoint(std::max(dim_a, dim_b) + 1, i, scramble, seed);
      const int x = static_cast<int>(p[dim_a] * (1 << k));
      const int y = static_cast<int>(p[dim_b] * (1 << (m - t - k)));
      ++boxes[(x << (m - t - k)) | y];
    }
    for (int count : boxes) {
      if (count != (1 << t)) return false;
    }
  }
  return true;
}

TEST_CASE("Sobol points stratify, scrambled or not", "[server][sobol]") {
  // Each coordinate alone: 2^m points, one per slice of width 2^-m, in every dimension used.
  for (bool scramble : {false, true}) {
    for (int j = 0; j < 40; ++j) {
      std::vector<int> slices(64, 0);
      for (int i = 0; i < 64; ++i)
        ++slices[static_cast<int>(SobolPoint(40, i, scramble, 7)[j] * 64)];
      INFO("dimension " << j << " scramble " << scramble);
      CHECK(std::count(slices.begin(), slices.end(), 1) == 64);
    }
    // Dimensions 1 and 2 (0-based 0, 1) form a (0, m, 2)-net.
    CHECK(IsNet(scramble, 11, 0, 1, 8, 0));
  }
}

TEST_CASE("Scrambling depends on the seed only, and keeps the mean", "[server][sobol]") {
  CHECK(SobolPoint(3, 5, true, 1) == SobolPoint(3, 5, true, 1));
  CHECK(SobolPoint(3, 5, true, 1) != SobolPoint(3, 5, true, 2));
  CHECK(SobolPoint(3, 0, true, 1)[0] != 0.0);  // the corner is gone
  double sum = 0;
  for (int i = 0; i < 1024; ++i) sum += SobolPoint(5, i, true, 3)[4];
  CHECK(sum / 1024 == Approx(0.5).margin(1.0 / 1024));
}

TEST_CASE("SobolSampler maps points onto the distributions and skips fixed ones",
          "[server][sobol]") {
  v1::StudySpec spec = GridSpec(4);
  spec.mutable_sampler()->set_type(v1::SAMPLER_TYPE_SOBOL);
  auto* lr = spec.add_search_space();
  lr->set_name("lr");
  lr->mutable_float_range()->set_low(1e-5);
  lr->mutable_float_range()->set_high(1e-3);
  lr->mutable_float_range()->set_log(true);
  SobolSampler sampler;
  TrialHistory history;
  std::vector<int> low_half(2, 0);
  std::set<int64_t> epochs;
  for (int i = 0; i < 64; ++i) {
    auto params = sampler.Sample(Request(spec, history, i));
    REQUIRE(params.ok());
    REQUIRE(params->size() == 4);
    epochs.insert((*params)[2].value().int_value());
    const double x = (*params)[3].value().double_value();
    REQUIRE(x >= 1e-5);
    REQUIRE(x <= 1e-3);
    ++low_half[x < 1e-4];
  }
  CHECK(epochs == std::set<int64_t>{2, 4, 6});
  CHECK(low_half[0] == 32);  // exactly half below the geometric midpoint
  SampleRequest request = Request(spec, history, 3);
  v1::ParamAssignment fixed;
  fixed.set_name("bs");
  fixed.mutable_value()->set_int_value(8);
  request.fixed.push_back(fixed);
  auto all = sampler.Sample(Request(spec, history, 3));
  auto rest = sampler.Sample(request);
  REQUIRE(rest.ok());
  REQUIRE(rest->size() == 3);
  CHECK((*rest)[2].value().double_value() == (*all)[3].value().double_value());
}

}  // namespace
}  // namespace hpsearch::server
