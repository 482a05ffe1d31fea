// sampler_quality: how good the samplers' searches are. For each test function of
// bench/test_functions.h and each fixed seed, a sequential search of --trials trials with
//   hpsearch's TPE (default options), Optuna 3.1's TPESampler (default options, driven over a pipe
//   by bench/peer/optuna_ask_tell.py, in the same run), and hpsearch's random sampler;
// the table shows the median over seeds of the best value found after 25, 50 and 100 trials.
// --multivariate adds both libraries' multivariate TPE. --quick: three functions, three seeds,
// 25 trials (the ctest smoke run). --parallel: the simulated-parallel study instead
// (bench/parallel_sim.cc). --jobs N runs N searches at a time (one Optuna process each).
// --startup latin_hypercube|sobol|random: our TPE's start-up design (default: the sampler's).
// --bandwidth-floor F: our univariate TPE's bandwidth_floor option, set alone, so the floor stays
// F throughout (default: the sampler's defaults).
// --dump FILE (development only): every search's curve as a JSON line, for statistics beyond
// the medians. --optuna-cache DIR (development only): Optuna's curves are read from DIR when an
// earlier run stored them there, and stored otherwise (each search is deterministic per function,
// seed and sampler), so variants of ours can be compared without re-running Optuna; tables for
// docs/performance.md come from runs without it, both sides measured in the same run.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench/parallel_sim.h"
#include "bench/python_peer.h"
#include "bench/test_functions.h"
#include "nlohmann/json.hpp"
#include "server/sampling/random_sampler.h"
#include "server/sampling/tpe_sampler.h"

namespace hpsearch::bench {
namespace {

using json = nlohmann::json;

enum class Contender { kOursTpe, kOptunaTpe, kRandom, kOursTpeMv, kOptunaTpeMv };

const char* Name(Contender c) {
  switch (c) {
    case Contender::kOursTpe:
      return "hpsearch tpe";
    case Contender::kOptunaTpe:
      return "optuna tpe";
    case Contender::kRandom:
      return "random";
    case Contender::kOursTpeMv:
      return "hpsearch tpe mv";
    case Contender::kOptunaTpeMv:
      return "optuna tpe mv";
  }
  return "?";
}

json SpaceJson(const TestFunction& fn) {
  json space = json::array();
  for (const auto& p : fn.space) {
    json e = {{"name", p.name()}};
    if (p.has_float_range()) {
      e["type"] = "float";
      e["low"] = p.float_range().low();
      e["high"] = p.float_range().high();
      if (p.float_range().has_step()) e["step"] = p.float_range().step();
    } else if (p.has_int_range()) {
      e["type"] = "int";
      e["low"] = p.int_range().low();
      e["high"] = p.int_range().high();
      e["step"] = p.int_range().step();
    } else {
      e["type"] = "categorical";
      json choices = json::array();
      for (const auto& c : p.categorical().choices()) choices.push_back(c.string_value());
      e["choices"] = choices;
    }
    space.push_back(e);
  }
  return space;
}

// Best value so far after each trial.
std::vector<double> RunOurs(const TestFunction& fn, uint64_t seed, Contender who, int trials,
                            v1::StartupDesign startup, double bandwidth_floor) {
  v1::StudySpec spec;
  spec.set_name(fn.name);
  spec.set_seed(seed);
  for (const auto& p : fn.space) *spec.add_search_space() = p;
  spec.mutable_objective()->set_direction(v1::DIRECTION_MINIMIZE);
  std::unique_ptr<server::Sampler> sampler;
  if (who == Contender::kRandom) {
    sampler = std::make_unique<server::RandomSampler>();
  } else {
    spec.mutable_sampler()->set_type(v1::SAMPLER_TYPE_TPE);
    spec.mutable_sampler()->set_multivariate(who == Contender::kOursTpeMv);
    if (startup != v1::STARTUP_DESIGN_UNSPECIFIED) spec.mutable_sampler()->set_startup(startup);
    if (bandwidth_floor > 0) spec.mutable_sampler()->set_bandwidth_floor(bandwidth_floor);
    sampler = std::make_unique<server::TpeSampler>();
  }
  server::TrialHistory history;
  std::vector<double> best;
  double so_far = HUGE_VAL;
  for (int i = 0; i < trials; ++i) {
    server::SampleRequest request;
    request.spec = &spec;
    request.trial_number = i;
    request.seed = server::SamplingSeed(seed, i);
    request.history = &history;
    auto params = sampler->Sample(request);
    if (!params.ok()) {
      std::fprintf(stderr, "%s\n", params.status().ToString().c_str());
      std::exit(1);
    }
    const double value = fn.f(PointOf(fn, *params));
    so_far = std::min(so_far, value);
    best.push_back(so_far);
    server::HistoryTrial t;
    t.number = i;
    t.state = v1::TRIAL_STATE_COMPLETE;
    t.params = *params;
    t.objective_value = value;
    history.trials.push_back(std::move(t));
  }
  return best;
}

std::vector<double> RunOptuna(PythonPeer* peer, const TestFunction& fn, uint64_t seed,
                              Contender who, int trials) {
  json study = {{"cmd", "study"},
                {"space", SpaceJson(fn)},
                {"seed", seed},
                {"sampler", who == Contender::kOptunaTpeMv ? "tpe_multivariate" : "tpe"}};
  peer->Call(study.dump());
  std::vector<double> best;
  double so_far = HUGE_VAL;
  for (int i = 0; i < trials; ++i) {
    json answer = json::parse(peer->Call(R"({"cmd":"ask"})"));
    std::vector<v1::ParamAssignment> params;
    for (const auto& p : fn.space) {
      v1::ParamAssignment a;
      a.set_name(p.name());
      const json& v = answer["params"][p.name()];
      if (p.has_float_range()) {
        a.mutable_value()->set_double_value(v.get<double>());
      } else if (p.has_int_range()) {
        a.mutable_value()->set_int_value(v.get<int64_t>());
      } else {
        a.mutable_value()->set_string_value(v.get<std::string>());
      }
      params.push_back(a);
    }
    const double value = fn.f(PointOf(fn, params));
    so_far = std::min(so_far, value);
    best.push_back(so_far);
    peer->Call(json({{"cmd", "tell"}, {"value", value}}).dump());
  }
  return best;
}

// --optuna-cache: one file per search holding its curve as a JSON array.
std::string CachePath(const std::string& dir, const TestFunction& fn, uint64_t seed, Contender who,
                      int trials) {
  return dir + "/" + fn.name + (who == Contender::kOptunaTpeMv ? "_mv_" : "_") +
         std::to_string(seed) + "_" + std::to_string(trials) + ".json";
}

bool ReadCachedCurve(const std::string& path, int trials, std::vector<double>* curve) {
  std::ifstream in(path);
  if (!in) return false;
  const json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array() || static_cast<int>(j.size()) != trials) return false;
  *curve = j.get<std::vector<double>>();
  return true;
}

void WriteCachedCurve(const std::string& path, const std::vector<double>& curve) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << json(curve).dump() << "\n";
    if (!out) return;
  }
  std::rename(tmp.c_str(), path.c_str());
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct Options {
  bool quick = false;
  bool multivariate = false;
  bool ours_only = false;   // leave Optuna out (for quick comparisons with an earlier full run)
  uint64_t first_seed = 0;  // > 0: seeds first_seed, first_seed + 1, ... instead of the fixed ones
  int n_seeds = 0;          // > 0 with first_seed: how many
  int trials = 100;
  int jobs = 2;
  std::string optuna_cache;  // development only: see the top of this file
  std::string dump;          // development only: every search's curve, as JSON lines
  v1::StartupDesign startup = v1::STARTUP_DESIGN_UNSPECIFIED;  // ours: the sampler's default
  double bandwidth_floor = 0;  // ours, univariate: > 0 replaces the sampler's default
};

int Quality(const Options& options) {
  std::vector<TestFunction> functions;
  std::vector<uint64_t> seeds = QualitySeeds();
  for (const auto& fn : QualityFunctions()) {
    if (!options.quick || fn.name == "branin" || fn.name == "hartmann6" ||
        fn.name == "branin_mixed") {
      functions.push_back(fn);
    }
  }
  if (options.first_seed > 0) {
    seeds.resize(options.n_seeds > 0 ? options.n_seeds : seeds.size());
    for (size_t k = 0; k < seeds.size(); ++k) seeds[k] = options.first_seed + k;
  }
  if (options.quick) seeds.resize(3);
  std::vector<Contender> contenders = {Contender::kOursTpe, Contender::kOptunaTpe,
                                       Contender::kRandom};
  if (options.multivariate) {
    contenders.push_back(Contender::kOursTpeMv);
    contenders.push_back(Contender::kOptunaTpeMv);
  }
  if (options.ours_only) {
    contenders.erase(
        std::remove_if(
            contenders.begin(), contenders.end(),
            [](Contender c) { return c == Contender::kOptunaTpe || c == Contender::kOptunaTpeMv; }),
        contenders.end());
  }
  struct Task {
    size_t function;
    uint64_t seed;
    Contender who;
  };
  std::vector<Task> tasks;
  for (size_t f = 0; f < functions.size(); ++f) {
    for (uint64_t seed : seeds) {
      for (Contender c : contenders) tasks.push_back({f, seed, c});
    }
  }
  // results[function][contender] = best curves, one per seed.
  std::map<std::pair<size_t, int>, std::vector<std::vector<double>>> results;
  std::map<int, double> seconds;
  std::mutex mu;
  std::atomic<size_t> next{0};
  const std::string script = std::string(HPSEARCH_SOURCE_DIR) + "/bench/peer/optuna_ask_tell.py";
  std::unique_ptr<std::ofstream> dump;
  if (!options.dump.empty()) dump = std::make_unique<std::ofstream>(options.dump);
  auto work = [&] {
    std::unique_ptr<PythonPeer> peer;
    for (size_t i = next++; i < tasks.size(); i = next++) {
      const Task& task = tasks[i];
      const TestFunction& fn = functions[task.function];
      const auto start = std::chrono::steady_clock::now();
      std::vector<double> curve;
      if (task.who == Contender::kOptunaTpe || task.who == Contender::kOptunaTpeMv) {
        const std::string cached =
            options.optuna_cache.empty()
                ? ""
                : CachePath(options.optuna_cache, fn, task.seed, task.who, options.trials);
        if (cached.empty() || !ReadCachedCurve(cached, options.trials, &curve)) {
          if (!peer) peer = std::make_unique<PythonPeer>(script);
          curve = RunOptuna(peer.get(), fn, task.seed, task.who, options.trials);
          if (!cached.empty()) WriteCachedCurve(cached, curve);
        }
      } else {
        curve = RunOurs(fn, task.seed, task.who, options.trials, options.startup,
                        options.bandwidth_floor);
      }
      const double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::lock_guard<std::mutex> lock(mu);
      if (dump) {
        *dump << json({{"function", fn.name},
                       {"contender", Name(task.who)},
                       {"seed", task.seed},
                       {"curve", curve}})
                     .dump()
              << "\n";
      }
      results[{task.function, static_cast<int>(task.who)}].push_back(std::move(curve));
      seconds[static_cast<int>(task.who)] += elapsed;
    }
  };
  std::vector<std::thread> threads;
  for (int j = 0; j < std::max(1, options.jobs); ++j) threads.emplace_back(work);
  for (auto& t : threads) t.join();

  std::vector<int> checkpoints;
  for (int c : {25, 50, 100}) {
    if (c <= options.trials) checkpoints.push_back(c);
  }
  std::printf(
      "sampler_quality: median over %zu seeds of the best value after N trials "
      "(minimised; lower is better)\n\n",
      seeds.size());
  std::printf("| function | N |");
  for (Contender c : contenders) std::printf(" %s |", Name(c));
  std::printf(" ours <= optuna |\n|---|---|");
  for (size_t i = 0; i <= contenders.size(); ++i) std::printf("---|");
  std::printf("\n");
  std::map<int, int> at_least_as_good, better_than_random;
  for (size_t f = 0; f < functions.size(); ++f) {
    for (int n : checkpoints) {
      std::printf("| %s | %d |", functions[f].name.c_str(), n);
      std::map<int, double> median;
      for (Contender c : contenders) {
        std::vector<double> at;
        for (const auto& curve : results[{f, static_cast<int>(c)}]) at.push_back(curve[n - 1]);
        median[static_cast<int>(c)] = Median(at);
        std::printf(" %.4g |", median[static_cast<int>(c)]);
      }
      const double ours = median[static_cast<int>(Contender::kOursTpe)];
      const bool ok = !options.ours_only && ours <= median[static_cast<int>(Contender::kOptunaTpe)];
      at_least_as_good[n] += ok;
      better_than_random[n] += ours < median[static_cast<int>(Contender::kRandom)];
      std::printf(" %s |\n", ok ? "yes" : "no");
    }
  }
  std::printf("\n");
  for (int n : checkpoints) {
    std::printf(
        "after %3d trials: hpsearch tpe at least as good as optuna tpe on %d/%zu "
        "functions, better than random on %d/%zu\n",
        n, at_least_as_good[n], functions.size(), better_than_random[n], functions.size());
  }
  std::printf("\nsearch time (all runs, wall, %d jobs):", options.jobs);
  for (Contender c : contenders) std::printf(" %s %.1f s;", Name(c), seconds[static_cast<int>(c)]);
  std::printf("\n");
  return 0;
}

}  // namespace
}  // namespace hpsearch::bench

int main(int argc, char** argv) {
  hpsearch::bench::Options options;
  bool parallel = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--quick") {
      options.quick = true;
      options.trials = 25;
    } else if (arg == "--multivariate") {
      options.multivariate = true;
    } else if (arg == "--first-seed" && i + 1 < argc) {
      options.first_seed = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--n-seeds" && i + 1 < argc) {
      options.n_seeds = std::atoi(argv[++i]);
    } else if (arg == "--ours-only") {
      options.ours_only = true;
    } else if (arg == "--optuna-cache" && i + 1 < argc) {
      options.optuna_cache = argv[++i];
    } else if (arg == "--startup" && i + 1 < argc) {
      std::string design = argv[++i];  // latin_hypercube, sobol or random
      for (char& c : design) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      if (!hpsearch::v1::StartupDesign_Parse("STARTUP_DESIGN_" + design, &options.startup) ||
          options.startup == hpsearch::v1::STARTUP_DESIGN_UNSPECIFIED) {
        std::fprintf(stderr, "sampler_quality: --startup takes latin_hypercube, sobol or random\n");
        return 2;
      }
    } else if (arg == "--bandwidth-floor" && i + 1 < argc) {
      options.bandwidth_floor = std::atof(argv[++i]);
      if (!(options.bandwidth_floor > 0 && options.bandwidth_floor <= 1)) {
        std::fprintf(stderr, "sampler_quality: --bandwidth-floor takes a number in (0, 1]\n");
        return 2;
      }
    } else if (arg == "--dump" && i + 1 < argc) {
      options.dump = argv[++i];
    } else if (arg == "--parallel") {
      parallel = true;
    } else if (arg == "--trials" && i + 1 < argc) {
      options.trials = std::atoi(argv[++i]);
    } else if (arg == "--jobs" && i + 1 < argc) {
      options.jobs = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr,
                   "usage: sampler_quality [--quick] [--multivariate] [--trials N] [--jobs N] "
                   "[--first-seed S --n-seeds K] [--ours-only] [--startup DESIGN] "
                   "[--bandwidth-floor F] [--optuna-cache DIR] [--dump FILE] "
                   "[--parallel]\n");
      return 2;
    }
  }
  if (options.trials < 1) {
    std::fprintf(stderr, "sampler_quality: --trials must be at least 1\n");
    return 2;
  }
  if (parallel) return hpsearch::bench::ParallelSimulation(options.quick);
  return hpsearch::bench::Quality(options);
}
