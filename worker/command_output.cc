#include "worker/command_output.h"

#include <algorithm>
#include <initializer_list>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace hpsearch::worker {
namespace {

using nlohmann::json;

bool ReadNumber(const json& object, const char* key, double* out) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_number()) return false;
  *out = it->get<double>();
  return true;
}

// Every numeric field of `line` but those in `skip`: into the message's double field of that name
// (a canonical metric, proto/canonical_metrics.h, or a plain figure such as samples_per_second),
// or else into its extra metrics.
template <typename Message>
void ReadMetrics(const json& line, std::initializer_list<const char*> skip, Message* message) {
  const google::protobuf::Descriptor* descriptor = Message::descriptor();
  const google::protobuf::Reflection* reflection = Message::GetReflection();
  for (const auto& [key, value] : line.items()) {
    if (!value.is_number() ||
        std::any_of(skip.begin(), skip.end(), [&](const char* s) { return key == s; })) {
      continue;
    }
    const double number = value.template get<double>();
    const google::protobuf::FieldDescriptor* field = descriptor->FindFieldByName(key);
    if (field != nullptr && field->type() == google::protobuf::FieldDescriptor::TYPE_DOUBLE &&
        !field->is_repeated()) {
      reflection->SetDouble(message, field, number);
    } else {
      (*message->mutable_extra())[key] = number;
    }
  }
}

}  // namespace

absl::StatusOr<v1::EpochMetrics> EpochFromJson(const json& line, absl::Duration elapsed) {
  v1::EpochMetrics metrics;
  auto epoch = line.find("epoch");
  if (epoch == line.end() || !epoch->is_number_integer()) {
    return absl::InvalidArgumentError("an epoch line needs an integer \"epoch\" (1-based)");
  }
  metrics.set_epoch(epoch->get<int>());
  metrics.set_wall_time_seconds(absl::ToDoubleSeconds(elapsed));
  ReadMetrics(line, {"type", "epoch", "step"}, &metrics);
  auto step = line.find("step");
  if (step != line.end() && step->is_number()) metrics.set_step(step->get<int64_t>());
  auto last = line.find("last");
  if (last != line.end()) {
    if (!last->is_boolean()) {
      return absl::InvalidArgumentError(
          "\"last\" must be true (this is the trial's last epoch: it is never pruned) or false");
    }
    metrics.set_last(last->get<bool>());
  }
  return metrics;
}

v1::TrialProgress ProgressFromJson(const json& line) {
  v1::TrialProgress progress;
  double x = 0;
  if (ReadNumber(line, "epoch", &x)) progress.set_epoch(static_cast<int32_t>(x));
  if (ReadNumber(line, "epochs", &x)) progress.set_epochs(static_cast<int32_t>(x));
  if (ReadNumber(line, "step", &x)) progress.set_step(static_cast<int64_t>(x));
  if (ReadNumber(line, "total_steps", &x)) progress.set_total_steps(static_cast<int64_t>(x));
  if (ReadNumber(line, "samples_per_second", &x)) progress.set_samples_per_second(x);
  if (ReadNumber(line, "eta_seconds", &x)) progress.set_eta_seconds(x);
  return progress;
}

v1::TrainSummary TrainFromJson(const json& line) {
  v1::TrainSummary train;
  double x = 0;
  if (ReadNumber(line, "global_steps", &x)) train.set_global_steps(static_cast<int64_t>(x));
  if (ReadNumber(line, "train_loss", &x)) train.set_train_loss(x);
  if (ReadNumber(line, "runtime_seconds", &x)) train.set_runtime_seconds(x);
  if (ReadNumber(line, "samples_per_second", &x)) train.set_samples_per_second(x);
  if (ReadNumber(line, "steps_per_second", &x)) train.set_steps_per_second(x);
  if (ReadNumber(line, "total_flos", &x)) train.set_total_flos(x);
  if (ReadNumber(line, "epochs", &x)) train.set_epochs(x);
  return train;
}

v1::TestMetrics TestFromJson(const json& line) {
  v1::TestMetrics test;
  ReadMetrics(line, {"type"}, &test);
  return test;
}

}  // namespace hpsearch::worker
