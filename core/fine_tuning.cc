#include "core/fine_tuning.h"

#include "core/error.h"

namespace hpsearch::core {

FineTuningMethod ParseFineTuningMethod(const std::string& name) {
  if (name == "full") return FineTuningMethod::kFull;
  if (name == "lora") return FineTuningMethod::kLora;
  if (name == "qlora") return FineTuningMethod::kQlora;
  Fail(ErrorCode::kInvalidArgument,
       "fine-tuning method \"" + name + "\" is not one of \"full\", \"lora\", \"qlora\"");
}

const char* FineTuningMethodName(FineTuningMethod method) {
  switch (method) {
    case FineTuningMethod::kFull:
      return "full";
    case FineTuningMethod::kLora:
      return "lora";
    case FineTuningMethod::kQlora:
      return "qlora";
  }
  return "unknown";
}

void ValidateFineTuningOptions(const FineTuningOptions& options) {
  if (options.method == FineTuningMethod::kFull) return;
  if (options.lora_r < 1) {
    Fail(ErrorCode::kInvalidArgument, "FineTuningOptions.lora_r is " +
                                          std::to_string(options.lora_r) +
                                          "; LoRA needs a rank >= 1");
  }
  if (!(options.lora_alpha > 0.0)) {
    Fail(ErrorCode::kInvalidArgument, "FineTuningOptions.lora_alpha must be positive");
  }
  if (!(options.lora_dropout >= 0.0 && options.lora_dropout < 1.0)) {
    Fail(ErrorCode::kInvalidArgument, "FineTuningOptions.lora_dropout is " +
                                          std::to_string(options.lora_dropout) +
                                          "; it must lie in [0, 1)");
  }
  if (options.target_modules.empty()) {
    Fail(ErrorCode::kInvalidArgument,
         "FineTuningOptions.target_modules is empty; name modules such as \"c_attn\" or use "
         "\"all-linear\"");
  }
  for (const std::string& target : options.target_modules) {
    if (target.empty()) {
      Fail(ErrorCode::kInvalidArgument, "FineTuningOptions.target_modules holds an empty name");
    }
    if (target == kAllLinearTarget && options.target_modules.size() != 1) {
      Fail(ErrorCode::kInvalidArgument,
           "FineTuningOptions.target_modules mixes \"all-linear\" with other names; use it alone");
    }
    if (TargetMatches(target, "score")) {
      Fail(ErrorCode::kUnsupported,
           "FineTuningOptions.target_modules names \"" + target +
               "\": the classification head is always trained in full, never adapted");
    }
  }
}

bool TargetMatches(const std::string& target, const std::string& module_path) {
  if (target == module_path) return true;
  if (module_path.size() <= target.size()) return false;
  const size_t start = module_path.size() - target.size();
  return module_path[start - 1] == '.' && module_path.compare(start, target.size(), target) == 0;
}

bool IsLoraTarget(const FineTuningOptions& options, const std::string& module_path) {
  if (options.method == FineTuningMethod::kFull) return false;
  for (const std::string& target : options.target_modules) {
    if (target == kAllLinearTarget) {
      // Every adaptable layer lives under the transformer; the head is excluded as PEFT does for
      // SEQ_CLS.
      return module_path.rfind("transformer.", 0) == 0;
    }
    if (TargetMatches(target, module_path)) return true;
  }
  return false;
}

}  // namespace hpsearch::core
