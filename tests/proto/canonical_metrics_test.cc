// The canonical metrics derived from the proto: the list every layer reads.
#include "proto/canonical_metrics.h"

#include <catch2/catch.hpp>

#include "hpsearch/v1/trial.pb.h"

namespace hpsearch::proto {
namespace {

TEST_CASE("The canonical metrics are the optional doubles of EpochMetrics and TestMetrics",
          "[proto][metrics]") {
  CHECK(EpochMetricNames() == std::vector<std::string>{"train_loss", "val_loss", "val_accuracy",
                                                       "val_f1", "val_f1_macro"});
  CHECK(TestMetricNames() ==
        std::vector<std::string>{"test_loss", "test_accuracy", "test_f1", "test_f1_macro"});
  // Plain figures (throughput, wall time) and the counters are not metrics an objective can use.
  CHECK(FindEpochMetric("samples_per_second") == nullptr);
  CHECK(FindEpochMetric("epoch") == nullptr);
  CHECK(FindTestMetric("runtime_seconds") == nullptr);
  CHECK(FindEpochMetric("test_accuracy") == nullptr);
  CHECK(JoinNames(TestMetricNames()) == "test_loss, test_accuracy, test_f1, test_f1_macro");
}

TEST_CASE("A canonical metric reads as unset until reported and round-trips its value",
          "[proto][metrics]") {
  v1::EpochMetrics epoch;
  MetricField accuracy = FindEpochMetric("val_accuracy");
  REQUIRE(accuracy != nullptr);
  CHECK_FALSE(GetMetric(epoch, accuracy).has_value());
  SetMetric(&epoch, accuracy, 0.0);  // zero is a value, not "unset"
  REQUIRE(GetMetric(epoch, accuracy).has_value());
  CHECK(*GetMetric(epoch, accuracy) == 0.0);
  CHECK(epoch.has_val_accuracy());

  v1::TestMetrics test;
  SetMetric(&test, FindTestMetric("test_f1_macro"), 0.75);
  CHECK(test.test_f1_macro() == 0.75);
  CHECK_FALSE(test.has_test_loss());
}

}  // namespace
}  // namespace hpsearch::proto
