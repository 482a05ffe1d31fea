#include "core/peft_state.h"

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "core/error.h"

namespace hpsearch::core {
namespace {

constexpr char kAdapterName[] = "default";

// "transformer.h.0.attn.c_attn.lora_A" → {"transformer.h.0.attn.c_attn", "lora_A"}.
std::pair<std::string, std::string> SplitLast(const std::string& name) {
  const size_t dot = name.rfind('.');
  if (dot == std::string::npos) return {"", name};
  return {name.substr(0, dot), name.substr(dot + 1)};
}

bool IsPeft(const Gpt2ForSequenceClassificationImpl& model) {
  return model.options().fine_tuning.method != FineTuningMethod::kFull;
}

}  // namespace

std::vector<std::string> TrainableParameterNames(const torch::nn::Module& module) {
  std::vector<std::string> names;
  for (const auto& item : module.named_parameters()) {
    if (item.value().requires_grad()) names.push_back(item.key());
  }
  return names;
}

std::vector<torch::Tensor> TrainableParameters(const torch::nn::Module& module) {
  std::vector<torch::Tensor> parameters;
  for (const auto& item : module.named_parameters()) {
    if (item.value().requires_grad()) parameters.push_back(item.value());
  }
  return parameters;
}

std::map<std::string, std::string> PeftInMemoryNames(
    const Gpt2ForSequenceClassificationImpl& model) {
  std::map<std::string, std::string> names;
  const bool peft = IsPeft(model);
  for (const auto& module : model.named_modules("", /*include_self=*/false)) {
    const auto* layer = module.value()->as<LoraLinearImpl>();
    for (const auto& parameter : module.value()->named_parameters(/*recurse=*/false)) {
      const std::string ours = module.key() + "." + parameter.key();
      if (!peft) {
        names[ours] = ours;
      } else if (module.key() == "score") {
        names[ours] = std::string(kPeftPrefix) + "score.modules_to_save." + kAdapterName + "." +
                      parameter.key();
      } else if (layer != nullptr && layer->has_lora()) {
        const bool adapter = parameter.key() == "lora_A" || parameter.key() == "lora_B";
        names[ours] = std::string(kPeftPrefix) + module.key() + "." +
                      (adapter ? parameter.key() + "." + kAdapterName + ".weight"
                               : "base_layer." + parameter.key());
      } else {
        names[ours] = kPeftPrefix + ours;
      }
    }
  }
  return names;
}

std::map<std::string, torch::Tensor> PeftAdapterStateDict(
    const Gpt2ForSequenceClassificationImpl& model) {
  if (!IsPeft(model)) {
    Fail(
        ErrorCode::kInvalidArgument,
        "PeftAdapterStateDict: the model is fully fine-tuned and has no adapter; save HfWeights()");
  }
  std::map<std::string, torch::Tensor> out;
  for (const auto& item : model.named_parameters()) {
    const auto [module, leaf] = SplitLast(item.key());
    if (leaf == "lora_A" || leaf == "lora_B") {
      out[kPeftPrefix + module + "." + leaf + ".weight"] = item.value().detach();
    } else if (module == "score") {
      out[kPeftPrefix + item.key()] = item.value().detach();
    }
  }
  return out;
}

int64_t ReplaceFrozenBaseWeights(Gpt2ForSequenceClassificationImpl& model,
                                 const FrozenWeightFactory& make) {
  if (!IsPeft(model)) {
    Fail(ErrorCode::kInvalidArgument,
         "ReplaceFrozenBaseWeights: full fine-tuning trains the base weights; only lora and qlora "
         "models have frozen bases to quantise");
  }
  int64_t replaced = 0;
  for (const auto& module :
       model.transformer->named_modules("transformer", /*include_self=*/false)) {
    auto* layer = module.value()->as<LoraLinearImpl>();
    if (layer == nullptr) continue;
    if (layer->has_frozen_weight()) {
      Fail(ErrorCode::kInvalidArgument, "ReplaceFrozenBaseWeights: " + module.key() +
                                            " already has a frozen base; call this once");
    }
    std::shared_ptr<const FrozenWeight> frozen;
    {
      torch::NoGradGuard no_grad;
      frozen = make(layer->weight.detach().to(at::kFloat));
    }
    if (!frozen) {
      Fail(ErrorCode::kInternal,
           "ReplaceFrozenBaseWeights: the factory returned no weight for " + module.key());
    }
    layer->ReplaceBaseWeight(std::move(frozen));
    ++replaced;
  }
  return replaced;
}

}  // namespace hpsearch::core
