#include "core/metrics.h"

#include <map>
#include <string>

#include "core/error.h"

namespace hpsearch::core {

ClassificationMetrics ComputeClassificationMetrics(const std::vector<int64_t>& y_true,
                                                   const std::vector<int64_t>& y_pred) {
  if (y_true.size() != y_pred.size()) {
    Fail(ErrorCode::kInvalidArgument, "metrics: y_true has " + std::to_string(y_true.size()) +
                                          " entries but y_pred has " +
                                          std::to_string(y_pred.size()));
  }
  if (y_true.empty()) Fail(ErrorCode::kInvalidArgument, "metrics: no predictions to score");
  // An ordered map gives the sorted union of labels for free, whatever range the ids span.
  std::map<int64_t, ClassScore> scores;
  int64_t correct = 0;
  for (size_t i = 0; i < y_true.size(); ++i) {
    ClassScore& truth = scores[y_true[i]];
    ++truth.support;
    if (y_true[i] == y_pred[i]) {
      ++truth.true_positives;
      ++correct;
    } else {
      ++truth.false_negatives;
      ++scores[y_pred[i]].false_positives;
    }
  }
  ClassificationMetrics metrics;
  const double n = static_cast<double>(y_true.size());
  metrics.accuracy = static_cast<double>(correct) / n;
  double f1_sum = 0.0;
  double f1_weighted_sum = 0.0;
  for (auto& [label, score] : scores) {
    score.label = label;
    const int64_t denominator =
        2 * score.true_positives + score.false_positives + score.false_negatives;
    score.f1 =
        denominator == 0 ? 0.0 : 2.0 * static_cast<double>(score.true_positives) / denominator;
    f1_sum += score.f1;
    f1_weighted_sum += score.f1 * static_cast<double>(score.support);
    metrics.per_class.push_back(score);
  }
  metrics.f1_macro = f1_sum / static_cast<double>(scores.size());
  metrics.f1_weighted = f1_weighted_sum / n;
  return metrics;
}

double Accuracy(const std::vector<int64_t>& y_true, const std::vector<int64_t>& y_pred) {
  return ComputeClassificationMetrics(y_true, y_pred).accuracy;
}

double F1Weighted(const std::vector<int64_t>& y_true, const std::vector<int64_t>& y_pred) {
  return ComputeClassificationMetrics(y_true, y_pred).f1_weighted;
}

double F1Macro(const std::vector<int64_t>& y_true, const std::vector<int64_t>& y_pred) {
  return ComputeClassificationMetrics(y_true, y_pred).f1_macro;
}

}  // namespace hpsearch::core
