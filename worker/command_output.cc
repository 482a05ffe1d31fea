#include "worker/command_output.h"

namespace hpsearch::worker {
namespace {

using nlohmann::json;

bool ReadNumber(const json& object, const char* key, double* out) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_number()) return false;
  *out = it->get<double>();
  return true;
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
  for (const auto& [key, value] : line.items()) {
    if (key == "type" || key == "epoch" || !value.is_number()) continue;
    double number = value.get<double>();
    if (key == "train_loss") {
      metrics.set_train_loss(number);
    } else if (key == "val_loss") {
      metrics.set_val_loss(number);
    } else if (key == "val_accuracy") {
      metrics.set_val_accuracy(number);
    } else if (key == "val_f1") {
      metrics.set_val_f1(number);
    } else if (key == "val_f1_macro") {
      metrics.set_val_f1_macro(number);
    } else if (key == "step") {
      metrics.set_step(value.get<int64_t>());
    } else if (key == "samples_per_second") {
      metrics.set_samples_per_second(number);
    } else if (key == "wall_time_seconds") {
      metrics.set_wall_time_seconds(number);
    } else {
      (*metrics.mutable_extra())[key] = number;
    }
  }
  return metrics;
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
  for (const auto& [key, value] : line.items()) {
    if (key == "type" || !value.is_number()) continue;
    double number = value.get<double>();
    if (key == "test_loss") {
      test.set_test_loss(number);
    } else if (key == "test_accuracy") {
      test.set_test_accuracy(number);
    } else if (key == "test_f1") {
      test.set_test_f1(number);
    } else if (key == "test_f1_macro") {
      test.set_test_f1_macro(number);
    } else if (key == "runtime_seconds") {
      test.set_runtime_seconds(number);
    } else if (key == "samples_per_second") {
      test.set_samples_per_second(number);
    } else if (key == "steps_per_second") {
      test.set_steps_per_second(number);
    } else {
      (*test.mutable_extra())[key] = number;
    }
  }
  return test;
}

}  // namespace hpsearch::worker
