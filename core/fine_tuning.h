// How a GPT-2 classifier is fine-tuned: which weights train and where LoRA adapters sit. Plain
// value types and pure functions; thread-compatible.
//
//   full   every parameter trains; no adapters.
//   lora   the base model is frozen; LoRA adapters on the target modules train, and so does the
//   classification
//          head `score` (PEFT's modules_to_save for sequence classification).
//   qlora  as lora, and after the pretrained weights are loaded each frozen base weight of an
//   adapted layer is
//          swapped for a quantised FrozenWeight through ReplaceFrozenBaseWeights
//          (core/peft_state.h) — the integration point for NF4 storage. Until that call a qlora
//          model computes exactly as lora.
//
// Target modules follow PEFT's matching: a target names a module path or a suffix of one at a '.'
// boundary, so "c_proj" adapts both attn.c_proj and mlp.c_proj, "attn.c_proj" only the attention
// output projection, and "transformer.h.3.mlp.c_fc" one layer. "all-linear" adapts every linear
// layer of the transformer (c_attn, attn.c_proj, c_fc, mlp.c_proj) and, as PEFT does for sequence
// classification, not the head.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hpsearch::core {

enum class FineTuningMethod { kFull, kLora, kQlora };

// "full" | "lora" | "qlora" → method; throws core::Error(kInvalidArgument) naming the accepted
// values.
FineTuningMethod ParseFineTuningMethod(const std::string& name);
const char* FineTuningMethodName(FineTuningMethod method);

// PEFT's shorthand for every linear layer but the output head.
inline constexpr char kAllLinearTarget[] = "all-linear";

struct FineTuningOptions {
  // Which weights train (see the file comment).
  FineTuningMethod method = FineTuningMethod::kLora;
  // LoRA rank r (lora, qlora). PEFT LoraConfig default: 8.
  int64_t lora_r = 8;
  // LoRA alpha; adapters are scaled by lora_alpha / lora_r. PEFT default: 8.
  double lora_alpha = 8.0;
  // Dropout on each adapter's input. PEFT default: 0.
  double lora_dropout = 0.0;
  // Modules that receive adapters (lora, qlora). PEFT's default for GPT-2 is {"c_attn"}.
  std::vector<std::string> target_modules = {"c_attn"};
};

// Throws core::Error(kInvalidArgument) naming the field: lora_r < 1, lora_alpha <= 0, lora_dropout
// outside [0, 1), empty target_modules, or "all-linear" mixed with other targets, for lora and
// qlora. kUnsupported for the target "score": the head is always trained in full (PEFT's
// modules_to_save). Options of `full` are not checked beyond the method.
void ValidateFineTuningOptions(const FineTuningOptions& options);

// Whether the linear layer at `module_path` (e.g. "transformer.h.0.mlp.c_proj") gets an adapter.
// Always false for full fine-tuning.
bool IsLoraTarget(const FineTuningOptions& options, const std::string& module_path);

// Whether `target` (one entry of target_modules) names `module_path` by PEFT's rule.
bool TargetMatches(const std::string& target, const std::string& module_path);

}  // namespace hpsearch::core
