#include "server/report/importance.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <random>

#include "absl/strings/str_cat.h"

namespace hpsearch::server {
namespace {

// One search-space parameter as a feature of the forest.
struct Column {
  std::string name;
  double lo = 0;  // the box the marginals integrate over, in feature space
  double hi = 0;
  bool constant = true;  // one value in every trial used: importance 0, never split on
};

// Rows of feature values (one per trial used) and their objective values.
struct Data {
  std::vector<Column> columns;
  std::vector<std::vector<double>> x;
  std::vector<double> y;
};

struct Node {
  int feature = -1;  // -1: a leaf
  double threshold = 0;
  int left = -1;  // x[feature] <= threshold
  int right = -1;
  double value = 0;  // a leaf's prediction: the mean objective of its trials
};

std::optional<double> Number(const v1::ParamValue& v) {
  if (v.kind_case() == v1::ParamValue::kDoubleValue) return v.double_value();
  if (v.kind_case() == v1::ParamValue::kIntValue) return static_cast<double>(v.int_value());
  return std::nullopt;
}

bool SameChoice(const v1::ParamValue& a, const v1::ParamValue& b) {
  if (Number(a) && Number(b)) return *Number(a) == *Number(b);
  if (a.kind_case() != b.kind_case()) return false;
  if (a.kind_case() == v1::ParamValue::kBoolValue) return a.bool_value() == b.bool_value();
  return a.string_value() == b.string_value();
}

// The feature value of `v` under `p`'s distribution, or nullopt when it does not fit.
std::optional<double> Feature(const v1::ParameterSpec& p, const v1::ParamValue& v) {
  if (p.has_categorical()) {
    for (int i = 0; i < p.categorical().choices_size(); ++i) {
      if (SameChoice(p.categorical().choices(i), v)) return static_cast<double>(i);
    }
    return std::nullopt;
  }
  std::optional<double> n = Number(v);
  if (!n || !std::isfinite(*n)) return std::nullopt;
  const bool log =
      (p.has_float_range() && p.float_range().log()) || (p.has_int_range() && p.int_range().log());
  if (log) {
    if (*n <= 0) return std::nullopt;
    return std::log10(*n);
  }
  return *n;
}

// The spec's box of `p` in feature space; a grid's (int or stepped float) end points get half a
// step on the outside, so every grid value weighs the same in the marginals.
std::pair<double, double> SpecBounds(const v1::ParameterSpec& p) {
  auto transformed = [](double lo, double hi, double half_step, bool log) {
    lo -= half_step;
    hi += half_step;
    if (log) {
      // A log grid starting at 1 with step 1 would reach 0.5; never below a positive fraction.
      lo = std::log10(std::max(lo, (lo + half_step) / 2));
      hi = std::log10(hi);
    }
    return std::make_pair(lo, hi);
  };
  if (p.has_categorical()) return {-0.5, p.categorical().choices_size() - 0.5};
  if (p.has_int_range()) {
    const v1::IntDistribution& r = p.int_range();
    const double step = r.has_step() && r.step() > 0 ? static_cast<double>(r.step()) : 1.0;
    return transformed(static_cast<double>(r.low()), static_cast<double>(r.high()), step / 2,
                       r.log());
  }
  if (p.has_float_range()) {
    const v1::FloatDistribution& r = p.float_range();
    const double half = r.has_step() && r.step() > 0 ? r.step() / 2 : 0;
    if (r.log() && r.low() <= 0) return {NAN, NAN};  // the validator refuses it; use the data
    return transformed(r.low(), r.high(), half, r.log());
  }
  return {NAN, NAN};
}

Data Collect(const v1::StudySpec& spec, const std::vector<v1::Trial>& trials, int* complete,
             int* skipped) {
  Data data;
  *complete = 0;
  *skipped = 0;
  for (const v1::Trial& t : trials) {
    if (t.kind() != v1::TRIAL_KIND_SEARCH || t.state() != v1::TRIAL_STATE_COMPLETE ||
        !t.has_objective_value() || !std::isfinite(t.objective_value())) {
      continue;
    }
    ++*complete;
    std::vector<double> row;
    for (const v1::ParameterSpec& p : spec.search_space()) {
      std::optional<double> f;
      for (const v1::ParamAssignment& a : t.params()) {
        if (a.name() == p.name()) {
          f = Feature(p, a.value());
          break;
        }
      }
      if (!f) break;
      row.push_back(*f);
    }
    if (row.size() != static_cast<size_t>(spec.search_space_size())) {
      ++*skipped;
      continue;
    }
    data.x.push_back(std::move(row));
    data.y.push_back(t.objective_value());
  }
  for (int j = 0; j < spec.search_space_size(); ++j) {
    Column c;
    c.name = spec.search_space(j).name();
    auto [lo, hi] = SpecBounds(spec.search_space(j));
    double data_lo = INFINITY, data_hi = -INFINITY;
    for (const std::vector<double>& row : data.x) {
      data_lo = std::min(data_lo, row[j]);
      data_hi = std::max(data_hi, row[j]);
    }
    c.constant = !(data_lo < data_hi);
    c.lo = std::isfinite(lo) ? std::min(lo, data_lo) : data_lo;
    c.hi = std::isfinite(hi) ? std::max(hi, data_hi) : data_hi;
    data.columns.push_back(std::move(c));
  }
  return data;
}

// A regression tree grown as sklearn's DecisionTreeRegressor (squared error, best split over the
// features, threshold halfway between neighbouring values), on a bootstrap sample.
class Tree {
 public:
  Tree(const Data& data, const ImportanceOptions& options, std::mt19937_64* rng)
      : data_(data), options_(options), rng_(rng) {
    for (size_t j = 0; j < data.columns.size(); ++j) {
      if (!data.columns[j].constant) features_.push_back(static_cast<int>(j));
    }
    std::uniform_int_distribution<size_t> pick(0, data.y.size() - 1);
    sample_.resize(data.y.size());
    for (int& i : sample_) i = static_cast<int>(pick(*rng_));
    // The bootstrap sample's positions sorted by each feature once; a split partitions these
    // lists in order, so no node sorts again.
    std::vector<int> positions(sample_.size());
    std::iota(positions.begin(), positions.end(), 0);
    std::vector<std::vector<int>> sorted(features_.size(), positions);
    for (size_t k = 0; k < features_.size(); ++k) {
      std::stable_sort(sorted[k].begin(), sorted[k].end(),
                       [&](int a, int b) { return X(a, features_[k]) < X(b, features_[k]); });
    }
    goes_left_.assign(sample_.size(), 0);
    Grow(positions, sorted, 0);
  }

  // The fraction of the objective's variance over the box that feature j explains by itself, or
  // nullopt when the tree predicts the same everywhere.
  std::vector<std::optional<double>> FirstOrderShares() const {
    const size_t d = data_.columns.size();
    // Each leaf's box.
    struct Leaf {
      double value;
      std::vector<double> lo, hi;
    };
    std::vector<Leaf> leaves;
    std::vector<double> lo(d), hi(d);
    for (size_t j = 0; j < d; ++j) {
      lo[j] = data_.columns[j].lo;
      hi[j] = data_.columns[j].hi;
    }
    CollectLeaves(0, lo, hi, &leaves);
    auto fraction = [&](const Leaf& leaf, size_t j) {
      const double width = data_.columns[j].hi - data_.columns[j].lo;
      return width > 0 ? (leaf.hi[j] - leaf.lo[j]) / width : 1.0;
    };
    std::vector<double> volume(leaves.size(), 1.0);
    double mean = 0;
    for (size_t l = 0; l < leaves.size(); ++l) {
      for (size_t j = 0; j < d; ++j) volume[l] *= fraction(leaves[l], j);
      mean += volume[l] * leaves[l].value;
    }
    double total = 0;
    for (size_t l = 0; l < leaves.size(); ++l) {
      total += volume[l] * (leaves[l].value - mean) * (leaves[l].value - mean);
    }
    std::vector<std::optional<double>> shares(d);
    if (!(total > 0)) return shares;
    for (size_t j = 0; j < d; ++j) {
      std::vector<double> cuts;
      for (const Node& n : nodes_) {
        if (n.feature == static_cast<int>(j)) cuts.push_back(n.threshold);
      }
      std::sort(cuts.begin(), cuts.end());
      cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
      // Cell c spans [edges[c], edges[c + 1]]; the marginal prediction on a cell is the mean of
      // the leaves over it, each weighed by its volume in the other features.
      std::vector<double> edges{data_.columns[j].lo};
      edges.insert(edges.end(), cuts.begin(), cuts.end());
      edges.push_back(data_.columns[j].hi);
      const size_t cells = edges.size() - 1;
      std::vector<double> delta(cells + 1, 0.0);
      for (size_t l = 0; l < leaves.size(); ++l) {
        const double others = volume[l] / fraction(leaves[l], j);
        const size_t first =
            std::lower_bound(edges.begin(), edges.end(), leaves[l].lo[j]) - edges.begin();
        const size_t last =
            std::lower_bound(edges.begin(), edges.end(), leaves[l].hi[j]) - edges.begin();
        delta[first] += leaves[l].value * others;
        delta[std::min(last, cells)] -= leaves[l].value * others;
      }
      const double width = edges.back() - edges.front();
      double marginal = 0, variance = 0;
      for (size_t c = 0; c < cells; ++c) {
        marginal += delta[c];
        variance += (edges[c + 1] - edges[c]) / width * (marginal - mean) * (marginal - mean);
      }
      shares[j] = std::clamp(variance / total, 0.0, 1.0);
    }
    return shares;
  }

 private:
  double X(int position, int feature) const { return data_.x[sample_[position]][feature]; }
  double Y(int position) const { return data_.y[sample_[position]]; }

  // Grows the node of the sample positions `rows`; sorted[k] holds them in ascending order of
  // features_[k]. Consumes `sorted`.
  int Grow(const std::vector<int>& rows, std::vector<std::vector<int>>& sorted, int depth) {
    const int index = static_cast<int>(nodes_.size());
    nodes_.emplace_back();
    double sum = 0;
    for (int r : rows) sum += Y(r);
    const double m = static_cast<double>(rows.size());
    nodes_[index].value = sum / m;
    bool pure = true;
    for (int r : rows) pure = pure && Y(r) == Y(rows[0]);
    if (pure || depth >= options_.max_depth ||
        static_cast<int>(rows.size()) < options_.min_samples_split) {
      return index;
    }
    // The split that most lowers the squared error: maximise sum_l^2 / n_l + sum_r^2 / n_r.
    std::vector<size_t> order(features_.size());
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), *rng_);
    const int min_leaf = options_.min_samples_leaf;
    double best_gain = sum * sum / m;
    int best_k = -1;
    double best_threshold = 0;
    for (size_t k : order) {
      const int f = features_[k];
      const std::vector<int>& by_value = sorted[k];
      double left_sum = 0;
      for (size_t i = 1; i < by_value.size(); ++i) {
        left_sum += Y(by_value[i - 1]);
        const double below = X(by_value[i - 1], f), above = X(by_value[i], f);
        if (!(below < above)) continue;
        const double n_left = static_cast<double>(i);
        if (n_left < min_leaf || m - n_left < min_leaf) continue;
        const double right_sum = sum - left_sum;
        const double gain = left_sum * left_sum / n_left + right_sum * right_sum / (m - n_left);
        // A relative margin keeps rounding noise from choosing a split that explains nothing.
        if (gain > best_gain + 1e-12 * std::abs(best_gain)) {
          best_gain = gain;
          best_k = static_cast<int>(k);
          best_threshold = below + (above - below) / 2;
          if (!(best_threshold < above)) best_threshold = below;
        }
      }
    }
    if (best_k < 0) return index;
    const int best_feature = features_[best_k];
    std::vector<int> left, right;
    for (int r : rows) {
      goes_left_[r] = X(r, best_feature) <= best_threshold;
      (goes_left_[r] ? left : right).push_back(r);
    }
    std::vector<std::vector<int>> left_sorted(sorted.size()), right_sorted(sorted.size());
    for (size_t k = 0; k < sorted.size(); ++k) {
      left_sorted[k].reserve(left.size());
      right_sorted[k].reserve(right.size());
      for (int r : sorted[k]) (goes_left_[r] ? left_sorted[k] : right_sorted[k]).push_back(r);
      std::vector<int>().swap(sorted[k]);
    }
    const int l = Grow(left, left_sorted, depth + 1);
    std::vector<std::vector<int>>().swap(left_sorted);
    const int r = Grow(right, right_sorted, depth + 1);
    nodes_[index].feature = best_feature;
    nodes_[index].threshold = best_threshold;
    nodes_[index].left = l;
    nodes_[index].right = r;
    return index;
  }

  template <typename Leaf>
  void CollectLeaves(int index, std::vector<double> lo, std::vector<double> hi,
                     std::vector<Leaf>* leaves) const {
    const Node& n = nodes_[index];
    if (n.feature < 0) {
      leaves->push_back({n.value, std::move(lo), std::move(hi)});
      return;
    }
    std::vector<double> left_hi = hi, right_lo = lo;
    left_hi[n.feature] = n.threshold;
    right_lo[n.feature] = n.threshold;
    CollectLeaves(n.left, lo, std::move(left_hi), leaves);
    CollectLeaves(n.right, std::move(right_lo), std::move(hi), leaves);
  }

  const Data& data_;
  const ImportanceOptions& options_;
  std::mt19937_64* rng_;
  std::vector<int> features_;    // the columns that vary, the only ones split on
  std::vector<int> sample_;      // the bootstrap sample: data rows, with repeats
  std::vector<char> goes_left_;  // by sample position, for the split being made
  std::vector<Node> nodes_;
};

// SplitMix64: independent-looking seeds for the trees from one seed.
uint64_t Mix(uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace

absl::StatusOr<StudyImportance> ComputeParameterImportance(const v1::StudySpec& spec,
                                                           const std::vector<v1::Trial>& trials,
                                                           const ImportanceOptions& options) {
  if (options.n_trees < 1 || options.max_depth < 1 || options.min_samples_split < 2 ||
      options.min_samples_leaf < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "importance options out of range: n_trees ", options.n_trees, ", max_depth ",
        options.max_depth, ", min_samples_split ", options.min_samples_split, ", min_samples_leaf ",
        options.min_samples_leaf, " (each must be >= 1, min_samples_split >= 2)"));
  }
  StudyImportance result;
  if (spec.search_space().empty()) return result;
  int complete = 0;
  Data data = Collect(spec, trials, &complete, &result.skipped_trials);
  result.trials_used = static_cast<int>(data.y.size());
  if (result.trials_used < 2) {
    return absl::FailedPreconditionError(absl::StrCat(
        "parameter importance needs at least 2 complete search trials with an objective value "
        "and every searched parameter; the study has ",
        complete, " complete", result.skipped_trials > 0 ? "" : ".",
        result.skipped_trials > 0
            ? absl::StrCat(", of which ", result.skipped_trials,
                           " lack a searched parameter or have a value outside its distribution.")
            : "",
        " Run more trials and try again."));
  }
  const size_t d = data.columns.size();
  std::vector<double> share_sum(d, 0.0);
  int varying_trees = 0;
  for (int t = 0; t < options.n_trees; ++t) {
    std::mt19937_64 rng(Mix(options.seed ^ Mix(static_cast<uint64_t>(t))));
    Tree tree(data, options, &rng);
    std::vector<std::optional<double>> shares = tree.FirstOrderShares();
    if (!shares.empty() && !shares[0]) continue;  // this tree predicts a constant
    ++varying_trees;
    for (size_t j = 0; j < d; ++j) share_sum[j] += shares[j].value_or(0);
  }
  double total = 0;
  for (size_t j = 0; j < d; ++j) {
    if (data.columns[j].constant || varying_trees == 0) share_sum[j] = 0;
    total += share_sum[j];
  }
  for (size_t j = 0; j < d; ++j) {
    result.parameters.push_back({data.columns[j].name, total > 0 ? share_sum[j] / total : 0.0});
  }
  std::stable_sort(result.parameters.begin(), result.parameters.end(),
                   [](const ParameterImportance& a, const ParameterImportance& b) {
                     return a.importance > b.importance;
                   });
  return result;
}

}  // namespace hpsearch::server
