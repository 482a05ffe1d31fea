// Classification metrics over predicted and true class ids, defined exactly as scikit-learn 1.2
// defines accuracy_score and f1_score(average="weighted" | "macro", zero_division=0):
//   - the classes scored are the sorted union of the ids in y_true and y_pred (sklearn's
//   unique_labels), so a
//     class that is only ever predicted counts in the macro average with F1 = 0, and a class that
//     occurs in neither vector does not count at all;
//   - per class, F1 = 2*tp / (2*tp + fp + fn) (equal to 2PR/(P+R); 0 where precision or recall is
//   undefined);
//   - macro = the unweighted mean of per-class F1; weighted = the mean weighted by support (true
//   count).
// Plain C++ on vectors; no LibTorch.
//
// Thread-safety: free functions; safe to call concurrently.
#pragma once

#include <cstdint>
#include <vector>

namespace hpsearch::core {

struct ClassScore {
  int64_t label = 0;
  int64_t true_positives = 0;
  int64_t false_positives = 0;
  int64_t false_negatives = 0;
  int64_t support = 0;  // occurrences in y_true (true_positives + false_negatives)
  double f1 = 0.0;
};

struct ClassificationMetrics {
  double accuracy = 0.0;
  double f1_weighted = 0.0;
  double f1_macro = 0.0;
  std::vector<ClassScore> per_class;  // one per label in the sorted union of y_true and y_pred
};

// All metrics at once. Throws kInvalidArgument when the vectors differ in length or are empty.
ClassificationMetrics ComputeClassificationMetrics(const std::vector<int64_t>& y_true,
                                                   const std::vector<int64_t>& y_pred);

// Shorthands for one number each; same preconditions.
double Accuracy(const std::vector<int64_t>& y_true, const std::vector<int64_t>& y_pred);
double F1Weighted(const std::vector<int64_t>& y_true, const std::vector<int64_t>& y_pred);
double F1Macro(const std::vector<int64_t>& y_true, const std::vector<int64_t>& y_pred);

}  // namespace hpsearch::core
