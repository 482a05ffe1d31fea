#include "worker/command_output.h"

#include <algorithm>
#include <initializer_list>

namespace hpsearch::worker {
namespace {

using nlohmann::json;

bool ReadNumber(const json& object, const char* key, double* out) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_number()) return false;
  *out = it->get<double>();
  return true;
}

// A canonical metric's JSON key and the field it sets.
template <typename Message>
struct NumberField {
  const char* key;
  void (Message::*set)(double);
};

// Every numeric field of `line` but those in `skip`: into its canonical field, or else into the
// message's extra metrics.
template <typename Message>
void ReadMetrics(const json& line, std::initializer_list<const char*> skip,
                 std::initializer_list<NumberField<Message>> fields, Message* message) {
  for (const auto& [key, value] : line.items()) {
    if (!value.is_number() ||
        std::any_of(skip.begin(), skip.end(), [&](const char* s) { return key == s; })) {
      continue;
    }
    const double number = value.template get<double>();
    auto field = std::find_if(fields.begin(), fields.end(),
                              [&](const NumberField<Message>& f) { return key == f.key; });
    if (field != fields.end()) {
      (message->*field->set)(number);
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
  using M = v1::EpochMetrics;
  ReadMetrics<M>(line, {"type", "epoch", "step"},
                 {{"train_loss", &M::set_train_loss},
                  {"val_loss", &M::set_val_loss},
                  {"val_accuracy", &M::set_val_accuracy},
                  {"val_f1", &M::set_val_f1},
                  {"val_f1_macro", &M::set_val_f1_macro},
                  {"samples_per_second", &M::set_samples_per_second},
                  {"wall_time_seconds", &M::set_wall_time_seconds}},
                 &metrics);
  auto step = line.find("step");
  if (step != line.end() && step->is_number()) metrics.set_step(step->get<int64_t>());
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
  using T = v1::TestMetrics;
  ReadMetrics<T>(line, {"type"},
                 {{"test_loss", &T::set_test_loss},
                  {"test_accuracy", &T::set_test_accuracy},
                  {"test_f1", &T::set_test_f1},
                  {"test_f1_macro", &T::set_test_f1_macro},
                  {"runtime_seconds", &T::set_runtime_seconds},
                  {"samples_per_second", &T::set_samples_per_second},
                  {"steps_per_second", &T::set_steps_per_second}},
                 &test);
  return test;
}

}  // namespace hpsearch::worker
