// The canonical metrics: the `optional double` fields of EpochMetrics (per epoch) and TestMetrics
// (the final test evaluation), found by protobuf reflection, in field-number order. This is the one
// list every layer reads: the study validator (which objective metrics are known), the coordinator
// (which values must be finite), the worker (which JSON keys of a command's output are canonical),
// and the results store (which columns its SQL binds and reads; the column of a metric carries the
// metric's name). Adding a field to the proto adds the metric everywhere; docs/contributing.md
// lists the rest (the schema migration, the docs).
//
// Any other numeric value a trial reports is an "extra" metric kept in the message's `extra` map.
// Thread-safety: everything here is immutable after first use and safe to call concurrently.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace hpsearch::proto {

using MetricField = const google::protobuf::FieldDescriptor*;

// The canonical per-epoch metrics (train_loss, val_loss, val_accuracy, ...).
const std::vector<MetricField>& EpochMetricFields();
// The canonical test metrics (test_loss, test_accuracy, ...).
const std::vector<MetricField>& TestMetricFields();

// Their names, in the same order.
const std::vector<std::string>& EpochMetricNames();
const std::vector<std::string>& TestMetricNames();

// The canonical metric named `name`, or nullptr.
MetricField FindEpochMetric(absl::string_view name);
MetricField FindTestMetric(absl::string_view name);

// The value of canonical metric `field` in `message` (an EpochMetrics or TestMetrics), or nullopt
// when it was not reported.
std::optional<double> GetMetric(const google::protobuf::Message& message, MetricField field);
void SetMetric(google::protobuf::Message* message, MetricField field, double value);

// "a, b, c": for error messages that list the known metrics.
std::string JoinNames(const std::vector<std::string>& names, absl::string_view separator = ", ");

}  // namespace hpsearch::proto
