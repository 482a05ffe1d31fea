// seed_shape_bench: the seed experiment's shape trained by the real trainer on real Banking77 text,
// for issue 7's goals. GPT-2 24 layers x 1024 wide, 16 heads, vocabulary 50,257, 77 labels, random
// weights stored through the real NF4 path (QLoRA: every linear base weight NF4 with double
// quantisation), LoRA r 8 / alpha 16 / dropout 0.1 on all linear layers (--lora-targets c_attn:
// the seed's own choice, examples/banking77-seed.yaml), batch 8 with dynamic
// padding (each batch padded to its longest text, max_length 128), the 8,002 training texts of the
// seed's 80/20 split and the 3,080 test texts. It measures, in this order:
//
//   1. warm-up: --warmup steps (kernel selection, allocator growth; not timed);
//   2. steps: --steps optimizer steps through Trainer::Train → step time and train samples/s;
//   3. the full run: --epochs (4) epochs over all training texts, timed end to end, not
//      extrapolated, with the allocator's peak memory over it (reset first);
//   4. evaluation of the test texts in batches of --eval-batch, twice; the second, warm, is
//      reported.
//
// It prints a table and, with --json FILE, writes the figures as JSON: after every stage above
// (atomically: a temporary file renamed over FILE), with "stage" naming the last one done, so a run
// cut short by a deadline still leaves what it measured. Peak device memory is measured over the
// timed steps (steps_peak_allocated_bytes) and again over the full run. With --export-data FILE it
// writes the token ids, labels and the batches of every epoch it trains on, with the padding rule
// (static shapes or not), which bench/peer/hf_peft_peer.py replays so the peer trains on the same
// texts, batches and padding.
//
// --static-shapes auto|off|on: training batches padded to Banking77's length buckets and to --batch
// rows with zero-weight rows (core/trainer.h TrainerOptions::static_shapes); auto: on on a GPU.
//
// On the CPU (or to smoke-test) shrink the model: --layers 2 --width 64 --heads 2 --max-train 64
// --max-test 32 --epochs 1 --steps 3 --warmup 1.
//
// Usage: seed_shape_bench [--device auto|cpu|cuda] [--dtype auto|float32|bfloat16]
//   [--attn auto|eager|sdpa] [--layers N] [--width N] [--heads N] [--batch N] [--eval-batch N]
//   [--steps N] [--warmup N] [--epochs N] [--max-train N] [--max-test N]
//   [--lora-targets all-linear|c_attn|...] [--gradient-checkpointing] [--no-full-run] [--count-ops]
//   [--json FILE] [--export-data FILE] [--static-shapes auto|off|on]
//   [--data DIR] [--tokenizer DIR] [--threads N] [--max-seconds S]
//
// --count-ops: also counts one training step's kernel launches by the rule of core/kernel_count.h
// (docs/gpu-kernels.md; in bfloat16 compute whatever --dtype, so that casts count), with the
// launches by op name, its ATen operator calls (nested calls included) and autograd nodes, and the
// optimizer part alone next to LibTorch's AdamW + clip_grad_norm_ + zero_grad on the same
// parameters: on a GPU each launch costs microseconds of host time whatever its size, which is what
// bounds a step of this shape. One step is the difference between a 2-batch and a 1-batch epoch
// through Trainer::Train, so per-epoch work (optimizer construction, the epoch's loss read)
// cancels. Needs --max-train of at least 2 batches. The counts do not depend on the width: on the
// CPU, --layers 24 --width 64 --heads 2 counts the seed's depth.
//
// --max-seconds S: a time budget for the whole program; the full run is skipped (and reported as
// skipped, with the estimate) when the measured step time predicts it would not end within it.
#include <torch/types.h>  // first: clip_grad.h uses torch::Tensor without including it

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/batching.h"
#include "core/classification_data.h"
#include "core/device_stats.h"
#include "core/error.h"
#include "core/flat_adamw.h"
#include "core/kernel_count.h"
#include "core/nf4_frozen_weight.h"
#include "core/peft_state.h"
#include "core/run.h"
#include "core/tokenizer.h"
#include "core/torch_compat.h"
#include "core/trainer.h"

namespace {

using namespace hpsearch::core;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string device = "auto", dtype = "auto", attn = "auto", static_shapes = "auto";
  int64_t layers = 24, width = 1024, heads = 16, batch = 8, eval_batch = 64;
  int64_t steps = 100, warmup = 10, epochs = 4, max_train = 0, max_test = 0;
  int threads = 0;
  int64_t max_seconds = 0;  // 0: no limit
  bool gradient_checkpointing = false, full_run = true, count_ops = false;
  std::string json, export_data;
  std::vector<std::string> lora_targets = {kAllLinearTarget};
  std::string data = std::string(HPSEARCH_SOURCE_DIR) + "/data/banking77";
  std::string tokenizer = std::string(HPSEARCH_SOURCE_DIR) + "/data/gpt2";
};

[[noreturn]] void Usage(const std::string& problem) {
  std::fprintf(stderr, "seed_shape_bench: %s\n(see the comment at the top of %s for the flags)\n",
               problem.c_str(), __FILE__);
  std::exit(2);
}

Args ParseArgs(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage(flag + " needs a value");
      return argv[++i];
    };
    auto number = [&]() -> int64_t {
      const std::string v = value();
      char* end = nullptr;
      const long long n = std::strtoll(v.c_str(), &end, 10);
      if (end == v.c_str() || *end != '\0' || n < 0) Usage(flag + " needs a number >= 0, got " + v);
      return n;
    };
    if (flag == "--device")
      a.device = value();
    else if (flag == "--dtype")
      a.dtype = value();
    else if (flag == "--attn")
      a.attn = value();
    else if (flag == "--static-shapes")
      a.static_shapes = value();
    else if (flag == "--layers")
      a.layers = number();
    else if (flag == "--width")
      a.width = number();
    else if (flag == "--heads")
      a.heads = number();
    else if (flag == "--batch")
      a.batch = number();
    else if (flag == "--eval-batch")
      a.eval_batch = number();
    else if (flag == "--steps")
      a.steps = number();
    else if (flag == "--warmup")
      a.warmup = number();
    else if (flag == "--epochs")
      a.epochs = number();
    else if (flag == "--max-train")
      a.max_train = number();
    else if (flag == "--max-test")
      a.max_test = number();
    else if (flag == "--threads")
      a.threads = static_cast<int>(number());
    else if (flag == "--max-seconds")
      a.max_seconds = number();
    else if (flag == "--lora-targets") {
      a.lora_targets.clear();
      std::stringstream list(value());
      for (std::string target; std::getline(list, target, ',');) a.lora_targets.push_back(target);
    } else if (flag == "--gradient-checkpointing")
      a.gradient_checkpointing = true;
    else if (flag == "--no-full-run")
      a.full_run = false;
    else if (flag == "--count-ops")
      a.count_ops = true;
    else if (flag == "--json")
      a.json = value();
    else if (flag == "--export-data")
      a.export_data = value();
    else if (flag == "--data")
      a.data = value();
    else if (flag == "--tokenizer")
      a.tokenizer = value();
    else
      Usage("unknown flag " + flag);
  }
  if (a.static_shapes != "auto" && a.static_shapes != "off" && a.static_shapes != "on") {
    Usage("--static-shapes takes auto, off or on, got " + a.static_shapes);
  }
  if (a.batch < 1 || a.eval_batch < 1 || a.steps < 1 || a.epochs < 1 || a.layers < 1) {
    Usage("--batch, --eval-batch, --steps, --epochs and --layers must be at least 1");
  }
  return a;
}

// The first `count` examples (all with count 0).
TokenizedDataset Head(TokenizedDataset data, int64_t count) {
  if (count > 0 && count < data.size()) data.examples.resize(static_cast<size_t>(count));
  return data;
}

// The launches by op name, largest first.
nlohmann::json LaunchesByName(const std::map<std::string, int64_t>& counts) {
  std::vector<std::pair<std::string, int64_t>> items(counts.begin(), counts.end());
  std::stable_sort(items.begin(), items.end(),
                   [](const auto& x, const auto& y) { return x.second > y.second; });
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [name, n] : items) out.push_back({name, n});
  return out;
}

double Seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

TrainerOptions TrainingOptions(const Args& a, int64_t epochs) {
  TrainerOptions o;
  o.static_shapes = a.static_shapes == "on"    ? StaticShapes::kOn
                    : a.static_shapes == "off" ? StaticShapes::kOff
                                               : StaticShapes::kAuto;
  o.learning_rate = 2e-4;
  o.batch_size = a.batch;
  o.eval_batch_size = a.eval_batch;
  o.epochs = epochs;
  o.weight_decay = 0.0;
  o.warmup_steps = 0;
  o.max_grad_norm = 1.0;
  o.seed = 42;
  o.progress_interval_steps = 1000000;  // no progress reads: nothing to wait for mid-epoch
  return o;
}

nlohmann::json ExportedData(const TokenizedDataset& train, const TokenizedDataset& test,
                            const Args& a, int64_t vocab_size, const PaddingOptions& padding) {
  nlohmann::json out;
  // How training batches are padded (core/batching.h PaddingOptions): no buckets and rows 0 is
  // dynamic padding; otherwise the width is the smallest bucket holding the batch's longest text
  // (at most max_length) and the batch is filled to `rows` with zero-weight rows.
  out["padding"] = {{"length_buckets", padding.length_buckets},
                    {"rows", padding.rows},
                    {"max_length", train.max_length}};
  out["vocab_size"] = vocab_size;
  out["num_labels"] = train.num_classes;
  out["pad_token_id"] = train.pad_token_id;
  out["batch_size"] = a.batch;
  out["eval_batch_size"] = a.eval_batch;
  auto ids = [](const TokenizedDataset& d) {
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& e : d.examples) rows.push_back(e.ids);
    return rows;
  };
  auto labels = [](const TokenizedDataset& d) {
    std::vector<int64_t> l;
    for (const auto& e : d.examples) l.push_back(e.label);
    return l;
  };
  out["train_ids"] = ids(train);
  out["train_labels"] = labels(train);
  out["test_ids"] = ids(test);
  out["test_labels"] = labels(test);
  // The batches of each phase as the trainer draws them (seed 42; indices into train_ids).
  BatchOptions batching;
  batching.batch_size = a.batch;
  batching.shuffle = true;
  batching.seed = 42;
  if (a.warmup > 0) {
    out["warmup_batches"] = PlanBatches(Head(train, a.warmup * a.batch), batching, 0);
  } else {
    out["warmup_batches"] = nlohmann::json::array();
  }
  out["step_batches"] = PlanBatches(Head(train, a.steps * a.batch), batching, 0);
  nlohmann::json epochs = nlohmann::json::array();
  for (int64_t epoch = 0; epoch < a.epochs; ++epoch) {
    epochs.push_back(PlanBatches(train, batching, epoch));
  }
  out["epoch_batches"] = epochs;
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = ParseArgs(argc, argv);
  const Clock::time_point program_start = Clock::now();
  try {
    if (a.threads > 0) at::set_num_threads(a.threads);
    at::globalContext().setFlushDenormal(true);
    const torch::Device device = ResolveDevice(a.device);
    const c10::ScalarType dtype = ResolveComputeDtype(a.dtype, device);
    const PaddingOptions padding = TrainingPadding(TrainingOptions(a, 1), device);
    const std::string attn = a.attn != "auto"                                            ? a.attn
                             : device.is_cuda() && compat::kHasScaledDotProductAttention ? "sdpa"
                                                                                         : "eager";

    // Data: the seed's split of train.csv (80/20, seed 42, not stratified) and test.csv.
    const Clock::time_point setup_start = Clock::now();
    Gpt2Tokenizer tokenizer = Gpt2Tokenizer::FromDirectory(a.tokenizer);
    hpsearch::formats::DataOptions data_options;
    data_options.text_column = "text";
    data_options.label_column = "category";
    data_options.validation_fraction = 0.2;
    data_options.stratify_split = false;
    data_options.split_seed = 42;
    data_options.max_length = 128;
    data_options.pad_token_id = tokenizer.eos_token_id();
    const ClassificationData data =
        LoadClassificationData({a.data + "/train.csv", "", a.data + "/test.csv"}, data_options);
    const EncodeFn encode = [&tokenizer](std::string_view text) { return tokenizer.Encode(text); };
    const TokenizedDataset train =
        Head(TokenizeDataset(data.train, encode, data_options), a.max_train);
    const TokenizedDataset test =
        Head(TokenizeDataset(data.test, encode, data_options), a.max_test);
    if (a.count_ops && train.size() < 2 * a.batch) {
      Usage("--count-ops needs at least 2 batches of training texts (--max-train >= 2 x --batch)");
    }

    // The model: random GPT-2 weights, every linear base stored as NF4, LoRA on all linear layers.
    Gpt2ForSequenceClassificationOptions options;
    Gpt2Config& c = options.config;
    c.n_layer = a.layers;
    c.n_embd = a.width;
    c.n_head = a.heads;
    c.n_positions = 1024;
    c.vocab_size = tokenizer.vocab_size();
    c.num_labels = data.labels.size();
    c.pad_token_id = tokenizer.eos_token_id();
    c.attn_implementation = attn;
    options.fine_tuning.method = FineTuningMethod::kQlora;
    options.fine_tuning.lora_r = 8;
    options.fine_tuning.lora_alpha = 16;
    options.fine_tuning.lora_dropout = 0.1;
    options.fine_tuning.target_modules = a.lora_targets;
    options.compute_dtype = dtype;
    options.gradient_checkpointing = a.gradient_checkpointing;
    options.seed = 42;
    Gpt2ForSequenceClassification model(options);
    ReplaceFrozenBaseWeights(*model, Nf4FrozenWeightFactory({}));
    model->to(device);
    SynchronizeDevice(device);
    const double setup_seconds = Seconds(setup_start);
    // What the model holds between steps (the persistent lines of the memory budget in
    // docs/gpu-kernels.md), counted from its tensors: parameters (trainable and frozen) and buffers
    // (the NF4 weights).
    int64_t parameter_bytes = 0, buffer_bytes = 0;
    for (const auto& p : model->parameters()) parameter_bytes += p.numel() * p.element_size();
    for (const auto& b : model->buffers()) buffer_bytes += b.numel() * b.element_size();

    nlohmann::json report = {{"bench", "seed_shape_bench"},
                             {"stage", "setup"},
                             {"device", DeviceName(device)},
                             {"torch_version", TORCH_VERSION},
                             {"built_with_torch_cuda", BuiltWithTorchCuda()},
                             {"shape",
                              {{"layers", a.layers},
                               {"width", a.width},
                               {"heads", a.heads},
                               {"vocab", tokenizer.vocab_size()},
                               {"labels", data.labels.size()}}},
                             {"compute_dtype", c10::toString(dtype)},
                             {"attn_implementation", attn},
                             {"gradient_checkpointing", a.gradient_checkpointing},
                             {"lora_targets", a.lora_targets},
                             {"static_shapes", padding.rows > 0},
                             {"length_buckets", padding.length_buckets},
                             {"batch_size", a.batch},
                             {"eval_batch_size", a.eval_batch},
                             {"train_texts", train.size()},
                             {"test_texts", test.size()},
                             {"setup_seconds", setup_seconds},
                             {"model_parameter_bytes", parameter_bytes},
                             {"model_buffer_bytes", buffer_bytes}};
    // The figures so far, written after each stage.
    const auto write_report = [&](const char* stage) {
      report["stage"] = stage;
      if (a.json.empty()) return;
      const std::string partial = a.json + ".partial";
      {
        std::ofstream out(partial);
        out << report.dump(2) << "\n";
        if (!out) Fail(ErrorCode::kIo, "cannot write " + partial);
      }
      if (std::rename(partial.c_str(), a.json.c_str()) != 0) {
        Fail(ErrorCode::kIo, "cannot rename " + partial + " to " + a.json);
      }
    };
    write_report("setup");

    if (!a.export_data.empty()) {
      std::ofstream out(a.export_data);
      out << ExportedData(train, test, a, tokenizer.vocab_size(), padding).dump();
      if (!out) Fail(ErrorCode::kIo, "cannot write " + a.export_data);
    }

    // 1. Warm-up.
    if (a.warmup > 0) {
      Trainer(model, TrainingOptions(a, 1)).Train(Head(train, a.warmup * a.batch), nullptr);
      SynchronizeDevice(device);
    }
    // 2. Steps.
    const TokenizedDataset step_data = Head(train, a.steps * a.batch);
    const int64_t step_count = (step_data.size() + a.batch - 1) / a.batch;
    SynchronizeDevice(device);
    ResetPeakMemoryStats(device);
    const Clock::time_point steps_start = Clock::now();
    Trainer(model, TrainingOptions(a, 1)).Train(step_data, nullptr);
    SynchronizeDevice(device);
    const double steps_seconds = Seconds(steps_start);
    const DeviceMemoryStats steps_memory = GetDeviceMemoryStats(device);
    report["steps"] = step_count;
    report["step_ms"] = 1000.0 * steps_seconds / static_cast<double>(step_count);
    report["train_samples_per_second"] = static_cast<double>(step_data.size()) / steps_seconds;
    report["steps_peak_allocated_bytes"] = steps_memory.has_memory_stats
                                               ? nlohmann::json(steps_memory.peak_allocated_bytes)
                                               : nlohmann::json(nullptr);
    report["steps_peak_reserved_bytes"] = steps_memory.has_memory_stats
                                              ? nlohmann::json(steps_memory.peak_reserved_bytes)
                                              : nlohmann::json(nullptr);
    write_report("steps");
    // 3. The full run.
    nlohmann::json full = nullptr;
    const int64_t full_steps = a.epochs * ((train.size() + a.batch - 1) / a.batch);
    const double full_estimate =
        steps_seconds / static_cast<double>(step_count) * static_cast<double>(full_steps);
    const double budget_left = static_cast<double>(a.max_seconds) - Seconds(program_start);
    bool run_full = a.full_run;
    if (run_full && a.max_seconds > 0 && 1.15 * full_estimate + 10.0 > budget_left) {
      run_full = false;
      full = {{"skipped", "estimated " + std::to_string(full_estimate) + " s, " +
                              std::to_string(budget_left) + " s of --max-seconds left"}};
      std::printf("full run skipped: estimated %.1f s, %.1f s left\n", full_estimate, budget_left);
    }
    if (run_full) {
      ResetPeakMemoryStats(device);
      const Clock::time_point full_start = Clock::now();
      const TrainResult result = Trainer(model, TrainingOptions(a, a.epochs)).Train(train, nullptr);
      SynchronizeDevice(device);
      const double seconds = Seconds(full_start);
      const DeviceMemoryStats memory = GetDeviceMemoryStats(device);
      full = {{"epochs", a.epochs},
              {"samples", train.size() * a.epochs},
              {"steps", result.global_steps},
              {"seconds", seconds},
              {"samples_per_second", static_cast<double>(train.size() * a.epochs) / seconds},
              {"train_loss", result.train_loss},
              {"peak_allocated_bytes", memory.has_memory_stats
                                           ? nlohmann::json(memory.peak_allocated_bytes)
                                           : nlohmann::json(nullptr)},
              {"peak_reserved_bytes", memory.has_memory_stats
                                          ? nlohmann::json(memory.peak_reserved_bytes)
                                          : nlohmann::json(nullptr)}};
    }
    report["full_run"] = full;
    write_report("full_run");
    nlohmann::json ops = nullptr;
    if (a.count_ops) {
      // The rule counts in bfloat16 compute (casts count), whatever the run's dtype.
      model->transformer->set_compute_dtype(at::kBFloat16);
      const auto count_epoch = [&](int64_t batches) {
        const TokenizedDataset data = Head(train, batches * a.batch);
        return CountKernelLaunches(
            [&] { Trainer(model, TrainingOptions(a, 1)).Train(data, nullptr); });
      };
      count_epoch(1);  // warms what is cached across steps in bfloat16 (the frozen biases)
      const KernelCount one_step = count_epoch(1);
      const KernelCount step = Subtract(count_epoch(2), one_step);
      model->transformer->set_compute_dtype(dtype == at::kFloat ? c10::ScalarType::Undefined
                                                                : dtype);
      std::vector<torch::Tensor> trainable;
      for (const auto& p : model->parameters()) {
        if (p.requires_grad()) trainable.push_back(p);
      }
      FlatAdamW flat({torch::optim::OptimizerParamGroup(trainable)},
                     torch::optim::AdamWOptions(1e-4));
      const KernelCount flat_ops = CountKernelLaunches([&] {
        flat.ClipGradNorm(1.0);
        flat.step();
        flat.ZeroGrad();
      });
      // LibTorch's optimizer works on ordinary per-tensor gradients (its zero_grad detaches them).
      for (auto& p : trainable) p.mutable_grad() = p.grad().clone();
      torch::optim::AdamW plain(trainable, torch::optim::AdamWOptions(1e-4));
      const KernelCount plain_ops = CountKernelLaunches([&] {
        torch::nn::utils::clip_grad_norm_(trainable, 1.0);
        plain.step();
        plain.zero_grad();
      });
      ops = {{"counted_compute_dtype", "bfloat16"},
             {"trainable_tensors", trainable.size()},
             {"kernel_launches", step.launches},
             {"kernel_launches_by_op", LaunchesByName(step.launches_by_name)},
             {"kernel_launches_by_caller", LaunchesByName(step.launches_by_caller)},
             {"step_aten_calls", step.aten_calls},
             {"step_autograd_nodes", step.autograd_nodes},
             {"optimizer_flat_adamw_kernel_launches", flat_ops.launches},
             {"optimizer_flat_adamw_aten_calls", flat_ops.aten_calls},
             {"optimizer_libtorch_adamw_kernel_launches", plain_ops.launches},
             {"optimizer_libtorch_adamw_aten_calls", plain_ops.aten_calls}};
      std::printf(
          "ops: one training step (bfloat16 compute) %lld kernel launches, %lld ATen calls, "
          "%lld autograd nodes; optimizer (clip, step, zero) FlatAdamW %lld launches vs "
          "LibTorch AdamW %lld over %zu tensors\n",
          static_cast<long long>(step.launches), static_cast<long long>(step.aten_calls),
          static_cast<long long>(step.autograd_nodes), static_cast<long long>(flat_ops.launches),
          static_cast<long long>(plain_ops.launches), trainable.size());
      std::printf("  launches by op:");
      for (const auto& item : ops["kernel_launches_by_op"]) {
        std::printf(" %s %lld,", item[0].get<std::string>().c_str(),
                    static_cast<long long>(item[1].get<int64_t>()));
      }
      std::printf("\n");
    }
    // 4. Evaluation, cold then warm.
    Trainer evaluator(model, TrainingOptions(a, 1));
    const EvalResult cold = evaluator.Evaluate(test);
    const EvalResult warm = evaluator.Evaluate(test);

    report["ops"] = ops;
    report["eval_seconds"] = warm.runtime_seconds;
    report["eval_samples_per_second"] = warm.samples_per_second;
    report["eval_cold_seconds"] = cold.runtime_seconds;
    report["eval_accuracy"] = warm.accuracy;
    write_report("complete");
    std::printf("seed_shape_bench on %s (LibTorch %s): %lld layers x %lld wide, %s, attention %s\n",
                report["device"].get<std::string>().c_str(), TORCH_VERSION,
                static_cast<long long>(a.layers), static_cast<long long>(a.width),
                c10::toString(dtype), attn.c_str());
    std::printf("  setup (build, NF4, to device)   %9.2f s\n", setup_seconds);
    std::printf("  model: parameters + buffers     %9.1f + %.1f MiB\n",
                static_cast<double>(parameter_bytes) / (1024.0 * 1024.0),
                static_cast<double>(buffer_bytes) / (1024.0 * 1024.0));
    std::printf("  step (batch %lld, %lld steps)     %9.2f ms\n", static_cast<long long>(a.batch),
                static_cast<long long>(step_count), report["step_ms"].get<double>());
    std::printf("  train samples/s                 %9.1f\n",
                report["train_samples_per_second"].get<double>());
    if (steps_memory.has_memory_stats) {
      std::printf(
          "  peak GPU memory over the steps  %9.3f GiB\n",
          static_cast<double>(steps_memory.peak_allocated_bytes) / (1024.0 * 1024.0 * 1024.0));
    }
    if (run_full) {
      std::printf("  full run %lld epochs x %lld texts %9.2f s (%.1f samples/s)\n",
                  static_cast<long long>(a.epochs), static_cast<long long>(train.size()),
                  full["seconds"].get<double>(), full["samples_per_second"].get<double>());
      if (!full["peak_allocated_bytes"].is_null()) {
        std::printf("  peak GPU memory (allocated)     %9.3f GiB\n",
                    full["peak_allocated_bytes"].get<double>() / (1024.0 * 1024.0 * 1024.0));
      }
    }
    std::printf("  eval %lld texts (batch %lld)       %9.3f s (%.1f samples/s; cold %.3f s)\n",
                static_cast<long long>(test.size()), static_cast<long long>(a.eval_batch),
                warm.runtime_seconds, warm.samples_per_second, cold.runtime_seconds);
    std::printf("%s\n", report.dump().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "seed_shape_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
