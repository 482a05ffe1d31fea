#include "server/sampling/random_sampler.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <set>

namespace hpsearch::server {
namespace {

v1::StudySpec SeedLikeSpace() {
  v1::StudySpec spec;
  spec.set_name("s");
  auto* lr = spec.add_search_space();
  lr->set_name("learning_rate");
  lr->mutable_float_range()->set_low(1e-5);
  lr->mutable_float_range()->set_high(5e-4);
  lr->mutable_float_range()->set_log(true);
  auto* bs = spec.add_search_space();
  bs->set_name("batch_size");
  for (int64_t v : {8, 16}) bs->mutable_categorical()->add_choices()->set_int_value(v);
  auto* epochs = spec.add_search_space();
  epochs->set_name("epochs");
  epochs->mutable_int_range()->set_low(3);
  epochs->mutable_int_range()->set_high(6);
  auto* wd = spec.add_search_space();
  wd->set_name("weight_decay");
  wd->mutable_float_range()->set_low(0.0);
  wd->mutable_float_range()->set_high(0.1);
  wd->mutable_float_range()->set_step(0.025);
  return spec;
}

std::vector<v1::ParamAssignment> Draw(const v1::StudySpec& spec, uint64_t seed, int number) {
  RandomSampler sampler;
  TrialHistory history;
  SampleRequest request;
  request.spec = &spec;
  request.trial_number = number;
  request.seed = SamplingSeed(seed, number);
  request.history = &history;
  auto params = sampler.Sample(request);
  REQUIRE(params.ok());
  return *params;
}

TEST_CASE("RandomSampler is deterministic for the study seed and trial number",
          "[server][sampler]") {
  v1::StudySpec spec = SeedLikeSpace();
  auto a = Draw(spec, 42, 3);
  auto b = Draw(spec, 42, 3);
  auto c = Draw(spec, 43, 3);
  auto d = Draw(spec, 42, 4);
  REQUIRE(a.size() == 4);
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i].SerializeAsString() == b[i].SerializeAsString());
  CHECK(a[0].value().double_value() != c[0].value().double_value());
  CHECK(a[0].value().double_value() != d[0].value().double_value());
}

TEST_CASE("RandomSampler draws stay in bounds and follow their distributions",
          "[server][sampler]") {
  v1::StudySpec spec = SeedLikeSpace();
  int below_geometric_mid = 0;
  std::map<int64_t, int> batch, epochs;
  std::set<double> decays;
  constexpr int kDraws = 4000;
  const double geometric_mid = std::sqrt(1e-5 * 5e-4);
  for (int n = 0; n < kDraws; ++n) {
    auto p = Draw(spec, 7, n);
    double lr = p[0].value().double_value();
    REQUIRE(lr >= 1e-5);
    REQUIRE(lr <= 5e-4);
    if (lr < geometric_mid) ++below_geometric_mid;
    ++batch[p[1].value().int_value()];
    int64_t e = p[2].value().int_value();
    REQUIRE(e >= 3);
    REQUIRE(e <= 6);
    ++epochs[e];
    decays.insert(p[3].value().double_value());
  }
  // Log-uniform: half the mass below the geometric midpoint (binomial sd ~ 32 at 4000 draws).
  CHECK(std::abs(below_geometric_mid - kDraws / 2) < 160);
  CHECK(batch.size() == 2);
  CHECK(std::abs(batch[8] - kDraws / 2) < 160);
  CHECK(epochs.size() == 4);
  for (auto& [value, count] : epochs) CHECK(std::abs(count - kDraws / 4) < 140);
  // The step grid 0, 0.025, ..., 0.1 includes both ends and nothing else.
  REQUIRE(decays.size() == 5);
  CHECK(*decays.begin() == 0.0);
  CHECK(*decays.rbegin() == Approx(0.1));
}

TEST_CASE("RandomSampler leaves enqueued values to the caller and keeps the others",
          "[server][sampler]") {
  v1::StudySpec spec = SeedLikeSpace();
  RandomSampler sampler;
  TrialHistory history;
  SampleRequest request;
  request.spec = &spec;
  request.seed = SamplingSeed(1, 0);
  request.history = &history;
  auto all = sampler.Sample(request);
  v1::ParamAssignment fixed;
  fixed.set_name("batch_size");
  fixed.mutable_value()->set_int_value(32);
  request.fixed.push_back(fixed);
  auto rest = sampler.Sample(request);
  REQUIRE(all.ok());
  REQUIRE(rest.ok());
  REQUIRE(rest->size() == 3);
  CHECK((*rest)[0].value().double_value() == (*all)[0].value().double_value());
  CHECK((*rest)[1].name() == "epochs");
}

TEST_CASE("RandomSampler names the parameter of a malformed distribution", "[server][sampler]") {
  v1::StudySpec spec;
  auto* p = spec.add_search_space();
  p->set_name("lr");
  p->mutable_float_range()->set_low(0.0);
  p->mutable_float_range()->set_high(1.0);
  p->mutable_float_range()->set_log(true);
  RandomSampler sampler;
  TrialHistory history;
  SampleRequest request;
  request.spec = &spec;
  request.history = &history;
  auto params = sampler.Sample(request);
  REQUIRE_FALSE(params.ok());
  CHECK(params.status().message() == "search_space.lr: a log range needs low > 0");
}

}  // namespace
}  // namespace hpsearch::server
