// RunConfig: everything one training run needs, as plain values the core understands. It is the
// core's mirror of the service's TrialSpec (proto/hpsearch/v1/trial.proto), and its JSON form is
// the TrialSpec's proto3 JSON form (snake_case or lowerCamelCase keys, enums as their full names,
// 64-bit integers as numbers or strings), so `hpsearch-core train --config trial.json` reruns any
// trial outside the service. Keys the core does not use (lease_id, runner, ...) are ignored.
// Defaults are the study validator's.
//
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "base/training_defaults.h"

namespace hpsearch::core {

struct RandomInitConfig {
  int64_t n_layer = 2;
  int64_t n_embd = 128;
  int64_t n_head = 2;
  int64_t n_positions = 128;
  int64_t vocab_size = 0;  // 0: the tokenizer's vocabulary size
  double layer_norm_epsilon = 1e-5;
  double initializer_range = 0.02;
  double dropout = 0.1;
  std::string activation = "gelu_new";
  // With fine_tune.method full and vocab_size 0 (the study file's random_init always trains this
  // way): embedding rows only for the token ids the training texts use, plus one shared row for
  // every other id (core/compact_vocabulary.h); the saved model is expanded back to the
  // tokenizer's ids. Ignored otherwise (an adapter's random base is rebuilt at the whole
  // vocabulary). false trains the whole table, e.g. to compare.
  bool compact_vocab = true;
};

struct ModelConfig {
  std::string path;  // Hugging Face checkpoint directory; empty with random_init
  bool random_init = false;
  RandomInitConfig architecture;  // used with random_init
  std::string tokenizer;          // tokenizer directory; default: path

  // Whether the run trains over a compact vocabulary (RandomInitConfig::compact_vocab).
  bool UsesCompactVocab(const std::string& fine_tune_method) const {
    return random_init && architecture.compact_vocab && architecture.vocab_size == 0 &&
           fine_tune_method == "full";
  }
};

struct DataConfig {
  std::string train_file;
  std::string validation_file;  // empty: split validation_fraction off train_file
  std::string test_file;
  double validation_fraction = training_defaults::kValidationFraction;
  uint64_t split_seed = 0;
  bool stratify = false;
  std::string text_column = "text";
  std::string label_column = "label";
  std::vector<std::string> labels;  // empty: sorted by lower-cased name
  int64_t max_length = training_defaults::kMaxLength;
  int64_t eval_batch_size = training_defaults::kEvalBatchSize;
  bool group_by_length = false;
  std::string format = "auto";  // auto | csv | jsonl
};

struct TrainingConfig {
  double learning_rate = training_defaults::kLearningRate;
  int64_t batch_size = training_defaults::kBatchSize;
  int64_t epochs = training_defaults::kEpochs;
  double weight_decay = training_defaults::kWeightDecay;
  int64_t warmup_steps = training_defaults::kWarmupSteps;
  double max_grad_norm = training_defaults::kMaxGradNorm;
  bool gradient_checkpointing = training_defaults::kGradientCheckpointing;
  double adam_beta1 = training_defaults::kAdamBeta1;
  double adam_beta2 = training_defaults::kAdamBeta2;
  double adam_epsilon = training_defaults::kAdamEpsilon;
};

struct FineTuneConfig {
  std::string method = "qlora";  // qlora | lora | full
  bool double_quant = true;
  int64_t block_size = 64;
  std::string compute_dtype = "auto";  // auto | float32 | bfloat16 | float16
  int64_t lora_r = training_defaults::kLoraR;
  double lora_alpha = training_defaults::kLoraAlpha;
  double lora_dropout = training_defaults::kLoraDropout;
  std::vector<std::string> target_modules = {"c_attn"};
};

struct RunConfig {
  uint64_t seed = 0;
  ModelConfig model;
  DataConfig data;
  TrainingConfig training;
  FineTuneConfig fine_tune;
  bool retrain_on_train_validation = false;  // TrialSpec.retrain_on == RETRAIN_ON_TRAIN_VALIDATION
  bool evaluate_test = false;
  std::string artifact_dir;  // checkpoints and the adapter; empty: none written
  // Names the run its checkpoints belong to; a checkpoint in artifact_dir with another tag is not
  // resumed (TrainerOptions::checkpoint_tag). The worker sets "STUDY_ID/trial-N"; not read from
  // JSON.
  std::string checkpoint_tag;
};

// Reads a RunConfig from TrialSpec-shaped JSON. Relative paths are resolved against `base_dir` (the
// config file's folder; "" keeps them as they are). Throws core::Error(kInvalidArgument) naming the
// key (e.g. "training.batch_size") for a wrong type or an invalid value, and the source for
// malformed JSON.
RunConfig RunConfigFromJson(const nlohmann::json& json, const std::string& base_dir = "");
RunConfig LoadRunConfig(const std::string& path);

// Checks the values a run cannot start without; throws core::Error(kInvalidArgument) naming the
// key.
void ValidateRunConfig(const RunConfig& config);

}  // namespace hpsearch::core
