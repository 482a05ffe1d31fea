// sampler_speed: time per ask at 10, 100 and 1,000 finished trials for the seed's five-parameter
// space (examples/banking77-seed.yaml: learning_rate log-float, batch_size categorical {8, 16},
// epochs int, weight_decay float, warmup_steps int), hpsearch's TPE against Optuna 3.1's
// TPESampler with in-memory storage and the same history, in the same run. Optuna is timed
// inside Python (bench/peer/optuna_ask_tell.py: study.ask() plus the five suggest calls), ours
// around TpeSampler::Sample. Both sides ask repeatedly on the unchanged history (Optuna's asked
// trials are told FAIL, which its TPE ignores), taking turns in 5 rounds so that both see the
// same machine, and both pinned to the CPU the benchmark starts on (on the shared VMs we measure
// on, one vCPU ran 45% slower than the other for minutes at a time, so the ratio depended on
// where each process happened to land); the table shows the median time per ask.
// --quick: fewer asks (ctest smoke run).
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "bench/python_peer.h"
#include "nlohmann/json.hpp"
#include "server/sampling/random_sampler.h"
#include "server/sampling/tpe_sampler.h"

namespace hpsearch::bench {
namespace {

using json = nlohmann::json;

v1::StudySpec SeedSpace(bool multivariate) {
  v1::StudySpec spec;
  spec.set_name("speed");
  spec.set_seed(42);
  spec.mutable_sampler()->set_type(v1::SAMPLER_TYPE_TPE);
  spec.mutable_sampler()->set_multivariate(multivariate);
  spec.mutable_objective()->set_direction(v1::DIRECTION_MAXIMIZE);
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
  epochs->mutable_int_range()->set_step(1);
  auto* wd = spec.add_search_space();
  wd->set_name("weight_decay");
  wd->mutable_float_range()->set_low(0.0);
  wd->mutable_float_range()->set_high(0.1);
  auto* warmup = spec.add_search_space();
  warmup->set_name("warmup_steps");
  warmup->mutable_int_range()->set_low(0);
  warmup->mutable_int_range()->set_high(400);
  warmup->mutable_int_range()->set_step(1);
  return spec;
}

// A made-up validation accuracy: best near lr 2e-4, batch 8, 5 epochs, some decay, few warmup
// steps. Only its shape matters here (it gives TPE something to model).
double Accuracy(const std::vector<v1::ParamAssignment>& p) {
  const double lr = std::log10(p[0].value().double_value());
  const double batch = static_cast<double>(p[1].value().int_value());
  const double epochs = static_cast<double>(p[2].value().int_value());
  const double wd = p[3].value().double_value();
  const double warmup = static_cast<double>(p[4].value().int_value());
  return 0.93 - 0.05 * (lr + 3.7) * (lr + 3.7) - 0.004 * (batch - 8) / 8 -
         0.003 * std::abs(epochs - 5) - 0.1 * (wd - 0.03) * (wd - 0.03) - 2e-5 * warmup;
}

server::TrialHistory MakeHistory(const v1::StudySpec& spec, int n) {
  server::RandomSampler random;
  server::TrialHistory history;
  for (int i = 0; i < n; ++i) {
    server::SampleRequest request;
    request.spec = &spec;
    request.trial_number = i;
    request.seed = server::SamplingSeed(7, i);
    request.history = &history;
    server::HistoryTrial t;
    t.number = i;
    t.state = v1::TRIAL_STATE_COMPLETE;
    t.params = *random.Sample(request);
    t.objective_value = Accuracy(t.params);
    history.trials.push_back(std::move(t));
  }
  return history;
}

json HistoryJson(const server::TrialHistory& history) {
  json out = json::array();
  for (const auto& t : history.trials) {
    json params;
    for (const auto& p : t.params) {
      if (p.value().kind_case() == v1::ParamValue::kIntValue) {
        params[p.name()] = p.value().int_value();
      } else {
        params[p.name()] = p.value().double_value();
      }
    }
    // Optuna minimises here: the negated accuracy.
    out.push_back({{"params", params}, {"value", -*t.objective_value}});
  }
  return out;
}

const json kSpaceJson = json::array({
    {{"name", "learning_rate"}, {"type", "float"}, {"low", 1e-5}, {"high", 5e-4}, {"log", true}},
    {{"name", "batch_size"}, {"type", "categorical"}, {"choices", {8, 16}}},
    {{"name", "epochs"}, {"type", "int"}, {"low", 3}, {"high", 6}},
    {{"name", "weight_decay"}, {"type", "float"}, {"low", 0.0}, {"high", 0.1}},
    {{"name", "warmup_steps"}, {"type", "int"}, {"low", 0}, {"high", 400}},
});

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Appends the seconds of `asks` asks of ours to *times (trial numbers n + first, n + first + 1,
// ...).
void TimeOurs(const v1::StudySpec& spec, const server::TrialHistory& history, int first, int asks,
              std::vector<double>* times) {
  server::TpeSampler sampler;
  for (int k = first; k < first + asks; ++k) {
    server::SampleRequest request;
    request.spec = &spec;
    request.trial_number = static_cast<int>(history.trials.size()) + k;
    request.seed = server::SamplingSeed(spec.seed(), request.trial_number);
    request.history = &history;
    const auto start = std::chrono::steady_clock::now();
    auto params = sampler.Sample(request);
    times->push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    if (!params.ok()) std::abort();
  }
}

// Gives the peer an in-memory Optuna study holding `history`.
void LoadOptunaStudy(PythonPeer* peer, const server::TrialHistory& history, bool multivariate) {
  peer->Call(json({{"cmd", "study"},
                   {"space", kSpaceJson},
                   {"seed", 42},
                   {"sampler", multivariate ? "tpe_multivariate" : "tpe"},
                   {"history", HistoryJson(history)}})
                 .dump());
}

// Appends the seconds of `asks` asks of Optuna's, timed inside Python, to *times.
void TimeOptuna(PythonPeer* peer, int asks, std::vector<double>* times) {
  for (int k = 0; k < asks; ++k) {
    times->push_back(json::parse(peer->Call(R"({"cmd":"ask_discard"})"))["seconds"].get<double>());
  }
}

// Median seconds per ask of ours and of Optuna's. The two sides take turns, kRounds rounds of
// asks each, because this class of machine (a shared VM) drifts in speed by tens of percent over
// seconds: timing all of one side and then all of the other can put them in different phases.
constexpr int kRounds = 5;
std::pair<double, double> TimeBoth(PythonPeer* peer, const v1::StudySpec& spec,
                                   const server::TrialHistory& history, bool multivariate,
                                   int our_asks, int optuna_asks) {
  LoadOptunaStudy(peer, history, multivariate);
  std::vector<double> ours, optuna;
  for (int round = 0; round < kRounds; ++round) {
    const int ours_per_round = std::max(1, our_asks / kRounds);
    TimeOurs(spec, history, round * ours_per_round, ours_per_round, &ours);
    TimeOptuna(peer, std::max(1, optuna_asks / kRounds), &optuna);
  }
  return {Median(ours), Median(optuna)};
}

}  // namespace
}  // namespace hpsearch::bench

int main(int argc, char** argv) {
  using namespace hpsearch::bench;
  const bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  if (argc > 2 || (argc == 2 && !quick)) {
    std::fprintf(stderr, "usage: sampler_speed [--quick]\n");
    return 2;
  }
  // The peer inherits the affinity: both sides then run on the same CPU, one at a time.
  const int cpu = sched_getcpu();
  cpu_set_t one;
  CPU_ZERO(&one);
  if (cpu >= 0) CPU_SET(cpu, &one);
  const bool pinned = cpu >= 0 && sched_setaffinity(0, sizeof(one), &one) == 0;
  PythonPeer peer(std::string(HPSEARCH_SOURCE_DIR) + "/bench/peer/optuna_ask_tell.py");
  // Wait for the peer to have imported Optuna (a second or two of CPU): our first timings would
  // otherwise share the machine with that start-up.
  peer.Call(json({{"cmd", "study"},
                  {"space", kSpaceJson},
                  {"seed", 42},
                  {"sampler", "tpe"},
                  {"history", json::array()}})
                .dump());
  std::printf(
      "sampler_speed: median time per ask, seed space (5 parameters), in-memory history "
      "of N COMPLETE trials\n");
  if (pinned) {
    std::printf("(ours and Optuna's peer process both pinned to CPU %d, taking turns)\n\n", cpu);
  } else {
    std::printf("(not pinned to one CPU: sched_setaffinity failed; taking turns)\n\n");
  }
  std::printf(
      "| N | hpsearch tpe | optuna tpe | speed-up | hpsearch tpe mv | optuna tpe mv | "
      "speed-up |\n|---|---|---|---|---|---|---|\n");
  for (int n : {10, 100, 1000}) {
    std::printf("| %d |", n);
    std::fflush(stdout);
    for (bool mv : {false, true}) {
      const hpsearch::v1::StudySpec spec = SeedSpace(mv);
      const hpsearch::server::TrialHistory history = MakeHistory(spec, n);
      const auto [ours, optuna] =
          TimeBoth(&peer, spec, history, mv, quick ? 20 : 400, quick ? 5 : (n >= 1000 ? 20 : 50));
      std::printf(" %.1f us | %.2f ms | %.0fx |", ours * 1e6, optuna * 1e3, optuna / ours);
      std::fflush(stdout);
    }
    std::printf("\n");
  }
  return 0;
}
