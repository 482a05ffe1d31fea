#include "server/sampling/tpe_sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <queue>
#include <set>
#include <unordered_set>

#include "server/sampling/distributions.h"
#include "server/sampling/parzen_estimator.h"
#include "server/sampling/sampling_rng.h"
#include "server/sampling/sobol_sampler.h"

namespace hpsearch::server {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// Stream keys, so TPE's draws, its fall-back draws and the random sampler's never coincide.
constexpr uint64_t kCandidateStream = 0x7470655f63616e64ULL;
constexpr uint64_t kFallbackStream = 0x7470655f66616c6cULL;
constexpr uint64_t kStartupStream = 0x7470655f73746172ULL;
constexpr uint64_t kLatinStream = 0x7470655f6c617469ULL;
// Latin hypercube blocks hold at most this many trials, so a huge n_startup_trials costs no more
// than a permutation of this size per parameter and ask.
constexpr int kMaxLatinStrata = 1024;
// Combinations of per-parameter candidates tried before fresh random draws, and those draws
// before a repeat is accepted.
constexpr int kMaxCombinations = 256;
constexpr int kMaxRandomDraws = 64;

struct TpeOptions {
  int n_startup_trials = 10;
  int n_ei_candidates = 24;
  double gamma = 0.1;
  int gamma_max = 25;
  bool constant_liar = true;
  v1::StartupDesign startup = v1::STARTUP_DESIGN_LATIN_HYPERCUBE;
  ParzenEstimatorOptions estimator;  // its bandwidth_floor: the factor before shrinking
  double late_bandwidth_floor = kDefaultLateBandwidthFloor;
  int late_weight_window = kDefaultLateWeightWindow;
  int weight_window = kOptunaWeightWindow;  // the one in effect for this history
};

// The late floor of a spec without late_bandwidth_floor: its bandwidth_floor if it sets one (a
// floor chosen alone stays the floor throughout), else `late`.
double LateFloorOf(const v1::SamplerSpec& s, double late) {
  return s.has_bandwidth_floor() ? s.bandwidth_floor() : late;
}

TpeOptions OptionsOf(const v1::SamplerSpec& s) {
  TpeOptions o;
  if (s.has_n_startup_trials()) o.n_startup_trials = s.n_startup_trials();
  if (s.has_n_ei_candidates()) o.n_ei_candidates = std::max(1, s.n_ei_candidates());
  if (s.has_gamma()) o.gamma = s.gamma();
  if (s.has_gamma_max()) o.gamma_max = s.gamma_max();
  if (s.has_constant_liar()) o.constant_liar = s.constant_liar();
  if (s.has_startup() && s.startup() != v1::STARTUP_DESIGN_UNSPECIFIED) o.startup = s.startup();
  if (s.has_prior_weight()) o.estimator.prior_weight = s.prior_weight();
  if (s.has_consider_endpoints()) o.estimator.consider_endpoints = s.consider_endpoints();
  if (s.has_multivariate()) o.estimator.multivariate = s.multivariate();
  o.estimator.bandwidth_weighted = true;  // Optuna 3.1's scoring; see tpe_sampler.h
  // Unvalidated specs (sampler_quality's, a test's) get what FillTpeRunOptions would fill.
  const double floor = s.has_bandwidth_floor() ? s.bandwidth_floor() : kDefaultBandwidthFloor;
  const double late = s.has_late_bandwidth_floor() ? s.late_bandwidth_floor()
                                                   : LateFloorOf(s, kDefaultLateBandwidthFloor);
  const bool floors_ok = floor > 0 && floor <= 1 && late > 0 && late <= floor;
  o.estimator.bandwidth_floor = floors_ok ? floor : kDefaultBandwidthFloor;
  o.late_bandwidth_floor = floors_ok ? late : kDefaultLateBandwidthFloor;
  if (s.has_late_weight_window() && s.late_weight_window() >= 1) {
    o.late_weight_window = s.late_weight_window();
  }
  return o;
}

// The study's search space with its distributions, and every history trial's values in internal
// form (NaN where a trial lacks the parameter or holds a value outside it).
struct Space {
  std::vector<const v1::ParameterSpec*> params;
  std::vector<Distribution> dists;
  std::vector<bool> fixed;
  std::vector<double> fixed_value;        // internal form, for fixed parameters
  std::vector<std::vector<double>> rows;  // per history trial, per parameter
};

uint64_t Hash(const std::vector<double>& row) {
  uint64_t h = 0x9E3779B97F4A7C15ULL;
  for (double x : row) {
    const double v = x == 0 ? 0.0 : x;  // -0 == 0
    uint64_t bits;
    static_assert(sizeof bits == sizeof v);
    std::memcpy(&bits, &v, sizeof bits);
    h = (h ^ bits) * 0x100000001b3ULL;
    h ^= h >> 29;
  }
  return h;
}

// Finds configurations already in the history: a scan for the first question, a hash set once
// a search for something new begins.
class RepeatIndex {
 public:
  explicit RepeatIndex(std::vector<const std::vector<double>*> rows) : rows_(std::move(rows)) {}
  bool Contains(const std::vector<double>& config) {
    if (++queries_ == 2) {
      for (const auto* row : rows_) hashes_.insert(Hash(*row));
    }
    if (queries_ >= 2 && !hashes_.count(Hash(config))) return false;
    for (const auto* row : rows_) {
      if (*row == config) return true;
    }
    return false;
  }

 private:
  const std::vector<const std::vector<double>*> rows_;
  std::unordered_set<uint64_t> hashes_;
  int queries_ = 0;
};

absl::StatusOr<Space> BuildSpace(const SampleRequest& request) {
  Space space;
  const auto& search_space = request.spec->search_space();
  const int d = search_space.size();
  for (const v1::ParameterSpec& p : search_space) {
    absl::StatusOr<Distribution> dist = ToDistribution(p);
    if (!dist.ok()) return dist.status();
    space.params.push_back(&p);
    space.dists.push_back(*dist);
    bool fixed = false;
    double value = std::nan("");
    for (const v1::ParamAssignment& a : request.fixed) {
      if (a.name() == p.name()) {
        fixed = true;
        value = ToInternal(p, a.value()).value_or(std::nan(""));
      }
    }
    space.fixed.push_back(fixed);
    space.fixed_value.push_back(value);
  }
  space.rows.reserve(request.history->trials.size());
  for (const HistoryTrial& trial : request.history->trials) {
    std::vector<double> row(d, std::nan(""));
    for (int j = 0; j < d; ++j) {
      const v1::ParamAssignment* a = nullptr;
      if (j < static_cast<int>(trial.params.size()) &&
          trial.params[j].name() == space.params[j]->name()) {
        a = &trial.params[j];
      } else {
        for (const auto& candidate : trial.params) {
          if (candidate.name() == space.params[j]->name()) a = &candidate;
        }
      }
      if (a == nullptr) continue;
      std::optional<double> x = ToInternal(*space.params[j], a->value());
      if (!x) continue;
      const Distribution& dist = space.dists[j];
      if (dist.kind == Distribution::Kind::kCategorical) {
        row[j] = *x;
      } else {
        row[j] = std::clamp(*x, dist.low, dist.high);
      }
    }
    space.rows.push_back(std::move(row));
  }
  return space;
}

// Rank keys of the history: lower is better. NaN first key: the trial does not count.
struct Ranked {
  std::vector<int> below, above;  // history indices, in trial order
  int n_finished = 0;
};

Ranked RankHistory(const SampleRequest& request, const TpeOptions& options) {
  const double sign = request.spec->objective().direction() == v1::DIRECTION_MINIMIZE ? 1.0 : -1.0;
  struct Key {
    double stage, value;
    int index;
  };
  std::vector<Key> keys;
  Ranked ranked;
  const auto& trials = request.history->trials;
  for (int i = 0; i < static_cast<int>(trials.size()); ++i) {
    const HistoryTrial& t = trials[i];
    switch (t.state) {
      case v1::TRIAL_STATE_COMPLETE:
        if (!t.objective_value) continue;
        keys.push_back({-kInf, sign * *t.objective_value, i});
        ++ranked.n_finished;
        break;
      case v1::TRIAL_STATE_PRUNED: {
        // Trials that got further rank first; then by their last reported value.
        int epoch = static_cast<int>(t.epoch_values.size());
        while (epoch > 0 && !t.epoch_values[epoch - 1]) --epoch;
        if (epoch > 0) {
          keys.push_back({-static_cast<double>(epoch), sign * *t.epoch_values[epoch - 1], i});
        } else {
          keys.push_back({1.0, 0.0, i});
        }
        ++ranked.n_finished;
        break;
      }
      case v1::TRIAL_STATE_RUNNING:
      case v1::TRIAL_STATE_WAITING:
        if (options.constant_liar) keys.push_back({kInf, kInf, i});
        break;
      default:
        break;
    }
  }
  std::stable_sort(keys.begin(), keys.end(), [](const Key& a, const Key& b) {
    return a.stage != b.stage ? a.stage < b.stage : a.value < b.value;
  });
  const int n_below =
      std::min(static_cast<int>(std::ceil(options.gamma * ranked.n_finished)), options.gamma_max);
  for (int k = 0; k < static_cast<int>(keys.size()); ++k) {
    (k < n_below ? ranked.below : ranked.above).push_back(keys[k].index);
  }
  std::sort(ranked.below.begin(), ranked.below.end());
  std::sort(ranked.above.begin(), ranked.above.end());
  return ranked;
}

// A group's observations of the given parameters: trials lacking any of them are left out.
ParzenEstimator Fit(const Space& space, const std::vector<int>& group, const std::vector<int>& dims,
                    int weight_window, const ParzenEstimatorOptions& options) {
  std::vector<std::vector<double>> columns(dims.size());
  for (auto& column : columns) column.reserve(group.size());
  for (int index : group) {
    const auto& row = space.rows[index];
    bool complete = true;
    for (int j : dims) complete = complete && !std::isnan(row[j]);
    if (!complete) continue;
    for (size_t k = 0; k < dims.size(); ++k) columns[k].push_back(row[dims[k]]);
  }
  std::vector<Distribution> dists;
  for (int j : dims) dists.push_back(space.dists[j]);
  return ParzenEstimator(std::move(dists), columns,
                         TpeObservationWeights(static_cast<int>(columns[0].size()), weight_window),
                         options);
}

// Candidates of one parameter (univariate) or of all (multivariate), best first, distinct.
struct Candidates {
  std::vector<std::vector<double>> values;  // per candidate: one value per parameter in dims
  std::vector<double> scores;
};

Candidates Score(const Space& space, const Ranked& ranked, const std::vector<int>& dims,
                 const TpeOptions& options, SamplingRng* rng) {
  ParzenEstimator below = Fit(space, ranked.below, dims, options.weight_window, options.estimator);
  ParzenEstimator above = Fit(space, ranked.above, dims, options.weight_window, options.estimator);
  std::vector<std::vector<double>> draws = below.Sample(options.n_ei_candidates, rng);
  std::vector<double> log_l = below.LogPdf(draws);
  std::vector<double> log_g = above.LogPdf(draws);
  std::vector<int> order(options.n_ei_candidates);
  std::iota(order.begin(), order.end(), 0);
  std::vector<double> score(order.size());
  for (size_t s = 0; s < order.size(); ++s) score[s] = log_l[s] - log_g[s];
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return score[a] > score[b]; });
  Candidates out;
  for (int s : order) {
    std::vector<double> value(dims.size());
    for (size_t k = 0; k < dims.size(); ++k) value[k] = draws[k][s];
    if (std::find(out.values.begin(), out.values.end(), value) != out.values.end()) continue;
    out.values.push_back(std::move(value));
    out.scores.push_back(score[s]);
  }
  return out;
}

std::vector<v1::ParamAssignment> ToAssignments(const Space& space,
                                               const std::vector<double>& config) {
  std::vector<v1::ParamAssignment> out;
  for (size_t j = 0; j < space.params.size(); ++j) {
    if (space.fixed[j]) continue;
    v1::ParamAssignment a;
    a.set_name(space.params[j]->name());
    *a.mutable_value() = ToExternal(*space.params[j], config[j]);
    out.push_back(std::move(a));
  }
  return out;
}

// Random values for the free parameters from per-parameter generator states.
absl::Status DrawRandom(const Space& space, std::vector<uint64_t>* states,
                        std::vector<double>* config) {
  for (size_t j = 0; j < space.params.size(); ++j) {
    if (space.fixed[j]) continue;
    absl::StatusOr<v1::ParamValue> value = DrawRandomValue(*space.params[j], &(*states)[j]);
    if (!value.ok()) return value.status();
    (*config)[j] = ToInternal(*space.params[j], *value).value_or(std::nan(""));
  }
  return absl::OkStatus();
}

std::vector<uint64_t> Streams(const Space& space, uint64_t seed) {
  std::vector<uint64_t> states;
  for (const auto* p : space.params) states.push_back(seed ^ NameHash(p->name()));
  return states;
}

}  // namespace

double LatinHypercubeCoordinate(int strata, uint64_t trial_number, uint64_t study_seed,
                                uint64_t sampling_seed, const std::string& name) {
  const int n = std::clamp(strata, 1, kMaxLatinStrata);
  const uint64_t block = trial_number / n;
  // Fisher-Yates with a generator keyed by the study seed, the parameter and the block, so every
  // trial of a block sees the same permutation of the block's slices.
  SamplingRng permutation(study_seed ^ kLatinStream ^ NameHash(name) ^
                          (block + 1) * 0x9E3779B97F4A7C15ULL);
  std::vector<int> slices(n);
  std::iota(slices.begin(), slices.end(), 0);
  for (int i = n - 1; i > 0; --i) std::swap(slices[i], slices[permutation.UniformIndex(i)]);
  SamplingRng jitter(sampling_seed ^ kLatinStream ^ NameHash(name));
  return (slices[trial_number % n] + jitter.Uniform01()) / n;
}

double BandwidthFloorAt(double floor, double late, int n_finished) {
  if (n_finished <= kFloorShrinkFrom) return floor;
  return std::max(late, floor * kFloorShrinkFrom / n_finished);
}

void FillTpeRunOptions(v1::SamplerSpec* sampler, const TpeRunOptions& fill) {
  if (sampler->type() != v1::SAMPLER_TYPE_TPE) return;
  if (!sampler->has_late_weight_window()) {
    sampler->set_late_weight_window(fill.late_weight_window);
  }
  if (sampler->multivariate()) return;
  if (!sampler->has_late_bandwidth_floor()) {
    sampler->set_late_bandwidth_floor(LateFloorOf(*sampler, fill.late_bandwidth_floor));
  }
  if (!sampler->has_bandwidth_floor()) sampler->set_bandwidth_floor(fill.bandwidth_floor);
}

std::vector<double> TpeObservationWeights(int n, int window) {
  std::vector<double> w(n, 1.0);
  const int ramp = n - std::max(1, window);
  for (int i = 0; i < ramp; ++i) {
    const double t = ramp == 1 ? 0.0 : static_cast<double>(i) / (ramp - 1);
    w[i] = 1.0 / n + t * (1.0 - 1.0 / n);
  }
  return w;
}

absl::StatusOr<std::vector<v1::ParamAssignment>> TpeSampler::Sample(const SampleRequest& request) {
  TpeOptions options = OptionsOf(request.spec->sampler());
  absl::StatusOr<Space> built = BuildSpace(request);
  if (!built.ok()) return built.status();
  const Space& space = *built;
  const int d = static_cast<int>(space.params.size());
  std::vector<int> free;
  for (int j = 0; j < d; ++j) {
    if (!space.fixed[j]) free.push_back(j);
  }
  std::vector<double> config = space.fixed_value;
  // Configurations not to repeat: every trial's, except running and waiting ones when they are
  // invisible (no constant liar).
  std::vector<const std::vector<double>*> known;
  known.reserve(space.rows.size());
  for (size_t i = 0; i < space.rows.size(); ++i) {
    const v1::TrialState state = request.history->trials[i].state;
    if (options.constant_liar ||
        (state != v1::TRIAL_STATE_RUNNING && state != v1::TRIAL_STATE_WAITING)) {
      known.push_back(&space.rows[i]);
    }
  }
  RepeatIndex repeats(std::move(known));
  if (free.empty()) return ToAssignments(space, config);

  const Ranked ranked = RankHistory(request, options);
  options.estimator.bandwidth_floor = BandwidthFloorAt(
      options.estimator.bandwidth_floor, options.late_bandwidth_floor, ranked.n_finished);
  if (ranked.n_finished >= kWindowShrinkFrom) options.weight_window = options.late_weight_window;
  if (ranked.n_finished < options.n_startup_trials) {
    // Start-up: a point of the start-up design (one coordinate per parameter; fixed ones keep
    // their values and leave the others' coordinates unchanged), random draws if it repeats a
    // known configuration or the design is random.
    std::vector<uint64_t> states = Streams(space, request.seed ^ kStartupStream);
    std::vector<double> point = config;
    if (options.startup == v1::STARTUP_DESIGN_RANDOM) {
      absl::Status status = DrawRandom(space, &states, &point);
      if (!status.ok()) return status;
    } else {
      const uint64_t trial = static_cast<uint64_t>(request.trial_number);
      std::vector<double> u;
      if (options.startup == v1::STARTUP_DESIGN_SOBOL) {
        u = SobolPoint(d, trial, /*scramble=*/true, request.spec->seed() ^ kStartupStream);
      }
      for (int j : free) {
        const double uj =
            options.startup == v1::STARTUP_DESIGN_SOBOL
                ? u[j]
                : LatinHypercubeCoordinate(options.n_startup_trials, trial, request.spec->seed(),
                                           request.seed, space.params[j]->name());
        point[j] =
            ToInternal(*space.params[j], FromUnitInterval(*space.params[j], space.dists[j], uj))
                .value_or(std::nan(""));
      }
    }
    if (!repeats.Contains(point)) return ToAssignments(space, point);
    for (int attempt = 0; attempt < kMaxRandomDraws; ++attempt) {
      std::vector<double> draw = config;
      absl::Status status = DrawRandom(space, &states, &draw);
      if (!status.ok()) return status;
      if (!repeats.Contains(draw)) return ToAssignments(space, draw);
    }
    return ToAssignments(space, point);
  }

  std::vector<Candidates> per_group;  // univariate: one per free parameter; else one joint
  std::vector<std::vector<int>> group_dims;
  if (options.estimator.multivariate) {
    group_dims.push_back(free);
  } else {
    for (int j : free) group_dims.push_back({j});
  }
  for (const auto& dims : group_dims) {
    SamplingRng rng(request.seed ^ kCandidateStream ^ NameHash(space.params[dims[0]]->name()));
    per_group.push_back(Score(space, ranked, dims, options, &rng));
  }
  auto compose = [&](const std::vector<int>& pick) {
    std::vector<double> c = config;
    for (size_t g = 0; g < per_group.size(); ++g) {
      const auto& value = per_group[g].values[pick[g]];
      for (size_t k = 0; k < group_dims[g].size(); ++k) c[group_dims[g][k]] = value[k];
    }
    return c;
  };
  // Best-first over combinations of ranked candidates, by the score given up.
  std::vector<int> best(per_group.size(), 0);
  using Entry = std::pair<double, std::vector<int>>;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> frontier;
  std::set<std::vector<int>> seen = {best};
  frontier.push({0.0, best});
  for (int tries = 0; tries < kMaxCombinations && !frontier.empty(); ++tries) {
    auto [loss, pick] = frontier.top();
    frontier.pop();
    std::vector<double> candidate = compose(pick);
    if (!repeats.Contains(candidate)) return ToAssignments(space, candidate);
    for (size_t g = 0; g < per_group.size(); ++g) {
      if (pick[g] + 1 >= static_cast<int>(per_group[g].values.size())) continue;
      std::vector<int> next = pick;
      ++next[g];
      if (!seen.insert(next).second) continue;
      const auto& scores = per_group[g].scores;
      frontier.push({loss + scores[pick[g]] - scores[next[g]], next});
    }
  }
  std::vector<uint64_t> states = Streams(space, request.seed ^ kFallbackStream);
  for (int attempt = 0; attempt < kMaxRandomDraws; ++attempt) {
    std::vector<double> draw = config;
    absl::Status status = DrawRandom(space, &states, &draw);
    if (!status.ok()) return status;
    if (!repeats.Contains(draw)) return ToAssignments(space, draw);
  }
  // Nothing new found: the space is (nearly) exhausted, so the best candidate repeats.
  return ToAssignments(space, compose(best));
}

}  // namespace hpsearch::server
