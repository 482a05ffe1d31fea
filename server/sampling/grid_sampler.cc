#include "server/sampling/grid_sampler.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "server/sampling/distributions.h"
#include "server/sampling/sampling_rng.h"

namespace hpsearch::server {
namespace {

constexpr uint64_t kMaxPoints = uint64_t{1} << 62;
// Positions of the shuffled order looked at for an unused point agreeing with fixed values.
constexpr uint64_t kMaxScan = uint64_t{1} << 24;

struct Grid {
  std::vector<const v1::ParameterSpec*> params;
  std::vector<Distribution> dists;
  std::vector<uint64_t> sizes;
  uint64_t points = 1;
};

absl::StatusOr<Grid> BuildGrid(const v1::StudySpec& spec) {
  Grid grid;
  for (const v1::ParameterSpec& p : spec.search_space()) {
    absl::StatusOr<Distribution> dist = ToDistribution(p);
    if (!dist.ok()) return dist.status();
    const uint64_t size = GridSize(*dist);
    if (size == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("search_space.", p.name(),
                       ": the grid sampler needs a step for float parameters (or use choices)"));
    }
    if (grid.points > kMaxPoints / size) {
      return absl::InvalidArgumentError(
          "sampler: the grid has more than 2^62 points: use tpe, sobol or random");
    }
    grid.points *= size;
    grid.params.push_back(&p);
    grid.dists.push_back(*dist);
    grid.sizes.push_back(size);
  }
  return grid;
}

// The grid index of one value, or -1 when it is not on the grid.
int64_t IndexOf(const Grid& grid, int j, const v1::ParamValue& value) {
  const Distribution& d = grid.dists[j];
  std::optional<double> x = ToInternal(*grid.params[j], value);
  if (!x) return -1;
  if (d.kind == Distribution::Kind::kCategorical) return static_cast<int64_t>(*x);
  const double k = std::round((*x - d.low) / d.step);
  if (k < 0 || k >= static_cast<double>(grid.sizes[j])) return -1;
  // Exactly the grid's value (a float on a step grid compares equal to how the grid spells it).
  if (!SameParamValue(GridValue(*grid.params[j], d, static_cast<uint64_t>(k)), value)) {
    if (d.kind == Distribution::Kind::kInt) return -1;
    if (std::abs(*x - (d.low + k * d.step)) > 1e-9 * std::max(1.0, std::abs(*x))) return -1;
  }
  return static_cast<int64_t>(k);
}

// The grid point of a trial's values (mixed radix, the first parameter most significant), or -1.
int64_t PointOf(const Grid& grid, const std::vector<v1::ParamAssignment>& params) {
  uint64_t point = 0;
  for (size_t j = 0; j < grid.params.size(); ++j) {
    int64_t index = -1;
    for (const auto& a : params) {
      if (a.name() == grid.params[j]->name()) index = IndexOf(grid, static_cast<int>(j), a.value());
    }
    if (index < 0) return -1;
    point = point * grid.sizes[j] + static_cast<uint64_t>(index);
  }
  return static_cast<int64_t>(point);
}

std::unordered_set<uint64_t> UsedPoints(const Grid& grid, const TrialHistory& history) {
  std::unordered_set<uint64_t> used;
  for (const HistoryTrial& trial : history.trials) {
    const int64_t point = PointOf(grid, trial.params);
    if (point >= 0) used.insert(static_cast<uint64_t>(point));
  }
  return used;
}

// A keyed bijection of [0, n): a 4-round Feistel network on the smallest even number of bits that
// covers n, walked until it lands below n (less than four steps on average).
class Permutation {
 public:
  Permutation(uint64_t n, uint64_t key) : n_(n) {
    while ((uint64_t{1} << (2 * half_bits_)) < n) ++half_bits_;
    SamplingRng rng(key);
    for (uint64_t& k : keys_) k = rng.Next();
  }
  uint64_t operator()(uint64_t x) const {
    do {
      x = Round(x);
    } while (x >= n_);
    return x;
  }

 private:
  uint64_t Round(uint64_t x) const {
    const uint64_t mask = (uint64_t{1} << half_bits_) - 1;
    uint64_t left = x >> half_bits_, right = x & mask;
    for (uint64_t key : keys_) {
      SamplingRng f(right ^ key);
      const uint64_t next = left ^ (f.Next() & mask);
      left = right;
      right = next;
    }
    return (left << half_bits_) | right;
  }

  uint64_t n_;
  int half_bits_ = 0;
  uint64_t keys_[4];
};

}  // namespace

absl::StatusOr<uint64_t> GridPointCount(const v1::StudySpec& spec) {
  absl::StatusOr<Grid> grid = BuildGrid(spec);
  if (!grid.ok()) return grid.status();
  return grid->points;
}

absl::StatusOr<std::vector<v1::ParamAssignment>> GridSampler::Sample(const SampleRequest& request) {
  absl::StatusOr<Grid> built = BuildGrid(*request.spec);
  if (!built.ok()) return built.status();
  const Grid& grid = *built;
  // Digits the fixed values pin (-1: free, or fixed off the grid, which then constrains nothing).
  std::vector<int64_t> pinned(grid.params.size(), -1);
  std::vector<bool> fixed(grid.params.size(), false);
  for (size_t j = 0; j < grid.params.size(); ++j) {
    for (const auto& a : request.fixed) {
      if (a.name() != grid.params[j]->name()) continue;
      fixed[j] = true;
      pinned[j] = IndexOf(grid, static_cast<int>(j), a.value());
    }
  }
  const std::unordered_set<uint64_t> used = UsedPoints(grid, *request.history);
  const Permutation order(grid.points, request.spec->seed() ^ 0x67726964ULL);
  auto digits = [&](uint64_t point) {
    std::vector<uint64_t> out(grid.params.size());
    for (size_t j = grid.params.size(); j-- > 0;) {
      out[j] = point % grid.sizes[j];
      point /= grid.sizes[j];
    }
    return out;
  };
  auto agrees = [&](const std::vector<uint64_t>& d) {
    for (size_t j = 0; j < d.size(); ++j) {
      if (pinned[j] >= 0 && d[j] != static_cast<uint64_t>(pinned[j])) return false;
    }
    return true;
  };
  std::optional<std::vector<uint64_t>> chosen, first_agreeing;
  const uint64_t scan = std::min(grid.points, kMaxScan);
  for (uint64_t position = 0; position < scan && !chosen; ++position) {
    const uint64_t point = order(position);
    std::vector<uint64_t> d = digits(point);
    if (!agrees(d)) continue;
    if (!first_agreeing) first_agreeing = d;
    if (!used.count(point)) chosen = d;
  }
  if (!chosen) chosen = first_agreeing;
  if (!chosen && grid.points > 0) {
    // Pinned digits that no scanned point agrees with: the first point, with them overwritten.
    chosen = digits(order(0));
    for (size_t j = 0; j < pinned.size(); ++j) {
      if (pinned[j] >= 0) (*chosen)[j] = static_cast<uint64_t>(pinned[j]);
    }
  }
  std::vector<v1::ParamAssignment> params;
  if (!chosen) return params;  // an empty search space
  for (size_t j = 0; j < grid.params.size(); ++j) {
    if (fixed[j]) continue;
    v1::ParamAssignment a;
    a.set_name(grid.params[j]->name());
    *a.mutable_value() = GridValue(*grid.params[j], grid.dists[j], (*chosen)[j]);
    params.push_back(std::move(a));
  }
  return params;
}

bool GridSampler::Exhausted(const SampleRequest& request) const {
  absl::StatusOr<Grid> grid = BuildGrid(*request.spec);
  if (!grid.ok()) return true;  // nothing can be proposed
  return UsedPoints(*grid, *request.history).size() >= grid->points;
}

void NormalizeGridOptions(v1::StudySpec* spec, OptionReport* report) {
  bool has_grid = true;
  for (const v1::ParameterSpec& p : spec->search_space()) {
    if (p.has_float_range() && !p.float_range().has_step()) {
      has_grid = false;
      report->Error(
          "search_space." + p.name() + ".step",
          std::string("the grid sampler needs a step for float parameters: add one, "
                      "e.g. `step: 0.01`, or list the values as `choices`") +
              (p.float_range().log() ? " (a log range: choices such as [1e-5, 1e-4])" : ""));
    }
  }
  if (!has_grid || report->has_errors()) return;
  absl::StatusOr<uint64_t> points = GridPointCount(*spec);
  if (!points.ok()) {
    report->Error("search_space",
                  "spans more than 2^62 grid points: the grid sampler cannot enumerate it; use "
                  "tpe, sobol or random");
  } else if (spec->budget().has_n_trials() &&
             static_cast<uint64_t>(spec->budget().n_trials()) > *points) {
    report->Warning("budget.n_trials", absl::StrCat("the grid has ", *points,
                                                    " points; the study ends when they are all "
                                                    "tried"));
  }
}

}  // namespace hpsearch::server
