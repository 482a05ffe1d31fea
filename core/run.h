// RunTraining: one complete training run from a RunConfig — tokenizer, data, model (a Hugging Face
// checkpoint or a random-init GPT-2), fine-tuning method (NF4 base weights under qlora), training
// with per-epoch validation, the optional test evaluation, and the trained model saved in PEFT's
// layout. This is what `hpsearch-core train` and the worker's built-in runner call; it logs nothing
// and reports through callbacks.
//
// Thread-safety: one run per process at a time (it sets LibTorch's intra-op thread count and seeds
// its default generator).
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "core/run_config.h"
#include "core/trainer.h"

namespace hpsearch::core {

struct RunOptions {
  // Intra-op threads for LibTorch; 0 leaves the current setting.
  int threads = 0;
  // Where the model trains: "auto" (the first CUDA device when LibTorch sees one and hpsearch was
  // built with its CUDA kernels, else the CPU),
  // "cpu", "cuda" or "cuda:N". A CUDA device in a build without CUDA support is refused
  // (kUnsupported).
  std::string device = "auto";
  // Attention kernel (Gpt2Config::attn_implementation): "auto" is "sdpa" on CUDA with LibTorch >=
  // 2.0 and "eager" otherwise; "eager" or "sdpa" force one.
  std::string attn_implementation = "auto";
};

// The device RunOptions::device names, resolved ("auto" → cuda:0 or cpu, as RunOptions says).
// Throws core::Error(kInvalidArgument) for a malformed name, kUnsupported for CUDA without CUDA
// support.
torch::Device ResolveDevice(const std::string& name);

// The compute dtype fine_tune.quantization.compute_dtype names on `device`: "auto" is bfloat16 on
// CUDA and float32 on the CPU (see Gpt2ForSequenceClassificationOptions::compute_dtype).
c10::ScalarType ResolveComputeDtype(const std::string& name, const torch::Device& device);

struct RunCallbacks {
  std::function<void(const TrainingStart&)> on_start;  // resumed from a checkpoint or not, and why
  // Each epoch as it ends, after the epochs a checkpoint restored (EpochResult::restored); false
  // stops training (pruned).
  std::function<bool(const EpochResult&)> on_epoch;
  std::function<void(const TrainingProgress&)> on_progress;
  std::function<void(const std::string&)> on_warning;  // e.g. "score.weight newly initialized"
  const std::atomic<bool>* stop = nullptr;
};

struct RunOutcome {
  TrainResult train;
  std::optional<EvalResult> test;   // when config.evaluate_test and training was not stopped
  std::vector<std::string> labels;  // class names in id order
  int64_t train_examples = 0;
  int64_t validation_examples = 0;  // 0 when retraining on train + validation
  std::string model_dir;            // where the trained model was saved; empty without artifact_dir
};

// Runs the configuration. Throws core::Error naming the file, tensor or key for bad inputs.
RunOutcome RunTraining(const RunConfig& config, const RunOptions& options = {},
                       const RunCallbacks& callbacks = {});

// Evaluates a model a RunTraining of `config` saved (its `model_dir`: hpsearch_model.json and the
// trained tensors) on config.data.test_file, without training: the model is built as RunTraining
// builds it before its first step (config.model's checkpoint, or the random init of config.seed),
// the saved tensors are loaded over it, and the test texts are read, tokenised and evaluated as
// RunTraining's own test evaluation does, so the figures are the ones that run measured for the
// model. This is the final stage's `retrain_on: reuse`. The outcome holds `test` (when
// config.evaluate_test), `labels` and the example counts; `train` stays empty and `model_dir` is
// `model_dir`. Throws core::Error: kNotFound / kDataLoss for a missing or damaged model folder,
// kInvalidArgument when its classes or shapes differ from the data's and the config's.
RunOutcome RunEvaluation(const RunConfig& config, const std::string& model_dir,
                         const RunOptions& options = {}, const RunCallbacks& callbacks = {});

}  // namespace hpsearch::core
