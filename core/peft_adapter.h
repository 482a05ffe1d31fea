// Saving and loading a trained classifier in the layout Python users load with PEFT / transformers:
//
//   lora, qlora: adapter_config.json (a PEFT LoraConfig: peft_type LORA, task_type SEQ_CLS, r,
//   lora_alpha,
//                lora_dropout, target_modules, fan_in_fan_out true as GPT-2's Conv1D needs,
//                modules_to_save [score], base_model_name_or_path) + adapter_model.safetensors
//                (lora_A / lora_B of every adapted layer and base_model.model.score.weight, PEFT's
//                saved names);
//   full:        config.json + model.safetensors in Hugging Face's GPT2ForSequenceClassification
//   naming.
//
// Either way hpsearch_model.json records what PEFT's files do not: the class names in id order, the
// method and the architecture, so `hpsearch-core predict` can rebuild the model. Writes are atomic
// per file.
//
// Thread-safety: free functions; do not save a model another thread is training.
#pragma once

#include <string>
#include <vector>

#include "core/compact_vocabulary.h"
#include "core/gpt2_sequence_classifier.h"

namespace hpsearch::core {

struct SavedModelInfo {
  std::string base_model;           // the checkpoint directory or "random_init"
  std::vector<std::string> labels;  // class names in id order
  // Seed the model was initialised from: with a random-init base, the base weights are rebuilt from it
  // (they are not saved); ReadSavedModelOptions returns it as the options' seed.
  uint64_t init_seed = 0;
  // Set when the model was trained over a compact vocabulary (not owned; only read during the
  // save): the full model is saved with its embedding expanded back to the tokenizer's ids and
  // the pad id mapped back (core/compact_vocabulary.h), so nothing that loads it needs the map.
  // Adapters cannot be saved this way (their base is rebuilt at the full vocabulary).
  const CompactVocabulary* compact_vocabulary = nullptr;
};

// Writes the trained parts of `model` into `dir` (created if needed). Throws core::Error(kIo)
// naming the file on failure, kInvalidArgument for an adapter with info.compact_vocabulary set.
void SaveTrainedModel(const std::string& dir, const Gpt2ForSequenceClassificationImpl& model,
                      const SavedModelInfo& info);

// What hpsearch_model.json in `dir` says: the options to rebuild the model with (seed 0) and the
// info. Throws core::Error(kNotFound / kDataLoss) naming the file.
Gpt2ForSequenceClassificationOptions ReadSavedModelOptions(const std::string& dir,
                                                           SavedModelInfo* info);

// Loads the tensors SaveTrainedModel wrote into `model`, which must be built with the same options
// (and for adapters, hold the base weights already). Throws core::Error(kDataLoss) naming the file
// and tensor when one is missing or has another shape.
void LoadTrainedModel(const std::string& dir, Gpt2ForSequenceClassificationImpl& model);

// PEFT's saved key of one of our parameter names ("transformer.h.0.attn.c_attn.lora_A" →
// "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"; "score.weight" →
// "base_model.model.score.weight").
std::string PeftSavedKey(const std::string& name);

}  // namespace hpsearch::core
