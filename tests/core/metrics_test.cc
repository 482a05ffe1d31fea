#include "core/metrics.h"

#include "core/catch_torch.h"

#include "core/error.h"

namespace hpsearch::core {
namespace {

using Catch::WithinAbs;

TEST_CASE("Metrics of a perfect prediction are all 1", "[core][metrics]") {
  const ClassificationMetrics m = ComputeClassificationMetrics({3, 1, 2, 3}, {3, 1, 2, 3});
  REQUIRE(m.accuracy == 1.0);
  REQUIRE(m.f1_weighted == 1.0);
  REQUIRE(m.f1_macro == 1.0);
  REQUIRE(m.per_class.size() == 3);
}

TEST_CASE("Metrics count a class that is only predicted, computed by hand", "[core][metrics]") {
  // Classes {0, 1, 3}. Class 0: tp 1, fp 1, fn 1 -> F1 2/4 = 0.5. Class 1: tp 2, fp 0, fn 1 -> 4/5
  // = 0.8. Class 3 (never true): tp 0, fp 1 -> 0. Macro (0.5 + 0.8 + 0) / 3; weighted (0.5*2 +
  // 0.8*3) / 5 = 0.68.
  const ClassificationMetrics m = ComputeClassificationMetrics({0, 0, 1, 1, 1}, {0, 3, 1, 1, 0});
  REQUIRE_THAT(m.accuracy, WithinAbs(0.6, 1e-15));
  REQUIRE_THAT(m.f1_weighted, WithinAbs(0.68, 1e-15));
  REQUIRE_THAT(m.f1_macro, WithinAbs(1.3 / 3.0, 1e-15));
  REQUIRE(m.per_class.size() == 3);
  REQUIRE(m.per_class[2].label == 3);
  REQUIRE(m.per_class[2].false_positives == 1);
  REQUIRE(m.per_class[2].support == 0);
  REQUIRE(m.per_class[2].f1 == 0.0);
  REQUIRE(m.per_class[1].support == 3);
}

struct SklearnCase {
  std::vector<int64_t> y_true;
  std::vector<int64_t> y_pred;
  double accuracy, f1_weighted, f1_macro;
};

TEST_CASE("Metrics match scikit-learn", "[core][metrics]") {
  // Expected values from scikit-learn 1.2.1 (/usr/bin/python3, Debian 12):
  //   accuracy_score(t, p), f1_score(t, p, average="weighted", zero_division=0),
  //   f1_score(t, p, average="macro", zero_division=0), printed with repr().
  std::vector<SklearnCase> cases = {
      {{0, 1, 2, 0, 1, 2},
       {0, 2, 1, 0, 0, 1},
       0.3333333333333333,
       0.26666666666666666,
       0.26666666666666666},
      {{0, 0, 1, 1, 1}, {0, 3, 1, 1, 0}, 0.6, 0.68, 0.43333333333333335},
      {{5, 5, 5, 5, 40, 40, 7},
       {5, 5, 40, 7, 40, 2, 2},
       0.42857142857142855,
       0.5238095238095238,
       0.29166666666666663},
  };
  // t = [(i*7 + i*i) % 9 for i in range(300)]; p = [t[i] if (i*13) % 5 != 0 else (i*3) % 11 ...].
  SklearnCase formula{{}, {}, 0.8166666666666667, 0.8718564035317773, 0.3165680804901891};
  for (int64_t i = 0; i < 300; ++i) {
    formula.y_true.push_back((i * 7 + i * i) % 9);
    formula.y_pred.push_back((i * 13) % 5 != 0 ? formula.y_true.back() : (i * 3) % 11);
  }
  cases.push_back(formula);
  for (const SklearnCase& c : cases) {
    const ClassificationMetrics m = ComputeClassificationMetrics(c.y_true, c.y_pred);
    REQUIRE_THAT(m.accuracy, WithinAbs(c.accuracy, 1e-12));
    REQUIRE_THAT(m.f1_weighted, WithinAbs(c.f1_weighted, 1e-12));
    REQUIRE_THAT(m.f1_macro, WithinAbs(c.f1_macro, 1e-12));
    REQUIRE(Accuracy(c.y_true, c.y_pred) == m.accuracy);
    REQUIRE(F1Weighted(c.y_true, c.y_pred) == m.f1_weighted);
    REQUIRE(F1Macro(c.y_true, c.y_pred) == m.f1_macro);
  }
}

TEST_CASE("Metrics refuse empty or mismatched vectors", "[core][metrics]") {
  REQUIRE_THROWS_AS(ComputeClassificationMetrics({}, {}), Error);
  REQUIRE_THROWS_AS(ComputeClassificationMetrics({1, 2}, {1}), Error);
}

}  // namespace
}  // namespace hpsearch::core
