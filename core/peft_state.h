// Trainable-parameter listing, PEFT naming and the QLoRA weight swap for a
// Gpt2ForSequenceClassification.
//
// PEFT (LoRA, task SEQ_CLS, adapter "default") names the same tensors differently in memory and on
// disk:
//   in memory (PeftModel.named_parameters)                        saved (adapter_model.safetensors)
//   base_model.model.transformer.h.0.attn.c_attn.lora_A.default.weight
//   base_model.model.transformer.h.0.attn.c_attn.lora_A.weight
//   base_model.model.transformer.h.0.attn.c_attn.base_layer.weight      (not saved)
//   base_model.model.score.modules_to_save.default.weight base_model.model.score.weight
// PEFT's get_peft_model_state_dict drops "modules_to_save." and the adapter name. PEFT also keeps a
// frozen copy of the head as "...score.original_module.weight"; this model has no such copy, so
// that name never appears here. lora_A is [r, in] and lora_B [out, r] in both worlds, even for
// GPT-2's Conv1D layers. Pure functions over a model the caller owns; not thread-safe against
// concurrent mutation of the model.
#pragma once

#include <torch/nn/module.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/frozen_weight.h"
#include "core/gpt2_sequence_classifier.h"

namespace hpsearch::core {

// The prefix PEFT puts before every parameter name of the wrapped model, in memory and on disk.
inline constexpr char kPeftPrefix[] = "base_model.model.";

// Names (Module::named_parameters order) of the parameters with requires_grad, e.g. "score.weight",
// "transformer.h.0.attn.c_attn.lora_A".
std::vector<std::string> TrainableParameterNames(const torch::nn::Module& module);

// The parameters with requires_grad, in the same order: what the optimizer gets.
std::vector<torch::Tensor> TrainableParameters(const torch::nn::Module& module);

// Our parameter name → PEFT's in-memory name, for every parameter of `model` (see the table above).
// Layers without an adapter keep their plain names under "base_model.model.". For full fine-tuning
// there is no PeftModel; the map then gives Hugging Face's own names (our name unchanged).
std::map<std::string, std::string> PeftInMemoryNames(
    const Gpt2ForSequenceClassificationImpl& model);

// The adapter as PEFT saves it (adapter_model.safetensors keys → detached tensors that may share
// storage with the parameters): every lora_A / lora_B and the head "base_model.model.score.weight".
// Throws core::Error(kInvalidArgument) for full fine-tuning, which has no adapter (save HfWeights
// instead).
std::map<std::string, torch::Tensor> PeftAdapterStateDict(
    const Gpt2ForSequenceClassificationImpl& model);

// Builds a frozen base from a dense [out, in] float weight; QLoRA passes the NF4 quantiser here.
using FrozenWeightFactory =
    std::function<std::shared_ptr<const FrozenWeight>(const torch::Tensor& weight_out_in)>;

// The QLoRA integration point. Replaces the dense frozen base of every linear layer in the
// transformer (all of them, as bitsandbytes' 4-bit loading quantises every linear layer but the
// head) by make(weight), releasing the dense weights. Returns how many layers were replaced. Call
// once, after LoadHfWeights and before creating the optimizer. Throws core::Error(kInvalidArgument)
// for full fine-tuning (its bases train) or when a layer's base was already replaced.
int64_t ReplaceFrozenBaseWeights(Gpt2ForSequenceClassificationImpl& model,
                                 const FrozenWeightFactory& make);

}  // namespace hpsearch::core
