#include "server/report/report_format.h"

#include <cctype>
#include <map>

#include "absl/strings/str_format.h"
#include "server/study_file/study_view.h"

namespace hpsearch::server {

std::string TitleCase(const std::string& snake) {
  static const std::map<std::string, std::string> kKnown = {
      {"epochs", "Number of Epochs"},  {"val_accuracy", "Accuracy"},
      {"val_f1", "F1 Score"},          {"val_f1_macro", "F1 Score (macro)"},
      {"val_loss", "Validation Loss"}, {"train_loss", "Training Loss"}};
  auto known = kKnown.find(snake);
  if (known != kKnown.end()) return known->second;
  std::string out;
  bool start = true;
  for (char c : snake) {
    if (c == '_') {
      out += ' ';
      start = true;
    } else {
      out += start ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
      start = false;
    }
  }
  return out;
}

std::string ParamValueText(const v1::ParamValue& value, int significant_digits) {
  switch (value.kind_case()) {
    case v1::ParamValue::kDoubleValue:
      return absl::StrFormat("%.*g", significant_digits, value.double_value());
    case v1::ParamValue::kIntValue:
      return std::to_string(value.int_value());
    case v1::ParamValue::kBoolValue:
      return value.bool_value() ? "true" : "false";
    default:
      return value.string_value();
  }
}

std::string PruneReasonText(const v1::PruneReason& reason) {
  return absl::StrFormat("%s: %.6g missed the bar %.6g", reason.rule(), reason.value(),
                         reason.threshold());
}

std::string EnumWord(const std::string& enum_name, const std::string& prefix) {
  std::string word = enum_name.rfind(prefix, 0) == 0 ? enum_name.substr(prefix.size()) : enum_name;
  for (char& c : word) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return word;
}

std::string TrialStateWord(v1::TrialState state) {
  return EnumWord(v1::TrialState_Name(state), "TRIAL_STATE_");
}

std::optional<double> PlottedObjective(const v1::StudySpec& spec, const v1::Trial& trial) {
  if (trial.has_objective_value()) return trial.objective_value();
  return TrialObjective(spec, trial.epochs());
}

std::string FileSafe(const std::string& name) {
  std::string out = name;
  for (char& c : out) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') c = '_';
  }
  return out.empty() ? "_" : out;
}

}  // namespace hpsearch::server
