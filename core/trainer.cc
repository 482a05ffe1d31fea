#include "core/trainer.h"

#include <torch/optim/adamw.h>
#include <torch/serialize.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/flat_adamw.h"
#include "core/lr_schedule.h"
#include "core/metrics.h"
#include "core/training_checkpoint.h"
#include "formats/json_nesting.h"

namespace hpsearch::core {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Hugging Face leaves biases and LayerNorm weights out of weight decay.
bool DecaysWeight(const std::string& name) {
  const bool bias = name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0;
  const bool layer_norm = name.find("ln_") != std::string::npos;
  return !bias && !layer_norm;
}

torch::optim::AdamWOptions AdamOptions(const TrainerOptions& o, double weight_decay) {
  return torch::optim::AdamWOptions(o.learning_rate)
      .betas({o.adam_beta1, o.adam_beta2})
      .eps(o.adam_epsilon)
      .weight_decay(weight_decay);
}

// The finished epochs' results as a checkpoint keeps them (predictions left out). nlohmann writes
// doubles with 17 significant digits, so they read back bit for bit.
std::string EpochsToJson(const std::vector<EpochResult>& epochs) {
  nlohmann::json array = nlohmann::json::array();
  for (const EpochResult& e : epochs) {
    nlohmann::json j = {{"epoch", e.epoch},
                        {"train_loss", e.train_loss},
                        {"global_step", e.global_step},
                        {"samples_per_second", e.samples_per_second},
                        {"wall_time_seconds", e.wall_time_seconds}};
    if (e.validation) {
      const EvalResult& v = *e.validation;
      j["validation"] = {{"loss", v.loss},
                         {"accuracy", v.accuracy},
                         {"f1_weighted", v.f1_weighted},
                         {"f1_macro", v.f1_macro},
                         {"samples", v.samples},
                         {"steps", v.steps},
                         {"runtime_seconds", v.runtime_seconds},
                         {"samples_per_second", v.samples_per_second},
                         {"steps_per_second", v.steps_per_second}};
    }
    array.push_back(std::move(j));
  }
  return array.dump();
}

std::vector<EpochResult> EpochsFromJson(const std::string& text, const std::string& path) {
  std::vector<EpochResult> epochs;
  formats::CheckJsonNesting(text, path, ErrorCode::kDataLoss);
  try {
    for (const nlohmann::json& j : nlohmann::json::parse(text)) {
      EpochResult e;
      e.epoch = j.at("epoch").get<int64_t>();
      e.train_loss = j.at("train_loss").get<double>();
      e.global_step = j.at("global_step").get<int64_t>();
      e.samples_per_second = j.at("samples_per_second").get<double>();
      e.wall_time_seconds = j.at("wall_time_seconds").get<double>();
      e.restored = true;
      if (j.contains("validation")) {
        const nlohmann::json& v = j["validation"];
        EvalResult r;
        r.loss = v.at("loss").get<double>();
        r.accuracy = v.at("accuracy").get<double>();
        r.f1_weighted = v.at("f1_weighted").get<double>();
        r.f1_macro = v.at("f1_macro").get<double>();
        r.samples = v.at("samples").get<int64_t>();
        r.steps = v.at("steps").get<int64_t>();
        r.runtime_seconds = v.at("runtime_seconds").get<double>();
        r.samples_per_second = v.at("samples_per_second").get<double>();
        r.steps_per_second = v.at("steps_per_second").get<double>();
        e.validation = std::move(r);
      }
      epochs.push_back(std::move(e));
    }
  } catch (const nlohmann::json::exception& e) {
    Fail(ErrorCode::kDataLoss, path + ": the epoch results are unreadable (" + e.what() +
                                   "); delete the checkpoint to start over");
  }
  return epochs;
}

void SetLearningRate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) {
    static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
  }
}

// Where the model computes: the device of its first parameter (CPU for a module without any).
torch::Device ModelDevice(const torch::nn::Module& model) {
  for (const auto& p : model.parameters()) return p.device();
  return torch::kCPU;
}

// The batch's tensors on `device`. From pageable host memory a non-blocking copy returns once the
// data is staged, without waiting for the GPU; on the CPU it is no copy at all.
void MoveBatch(TokenBatch& batch, const torch::Device& device) {
  if (device.is_cpu()) return;
  batch.input_ids = batch.input_ids.to(device, /*non_blocking=*/true);
  batch.attention_mask = batch.attention_mask.to(device, /*non_blocking=*/true);
  batch.labels = batch.labels.to(device, /*non_blocking=*/true);
  batch.last_token_index = batch.last_token_index.to(device, /*non_blocking=*/true);
}

int64_t ProgressInterval(const TrainerOptions& options, const torch::Device& device) {
  if (options.progress_interval_steps > 0) return options.progress_interval_steps;
  return device.is_cpu() ? 1 : 50;
}

}  // namespace

PaddingOptions TrainingPadding(const TrainerOptions& options, const c10::Device& device) {
  const bool on = options.static_shapes == StaticShapes::kOn ||
                  (options.static_shapes == StaticShapes::kAuto && !device.is_cpu());
  if (!on) return {};
  return {options.length_buckets, options.batch_size};
}

Trainer::Trainer(Gpt2ForSequenceClassification model, TrainerOptions options,
                 TrainerCallbacks callbacks)
    : model_(std::move(model)), options_(std::move(options)), callbacks_(std::move(callbacks)) {
  namespace d = training_defaults;
  auto require = [](const char* broken_rule, const char* name) {
    if (broken_rule != nullptr) {
      Fail(ErrorCode::kInvalidArgument, std::string("trainer: ") + name + " " + broken_rule);
    }
  };
  require(d::CheckBatchSize(options_.batch_size), "batch_size");
  require(d::CheckEpochs(options_.epochs), "epochs");
  require(d::CheckEvalBatchSize(options_.eval_batch_size), "eval_batch_size");
  require(d::CheckLearningRate(options_.learning_rate), "learning_rate");
}

int64_t Trainer::NonEmbeddingParameters() const {
  // Counted from the architecture rather than from registered tensors: under qlora the frozen
  // weights are packed NF4 buffers, yet Hugging Face counts them as the parameters they stand for.
  const Gpt2Config& c = model_->options().config;
  const int64_t width = c.n_embd;
  const int64_t per_block =
      12 * width * width + 13 * width;  // ln_1, c_attn, attn.c_proj, ln_2, c_fc, mlp.c_proj
  int64_t count = c.n_layer * per_block + 2 * width + c.num_labels * width;  // + ln_f, score
  for (const auto& item : model_->named_parameters()) {
    if (item.key().find("lora_") != std::string::npos) count += item.value().numel();
  }
  return count;
}

EvalResult Trainer::Evaluate(const TokenizedDataset& data) {
  EvalResult result;
  if (data.size() == 0)
    Fail(ErrorCode::kInvalidArgument, "evaluate: " + data.source + " has no examples");
  const Clock::time_point start = Clock::now();
  const bool was_training = model_->is_training();
  model_->eval();
  torch::NoGradGuard no_grad;
  BatchOptions batching;
  batching.batch_size = options_.eval_batch_size;
  batching.shuffle = false;
  const torch::Device device = ModelDevice(*model_);
  std::vector<int64_t> labels(static_cast<size_t>(data.size()));
  result.predictions.assign(static_cast<size_t>(data.size()), 0);
  // Per-batch losses and predictions stay on the device; one copy back at the end.
  std::vector<torch::Tensor> batch_losses, batch_predictions;
  std::vector<int64_t> order;
  order.reserve(static_cast<size_t>(data.size()));
  for (const std::vector<int64_t>& indices : PlanBatches(data, batching, 0)) {
    TokenBatch batch = CollateBatch(data, indices);
    MoveBatch(batch, device);
    torch::Tensor logits =
        model_->forward(batch.input_ids, batch.attention_mask, batch.last_token_index);
    batch_losses.push_back(at::cross_entropy_loss(logits.to(torch::kFloat32), batch.labels,
                                                  /*weight=*/{}, at::Reduction::Sum));
    batch_predictions.push_back(logits.argmax(1));
    order.insert(order.end(), indices.begin(), indices.end());
    ++result.steps;
  }
  // Summed in double in batch order, as the per-batch sync loop did.
  const torch::Tensor losses = at::stack(batch_losses).to(torch::kCPU, torch::kFloat64);
  const torch::Tensor predicted = at::cat(batch_predictions).to(torch::kCPU, torch::kLong);
  double loss_sum = 0;
  const double* loss_values = losses.data_ptr<double>();
  for (int64_t b = 0; b < losses.numel(); ++b) loss_sum += loss_values[b];
  const int64_t* predicted_values = predicted.data_ptr<int64_t>();
  for (size_t row = 0; row < order.size(); ++row) {
    const size_t example = static_cast<size_t>(order[row]);
    result.predictions[example] = predicted_values[row];
    labels[example] = data.examples[example].label;
  }
  if (was_training) model_->train();
  ClassificationMetrics metrics = ComputeClassificationMetrics(labels, result.predictions);
  result.samples = data.size();
  result.loss = loss_sum / static_cast<double>(data.size());
  result.accuracy = metrics.accuracy;
  result.f1_weighted = metrics.f1_weighted;
  result.f1_macro = metrics.f1_macro;
  result.runtime_seconds = SecondsSince(start);
  result.samples_per_second =
      static_cast<double>(result.samples) / std::max(result.runtime_seconds, 1e-9);
  result.steps_per_second =
      static_cast<double>(result.steps) / std::max(result.runtime_seconds, 1e-9);
  return result;
}

TrainResult Trainer::Train(const TokenizedDataset& train, const TokenizedDataset* validation) {
  if (train.size() == 0)
    Fail(ErrorCode::kInvalidArgument, "train: " + train.source + " has no examples");
  TrainResult result;
  const Clock::time_point start = Clock::now();
  model_->train();

  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& item : model_->named_parameters()) {
    if (!item.value().requires_grad()) continue;
    (DecaysWeight(item.key()) ? decay : no_decay).push_back(item.value());
  }
  if (decay.empty() && no_decay.empty())
    Fail(ErrorCode::kInvalidArgument, "train: the model has nothing to train");
  std::vector<torch::optim::OptimizerParamGroup> groups;
  if (!decay.empty())
    groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                                   AdamOptions(options_, options_.weight_decay)));
  if (!no_decay.empty())
    groups.emplace_back(no_decay,
                        std::make_unique<torch::optim::AdamWOptions>(AdamOptions(options_, 0.0)));
  FlatAdamW optimizer(std::move(groups), AdamOptions(options_, options_.weight_decay));
  const torch::Device device = ModelDevice(*model_);
  const int64_t progress_interval = ProgressInterval(options_, device);
  const PaddingOptions padding = TrainingPadding(options_, device);

  BatchOptions batching;
  batching.batch_size = options_.batch_size;
  batching.shuffle = true;
  batching.seed = options_.seed;
  batching.group_by_length = options_.group_by_length;
  const int64_t steps_per_epoch = (train.size() + options_.batch_size - 1) / options_.batch_size;
  const int64_t total_steps = steps_per_epoch * options_.epochs;
  const double flos_per_token = 6.0 * static_cast<double>(NonEmbeddingParameters());

  TrainingState state;
  torch::manual_seed(options_.seed);
  std::vector<EpochResult> history;  // every finished epoch, kept in each checkpoint
  TrainingStart start_info;
  if (!options_.checkpoint_dir.empty()) {
    const std::string& dir = options_.checkpoint_dir;
    start_info.checkpoint_dir = dir;
    TrainingState found;
    if (!PeekTrainingCheckpoint(dir, &found)) {
      start_info.note = "no checkpoint in " + dir + ": training from scratch";
    } else if (!options_.checkpoint_tag.empty() && found.tag != options_.checkpoint_tag) {
      start_info.note = "the checkpoint in " + dir + " belongs to another run ('" + found.tag +
                        "', not '" + options_.checkpoint_tag +
                        "'): training from scratch and replacing it";
    } else {
      LoadTrainingCheckpoint(dir, *model_, optimizer, &state);
      history = EpochsFromJson(state.epochs_json, dir);
      result.resumed_after_epoch = state.epochs_done;
      start_info.resumed_after_epoch = state.epochs_done;
      start_info.note = "resumed from the checkpoint in " + dir + " after epoch " +
                        std::to_string(state.epochs_done) + " (step " +
                        std::to_string(state.global_step) + ")";
    }
  }
  state.tag = options_.checkpoint_tag;
  if (callbacks_.on_start) callbacks_.on_start(start_info);
  for (const EpochResult& restored : history) {
    if (callbacks_.on_epoch && !callbacks_.on_epoch(restored)) {
      result.stopped = state.epochs_done < options_.epochs;
      break;
    }
  }
  const double resumed_runtime = state.runtime_seconds;

  for (int64_t epoch = state.epochs_done; epoch < options_.epochs && !result.stopped; ++epoch) {
    const Clock::time_point epoch_start = Clock::now();
    // The step losses are summed on the device in double; the host reads them once per progress
    // interval (the interval's losses) and once per epoch, so no step waits for the GPU.
    torch::Tensor epoch_loss_sum =
        torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(device));
    torch::Tensor interval_loss_sum = torch::zeros_like(epoch_loss_sum);
    int64_t epoch_steps = 0, epoch_samples = 0, interval_steps = 0;
    for (const std::vector<int64_t>& indices : PlanBatches(train, batching, epoch)) {
      if (callbacks_.stop != nullptr && callbacks_.stop->load()) {
        result.stopped = true;
        break;
      }
      TokenBatch batch = CollateBatch(train, indices, padding);
      MoveBatch(batch, device);
      SetLearningRate(optimizer, options_.learning_rate *
                                     LinearScheduleFactor(state.global_step, options_.warmup_steps,
                                                          total_steps));
      optimizer.ZeroGrad();
      torch::Tensor logits =
          model_->forward(batch.input_ids, batch.attention_mask, batch.last_token_index);
      torch::Tensor loss = SequenceClassificationLoss(logits.to(torch::kFloat32), batch.labels);
      loss.backward();
      if (options_.max_grad_norm > 0) optimizer.ClipGradNorm(options_.max_grad_norm);
      optimizer.step();
      {
        torch::NoGradGuard no_grad;
        epoch_loss_sum.add_(loss.detach());
        if (callbacks_.on_progress) interval_loss_sum.add_(loss.detach());
      }
      state.total_flos += flos_per_token * static_cast<double>(batch.input_ids.numel());
      ++state.global_step;
      ++epoch_steps;
      ++interval_steps;
      epoch_samples += static_cast<int64_t>(indices.size());
      const bool last_of_epoch = epoch_samples == train.size();
      if (callbacks_.on_progress && (interval_steps == progress_interval || last_of_epoch)) {
        TrainingProgress progress;
        progress.epoch = epoch + 1;
        progress.step = state.global_step;
        progress.total_steps = total_steps;
        progress.loss = interval_loss_sum.item<double>() / static_cast<double>(interval_steps);
        interval_loss_sum.zero_();
        interval_steps = 0;
        const double elapsed = SecondsSince(epoch_start);
        progress.samples_per_second = static_cast<double>(epoch_samples) / std::max(elapsed, 1e-9);
        progress.eta_seconds = elapsed / static_cast<double>(epoch_steps) *
                               static_cast<double>(total_steps - state.global_step);
        callbacks_.on_progress(progress);
      }
    }
    const double epoch_loss = epoch_loss_sum.item<double>();
    state.loss_sum += epoch_loss;
    if (result.stopped) break;
    const double train_seconds = SecondsSince(epoch_start);
    EpochResult epoch_result;
    epoch_result.epoch = epoch + 1;
    epoch_result.train_loss = epoch_loss / static_cast<double>(std::max<int64_t>(1, epoch_steps));
    epoch_result.samples_per_second =
        static_cast<double>(epoch_samples) / std::max(train_seconds, 1e-9);
    if (validation != nullptr) epoch_result.validation = Evaluate(*validation);
    model_->train();
    epoch_result.global_step = state.global_step;
    state.epochs_done = epoch + 1;
    state.runtime_seconds = resumed_runtime + SecondsSince(start);
    epoch_result.wall_time_seconds = state.runtime_seconds;
    history.push_back(epoch_result);
    if (!options_.checkpoint_dir.empty()) {
      state.epochs_json = EpochsToJson(history);
      SaveTrainingCheckpoint(options_.checkpoint_dir, *model_, optimizer, state);
    }
    result.epoch_results.push_back(epoch_result);
    if (callbacks_.on_epoch && !callbacks_.on_epoch(epoch_result)) {
      result.stopped = state.epochs_done < options_.epochs;
      break;
    }
  }
  result.global_steps = state.global_step;
  result.train_loss = state.loss_sum / static_cast<double>(std::max<int64_t>(1, state.global_step));
  result.runtime_seconds = resumed_runtime + SecondsSince(start);
  result.epochs = static_cast<double>(state.epochs_done);
  const double samples = static_cast<double>(train.size()) * result.epochs;
  result.samples_per_second = samples / std::max(result.runtime_seconds, 1e-9);
  result.steps_per_second =
      static_cast<double>(result.global_steps) / std::max(result.runtime_seconds, 1e-9);
  result.total_flos = state.total_flos;
  return result;
}

}  // namespace hpsearch::core
