// LoadCheckpoint: reads a Hugging Face GPT-2-family checkpoint directory (config.json plus
// model.safetensors or pytorch_model.bin, as save_pretrained or the original DialoGPT release wrote
// it) into a config and the named float32 weights of GPT2Model, plus the classification head when
// the checkpoint has one.
//
// Names are normalised to GPT2Model's under a "transformer." prefix
// ("transformer.h.3.attn.c_attn.weight") whether the file used it or not; "score.weight" keeps its
// name. Dropped: lm_head.* (the language-model head, tied to wte), and the attn.bias /
// attn.masked_bias causal-mask buffers older versions saved. Weights keep Hugging Face's Conv1D
// layout: c_attn.weight is [n_embd, 3 n_embd] ([in, out]).
//
// core/ does not log: what Hugging Face would print as a warning (a newly initialised score head,
// unused tensors) goes to the caller's callback. Thread-safe for distinct directories.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/hf_config.h"
#include "core/tensor_map.h"

namespace hpsearch::core {

inline constexpr char kScoreWeightName[] = "score.weight";

struct Checkpoint {
  formats::HfGpt2Config config;
  // Every tensor of Gpt2TensorShapes(config), float32, contiguous, on the CPU, each owning its
  // memory; plus "score.weight" [num_labels, n_embd] when the checkpoint has a classification head.
  TensorMap tensors;
  std::filesystem::path weights_path;  // the file the tensors came from
};

// Receives one human-readable warning per call.
using CheckpointWarningFn = std::function<void(const std::string& message)>;

// The name and shape of every GPT2Model tensor `config` implies, embeddings first, then layer by
// layer.
std::vector<std::pair<std::string, std::vector<int64_t>>> Gpt2TensorShapes(
    const formats::HfGpt2Config& config);

// Loads `dir`. Prefers model.safetensors, then pytorch_model.bin (zip or legacy format).
// Warnings (through `warn`, which may be empty): "score.weight" missing, so a classifier built on
// this checkpoint starts with a newly initialised head; tensors present in the file that GPT2Model
// does not use. Throws core::Error naming the file and the tensor or key at fault: kNotFound when
// config.json or both weight files are missing, or an expected tensor is absent; kInvalidArgument
// when a tensor has the wrong shape for the config or a non-floating dtype, or the same tensor
// appears with and without the "transformer." prefix; kUnsupported for sharded checkpoints
// (*.index.json); plus whatever LoadHfGpt2Config, ReadSafetensors and ReadTorchBin throw.
Checkpoint LoadCheckpoint(const std::filesystem::path& dir, const CheckpointWarningFn& warn = {});

}  // namespace hpsearch::core
