#include "proto/canonical_metrics.h"

#include <algorithm>

#include "absl/strings/str_join.h"
#include "hpsearch/v1/trial.pb.h"

namespace hpsearch::proto {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

// The fields of `descriptor` that are `optional double` (explicit presence), by field number.
std::vector<MetricField> OptionalDoubles(const Descriptor* descriptor) {
  std::vector<MetricField> fields;
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor* field = descriptor->field(i);
    if (field->type() == FieldDescriptor::TYPE_DOUBLE && !field->is_repeated() &&
        field->has_presence()) {
      fields.push_back(field);
    }
  }
  std::sort(fields.begin(), fields.end(),
            [](MetricField a, MetricField b) { return a->number() < b->number(); });
  return fields;
}

std::vector<std::string> Names(const std::vector<MetricField>& fields) {
  std::vector<std::string> names;
  names.reserve(fields.size());
  for (MetricField field : fields) names.push_back(field->name());
  return names;
}

MetricField Find(const std::vector<MetricField>& fields, absl::string_view name) {
  for (MetricField field : fields) {
    if (field->name() == name) return field;
  }
  return nullptr;
}

}  // namespace

const std::vector<MetricField>& EpochMetricFields() {
  static const auto* const fields =
      new std::vector<MetricField>(OptionalDoubles(v1::EpochMetrics::descriptor()));
  return *fields;
}

const std::vector<MetricField>& TestMetricFields() {
  static const auto* const fields =
      new std::vector<MetricField>(OptionalDoubles(v1::TestMetrics::descriptor()));
  return *fields;
}

const std::vector<std::string>& EpochMetricNames() {
  static const auto* const names = new std::vector<std::string>(Names(EpochMetricFields()));
  return *names;
}

const std::vector<std::string>& TestMetricNames() {
  static const auto* const names = new std::vector<std::string>(Names(TestMetricFields()));
  return *names;
}

MetricField FindEpochMetric(absl::string_view name) { return Find(EpochMetricFields(), name); }
MetricField FindTestMetric(absl::string_view name) { return Find(TestMetricFields(), name); }

std::optional<double> GetMetric(const google::protobuf::Message& message, MetricField field) {
  const google::protobuf::Reflection* reflection = message.GetReflection();
  if (!reflection->HasField(message, field)) return std::nullopt;
  return reflection->GetDouble(message, field);
}

void SetMetric(google::protobuf::Message* message, MetricField field, double value) {
  message->GetReflection()->SetDouble(message, field, value);
}

std::string JoinNames(const std::vector<std::string>& names, absl::string_view separator) {
  return absl::StrJoin(names, separator);
}

}  // namespace hpsearch::proto
