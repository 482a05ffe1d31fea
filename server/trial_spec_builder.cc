#include "server/trial_spec_builder.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <cmath>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "server/study_file/study_view.h"

namespace hpsearch::server {
namespace {

using google::protobuf::FieldDescriptor;

bool SetNumericField(const v1::ParamValue& value, const FieldDescriptor* field,
                     google::protobuf::Message* message) {
  const google::protobuf::Reflection* reflection = message->GetReflection();
  double number = 0;
  switch (value.kind_case()) {
    case v1::ParamValue::kDoubleValue:
      number = value.double_value();
      break;
    case v1::ParamValue::kIntValue:
      number = static_cast<double>(value.int_value());
      break;
    case v1::ParamValue::kBoolValue:
      number = value.bool_value() ? 1 : 0;
      break;
    default:
      return false;
  }
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_DOUBLE:
      reflection->SetDouble(message, field, number);
      return true;
    case FieldDescriptor::CPPTYPE_INT32:
      reflection->SetInt32(message, field, static_cast<int32_t>(std::llround(number)));
      return true;
    case FieldDescriptor::CPPTYPE_BOOL:
      reflection->SetBool(message, field, number != 0);
      return true;
    default:
      return false;
  }
}

}  // namespace

bool ApplyParameter(const v1::ParamAssignment& param, v1::TrainingSpec* training,
                    v1::LoraSpec* lora) {
  if (const FieldDescriptor* field = training->GetDescriptor()->FindFieldByName(param.name())) {
    return SetNumericField(param.value(), field, training);
  }
  if (absl::StartsWith(param.name(), "lora_")) {
    std::string name = param.name().substr(5);
    if (const FieldDescriptor* field = lora->GetDescriptor()->FindFieldByName(name)) {
      return SetNumericField(param.value(), field, lora);
    }
  }
  return false;
}

v1::TrialSpec BuildTrialSpec(const v1::Study& study, const v1::Trial& trial,
                             const LeaseGrant& lease, const std::string& artifacts_root) {
  const v1::StudySpec& spec = study.spec();
  v1::TrialSpec out;
  out.set_study_id(study.id());
  out.set_study_name(spec.name());
  out.set_trial_number(trial.number());
  out.set_kind(trial.kind());
  out.set_attempt(trial.attempt());
  out.set_seed(trial.seed());
  *out.mutable_params() = trial.params();
  *out.mutable_model() = spec.model();
  *out.mutable_data() = spec.data();
  *out.mutable_training() = spec.training();
  *out.mutable_fine_tune() = spec.fine_tune();
  *out.mutable_runner() = spec.runner();
  for (const v1::ParamAssignment& param : trial.params()) {
    ApplyParameter(param, out.mutable_training(), out.mutable_fine_tune()->mutable_lora());
  }
  out.set_lease_id(lease.lease_id);
  out.set_deadline_unix_ms(absl::ToUnixMillis(lease.deadline));
  out.set_heartbeat_interval_ms(absl::ToInt64Milliseconds(lease.heartbeat_interval));
  std::string root = spec.artifacts_root().empty() ? artifacts_root : spec.artifacts_root();
  std::string leaf = trial.kind() == v1::TRIAL_KIND_FINAL
                         ? absl::StrFormat("final-%04d", trial.number())
                         : absl::StrFormat("trial-%04d", trial.number());
  out.set_artifact_dir((std::filesystem::path(root) / spec.name() / leaf).string());
  out.set_source_trial_number(trial.source_trial_number());
  if (trial.kind() == v1::TRIAL_KIND_FINAL) {
    out.set_retrain_on(spec.final_stage().retrain_on() == v1::RETRAIN_ON_UNSPECIFIED
                           ? v1::RETRAIN_ON_TRAIN
                           : spec.final_stage().retrain_on());
    out.set_evaluate_test(!spec.final_stage().has_evaluate_test() ||
                          spec.final_stage().evaluate_test());
  }
  out.set_timeout_seconds(absl::ToDoubleSeconds(BudgetOf(spec).trial_timeout));
  return out;
}

}  // namespace hpsearch::server
