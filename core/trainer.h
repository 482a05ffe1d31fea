// Trainer: fine-tunes a Gpt2ForSequenceClassification the way Hugging Face's Trainer does, and
// evaluates it.
//
//   - AdamW (torch's, Hugging Face's defaults) over the trainable parameters; weight decay on every
//     parameter but biases and LayerNorm weights.
//   - Linear warmup then linear decay (core/lr_schedule.h), gradient clipping by global norm.
//   - One optimizer step per batch; batches from core/batching.h (a new seeded order every epoch),
//     dynamically padded, or with static shapes (TrainerOptions::static_shapes).
//   - Per epoch: train_loss (mean of the epoch's step losses) and, with validation data, val_loss,
//     val_accuracy, val_f1 (weighted), val_f1_macro.
//   - At the end, Hugging Face's train summary: global steps, mean train loss over all steps,
//   runtime
//     (including per-epoch evaluation), samples/s, steps/s and FLOPs = 6 x non-embedding parameters
//     x input tokens, where input tokens count padding as Hugging Face's Trainer does
//     (input_ids.numel()).
//
// Devices and waste: the trainer computes where the model's parameters live (move the model before
// constructing the Trainer); batches are copied there without blocking. The optimizer is FlatAdamW
// (core/flat_adamw.h: a handful of kernels per step), and no step reads a value back to the host:
// losses are summed on the device and read once per progress interval and once per epoch, and
// evaluation copies its losses and predictions back once at the end.
//
// Repeatability: the data order derives from options.seed and the epoch; dropout draws from
// LibTorch's default CPU generator, which Train seeds from options.seed (and restores on resume).
// Two runs with the same model, data and options give identical figures.
//
// Checkpoints: with options.checkpoint_dir set, the trainer writes the trainable weights, the
// optimizer state, the step, the RNG state, the running totals and the finished epochs' results
// there after every epoch (atomically), and a later Train() on the same directory resumes after the
// last finished epoch, giving the same result as an uninterrupted run. A resumed Train() first
// replays the restored epochs through on_epoch (EpochResult::restored), so a caller sees every
// epoch once per call. A checkpoint whose tag differs from options.checkpoint_tag belongs to
// another run and is not resumed (the run starts over and overwrites it). on_start says which
// happened.
//
// Ownership: the trainer shares the model (a module holder). Thread-compatible: one Train at a
// time; the stop flag may be raised from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/training_defaults.h"
#include "core/batching.h"
#include "core/gpt2_sequence_classifier.h"

namespace hpsearch::core {

// Whether training batches have static shapes (TrainerOptions::static_shapes).
enum class StaticShapes {
  kAuto,  // on for a model on a GPU, off on the CPU
  kOff,   // dynamic padding: each batch as wide as its longest text, as many rows as examples
  kOn,    // length buckets and batch_size rows (core/batching.h PaddingOptions)
};

struct TrainerOptions {
  // Defaults and rules: base/training_defaults.h.
  double learning_rate = training_defaults::kLearningRate;  // peak learning rate
  int64_t batch_size = training_defaults::kBatchSize;
  int64_t epochs = training_defaults::kEpochs;
  double weight_decay = training_defaults::kWeightDecay;
  int64_t warmup_steps = training_defaults::kWarmupSteps;
  double max_grad_norm = training_defaults::kMaxGradNorm;  // 0 disables clipping
  double adam_beta1 = training_defaults::kAdamBeta1;
  double adam_beta2 = training_defaults::kAdamBeta2;
  double adam_epsilon = training_defaults::kAdamEpsilon;
  int64_t eval_batch_size = training_defaults::kEvalBatchSize;
  uint64_t seed = 0;             // data order and dropout
  bool group_by_length = false;  // see BatchOptions
  std::string checkpoint_dir;    // empty: no checkpoints, no resume
  // Steps between on_progress calls (each also ends with an epoch's last step). Reading the loss
  // back waits for the device, so on a GPU it is done once per interval, not per step. 0: 1 on the
  // CPU (where it costs nothing), 50 on a GPU.
  int64_t progress_interval_steps = 0;
  // Names the run a checkpoint belongs to (e.g. "study-id/trial-3"); a checkpoint with another tag
  // is not resumed. Empty: any checkpoint in checkpoint_dir is resumed.
  std::string checkpoint_tag;
  // Static shapes: every training batch padded to a length bucket and filled to batch_size rows
  // with zero-weight rows, so that a step has one of a few shapes (what CUDA graphs need, and the
  // caching allocator reuses). The loss stays the mean over the real rows and the gradients equal
  // dynamic padding's within float rounding; with dropout the random masks differ, as their shapes
  // do. Padding costs extra work, which pays only on a GPU where a step is bound by kernel
  // launches, so kAuto is off on the CPU (where the float32 results stay those of dynamic padding).
  // Evaluation always pads dynamically.
  StaticShapes static_shapes = StaticShapes::kAuto;
  // With static shapes. Banking77's by default; for other data a batch longer than the largest
  // bucket keeps its own width (one more shape).
  std::vector<int64_t> length_buckets = Banking77LengthBuckets();
};

struct EvalResult {
  double loss = 0;  // mean cross-entropy per example
  double accuracy = 0;
  double f1_weighted = 0;
  double f1_macro = 0;
  int64_t samples = 0;
  int64_t steps = 0;  // batches
  double runtime_seconds = 0;
  double samples_per_second = 0;
  double steps_per_second = 0;
  std::vector<int64_t> predictions;  // per example, dataset order
};

struct EpochResult {
  int64_t epoch = 0;                     // 1-based
  double train_loss = 0;                 // mean of this epoch's step losses
  std::optional<EvalResult> validation;  // absent without validation data
  int64_t global_step = 0;               // optimizer steps so far
  double samples_per_second = 0;         // training throughput of this epoch
  double wall_time_seconds = 0;          // since Train started (including resumed time)
  bool restored = false;  // replayed from a checkpoint: an earlier run trained this epoch
};

// How a Train() call began, for logs and event records.
struct TrainingStart {
  int64_t resumed_after_epoch = 0;  // 0: from scratch
  std::string checkpoint_dir;       // empty without checkpoints
  std::string note;                 // one line: what was found and done
};

struct TrainResult {
  int64_t global_steps = 0;
  double train_loss = 0;       // mean over all steps
  double runtime_seconds = 0;  // includes per-epoch evaluation
  double samples_per_second = 0;
  double steps_per_second = 0;
  double total_flos = 0;
  double epochs = 0;                       // epochs finished
  std::vector<EpochResult> epoch_results;  // the epochs this call ran (not those before a resume)
  int64_t resumed_after_epoch = 0;         // 0 when it started from scratch
  bool stopped = false;                    // the stop flag or on_epoch ended training early
};

struct TrainingProgress {
  int64_t epoch = 0;  // 1-based
  int64_t step = 0;   // global step just finished
  int64_t total_steps = 0;
  double loss = 0;  // mean loss of the steps since the previous call (this step's at interval 1)
  double samples_per_second = 0;
  double eta_seconds = 0;  // remaining training steps at the current rate (evaluation not included)
};

struct TrainerCallbacks {
  // Called once before the first step: resumed or from scratch, and why.
  std::function<void(const TrainingStart&)> on_start;
  // Called when an epoch (and its evaluation) ends, and for each epoch restored from a checkpoint
  // before training goes on; returning false stops training (pruning).
  std::function<bool(const EpochResult&)> on_epoch;
  // Called every options.progress_interval_steps optimizer steps and after an epoch's last step.
  std::function<void(const TrainingProgress&)> on_progress;
  // Checked between steps; when it becomes true, Train returns with stopped = true.
  const std::atomic<bool>* stop = nullptr;
};

// How Train pads its batches on a model on `device` (TrainerOptions::static_shapes resolved):
// dynamic padding (the default PaddingOptions) or options.length_buckets and batch_size rows.
PaddingOptions TrainingPadding(const TrainerOptions& options, const c10::Device& device);

class Trainer {
 public:
  Trainer(Gpt2ForSequenceClassification model, TrainerOptions options,
          TrainerCallbacks callbacks = {});

  // Trains on `train`, evaluating on `validation` (may be null) after every epoch.
  // REQUIRES: train is non-empty and its labels are below the model's num_labels.
  TrainResult Train(const TokenizedDataset& train, const TokenizedDataset* validation);

  // Loss, accuracy, F1 and speed on `data` in eval mode, batches of options.eval_batch_size in file
  // order.
  EvalResult Evaluate(const TokenizedDataset& data);

  // Parameters the FLOP count uses: trainable and frozen, excluding token and position embeddings.
  int64_t NonEmbeddingParameters() const;

 private:
  Gpt2ForSequenceClassification model_;
  TrainerOptions options_;
  TrainerCallbacks callbacks_;
};

}  // namespace hpsearch::core
