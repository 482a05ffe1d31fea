#include "core/run.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include <filesystem>

#include "core/checkpoint.h"
#include "core/classification_data.h"
#include "core/compact_vocabulary.h"
#include "core/data_split.h"
#include "core/device_stats.h"
#include "core/error.h"
#include "core/nf4_frozen_weight.h"
#include "core/peft_adapter.h"
#include "core/peft_state.h"
#include "core/tokenizer.h"
#include "core/torch_compat.h"

namespace hpsearch::core {
namespace {

namespace fs = std::filesystem;

formats::DataOptions MakeDataOptions(const DataConfig& d, int64_t pad_token_id) {
  formats::DataOptions o;
  o.format = d.format == "csv"     ? formats::DataFormat::kCsv
             : d.format == "jsonl" ? formats::DataFormat::kJson
                                   : formats::DataFormat::kAuto;
  o.text_column = d.text_column;
  o.label_column = d.label_column;
  o.validation_fraction = d.validation_fraction;
  o.stratify_split = d.stratify;
  o.split_seed = d.split_seed;
  o.max_length = d.max_length;
  o.pad_token_id = pad_token_id;
  return o;
}

ClassificationData LoadData(const DataConfig& d, const formats::DataOptions& o) {
  if (d.labels.empty())
    return LoadClassificationData({d.train_file, d.validation_file, d.test_file}, o);
  // The study lists the classes: every file is checked against that list.
  const formats::LabelSet labels(d.labels);
  ClassificationData data;
  data.labels = labels;
  formats::LabelledDataset all = formats::LoadLabelledDataset(d.train_file, o, labels);
  if (d.validation_file.empty()) {
    DataSplit split = SplitTrainValidation(all, o);
    data.train = formats::SelectExamples(all, split.train);
    data.validation = formats::SelectExamples(all, split.validation);
    data.validation_is_split = true;
  } else {
    data.train = std::move(all);
    data.validation = formats::LoadLabelledDataset(d.validation_file, o, labels);
  }
  if (!d.test_file.empty()) data.test = formats::LoadLabelledDataset(d.test_file, o, labels);
  return data;
}

// QLoRA: the frozen base weights of the blocks become NF4 (on the CPU, before the model moves).
// Other methods keep them as they are.
void QuantizeBaseForQlora(const RunConfig& config, Gpt2ForSequenceClassification& model) {
  if (config.fine_tune.method != "qlora") return;
  Nf4Options nf4;
  nf4.double_quant = config.fine_tune.double_quant;
  nf4.block_size = static_cast<int>(config.fine_tune.block_size);
  ReplaceFrozenBaseWeights(*model, Nf4FrozenWeightFactory(nf4));
}

Gpt2ForSequenceClassification BuildModel(const RunConfig& config, int64_t num_labels,
                                         int64_t vocab_size, int64_t pad_token_id,
                                         const RunOptions& run_options,
                                         const RunCallbacks& callbacks) {
  Gpt2ForSequenceClassificationOptions options;
  const torch::Device device = ResolveDevice(run_options.device);
  options.compute_dtype = ResolveComputeDtype(config.fine_tune.compute_dtype, device);
  options.config.attn_implementation =
      run_options.attn_implementation != "auto"                   ? run_options.attn_implementation
      : device.is_cuda() && compat::kHasScaledDotProductAttention ? "sdpa"
                                                                  : "eager";
  options.seed = config.seed;
  options.gradient_checkpointing = config.training.gradient_checkpointing;
  options.fine_tuning.method = ParseFineTuningMethod(config.fine_tune.method);
  options.fine_tuning.lora_r = config.fine_tune.lora_r;
  options.fine_tuning.lora_alpha = config.fine_tune.lora_alpha;
  options.fine_tuning.lora_dropout = config.fine_tune.lora_dropout;
  options.fine_tuning.target_modules = config.fine_tune.target_modules;
  Gpt2Config& c = options.config;
  c.num_labels = num_labels;
  c.pad_token_id = pad_token_id;
  if (config.model.random_init) {
    const RandomInitConfig& a = config.model.architecture;
    c.n_layer = a.n_layer;
    c.n_embd = a.n_embd;
    c.n_head = a.n_head;
    c.n_positions = a.n_positions;
    c.vocab_size = a.vocab_size > 0 ? a.vocab_size : vocab_size;
    c.layer_norm_epsilon = a.layer_norm_epsilon;
    c.activation = a.activation;
    c.initializer_range = a.initializer_range;
    c.resid_pdrop = c.embd_pdrop = c.attn_pdrop = a.dropout;
    return Gpt2ForSequenceClassification(options);
  }
  Checkpoint checkpoint = LoadCheckpoint(config.model.path, [&](const std::string& warning) {
    if (callbacks.on_warning) callbacks.on_warning(warning);
  });
  ApplyHfGpt2Config(checkpoint.config, config.model.path + "/config.json", &c);
  if (config.data.max_length > c.n_positions) {
    Fail(ErrorCode::kInvalidArgument, "data.max_length (" + std::to_string(config.data.max_length) +
                                          ") exceeds the checkpoint's n_positions (" +
                                          std::to_string(c.n_positions) + ")");
  }
  std::map<std::string, torch::Tensor> weights;
  const std::string prefix = "transformer.";
  for (auto& [name, tensor] : checkpoint.tensors) {
    if (name == kScoreWeightName) {
      if (tensor.size(0) != num_labels) {
        if (callbacks.on_warning) {
          callbacks.on_warning(checkpoint.weights_path.string() + ": score.weight has " +
                               std::to_string(tensor.size(0)) + " classes but the data has " +
                               std::to_string(num_labels) + "; the head is newly initialized");
        }
        continue;
      }
      weights[name] = tensor;
    } else if (name.rfind(prefix, 0) == 0) {
      weights[name.substr(prefix.size())] = tensor;
    }
  }
  Gpt2ForSequenceClassification model(options);
  model->LoadHfWeights(weights);
  return model;
}

// The saved model carries its tokenizer, as Hugging Face saves one beside a model, so `predict`
// needs no other directory.
void CopyTokenizerFiles(const std::string& tokenizer_dir, const std::string& model_dir) {
  const fs::path from(tokenizer_dir), to(model_dir);
  const bool hf_names = fs::exists(from / "vocab.json");
  try {
    fs::copy_file(from / (hf_names ? "vocab.json" : "encoder.json"), to / "vocab.json",
                  fs::copy_options::overwrite_existing);
    fs::copy_file(from / (hf_names ? "merges.txt" : "vocab.bpe"), to / "merges.txt",
                  fs::copy_options::overwrite_existing);
  } catch (const fs::filesystem_error& e) {
    Fail(ErrorCode::kIo, "cannot copy the tokenizer into " + model_dir + ": " + e.what());
  }
}

}  // namespace

torch::Device ResolveDevice(const std::string& name) {
  // "auto" takes the GPU only when this build can also run the NF4 kernel there.
  if (name == "auto") {
    return torch::cuda::is_available() && BuiltWithTorchCuda() ? torch::Device("cuda:0")
                                                               : torch::Device(torch::kCPU);
  }
  c10::optional<torch::Device> device;
  try {
    device = torch::Device(name);
  } catch (const c10::Error&) {
    Fail(ErrorCode::kInvalidArgument,
         "device \"" + name + "\" is not a device name; use auto, cpu, cuda or cuda:N");
  }
  if (!device->is_cpu() && !device->is_cuda()) {
    Fail(ErrorCode::kInvalidArgument,
         "device \"" + name + "\": only cpu and cuda devices are supported");
  }
  if (device->is_cuda() && !torch::cuda::is_available()) {
    Fail(ErrorCode::kUnsupported, "device \"" + name +
                                      "\": LibTorch sees no CUDA device (a CPU-only build, or no "
                                      "GPU); use cpu");
  }
  return *device;
}

c10::ScalarType ResolveComputeDtype(const std::string& name, const torch::Device& device) {
  if (name == "auto" || name.empty()) return device.is_cuda() ? at::kBFloat16 : at::kFloat;
  if (name == "float32") return at::kFloat;
  if (name == "bfloat16") return at::kBFloat16;
  if (name == "float16") return at::kHalf;
  Fail(ErrorCode::kInvalidArgument, "fine_tune.quantization.compute_dtype \"" + name +
                                        "\": expected auto, float32, bfloat16 or float16");
}

RunOutcome RunTraining(const RunConfig& config, const RunOptions& options,
                       const RunCallbacks& callbacks) {
  ValidateRunConfig(config);
  if (options.threads > 0) at::set_num_threads(options.threads);
  at::globalContext().setFlushDenormal(true);

  Gpt2Tokenizer tokenizer = Gpt2Tokenizer::FromDirectory(config.model.tokenizer);
  const int64_t pad = tokenizer.eos_token_id();
  const formats::DataOptions data_options = MakeDataOptions(config.data, pad);
  ClassificationData data = LoadData(config.data, data_options);
  if (config.retrain_on_train_validation) {
    data.train.examples.insert(data.train.examples.end(), data.validation.examples.begin(),
                               data.validation.examples.end());
    data.validation.examples.clear();
  }
  const EncodeFn encode = [&tokenizer](std::string_view text) { return tokenizer.Encode(text); };
  TokenizedDataset train = TokenizeDataset(data.train, encode, data_options);
  // A compact vocabulary is built from the texts the model trains on (train + validation when
  // retraining on both), never from validation or test texts it is scored on.
  std::optional<CompactVocabulary> compact;
  if (config.model.UsesCompactVocab(config.fine_tune.method)) {
    compact.emplace(train, std::vector<int32_t>{static_cast<int32_t>(pad)}, tokenizer.vocab_size());
    compact->Apply(&train);
  }
  auto tokenize = [&](const formats::LabelledDataset& dataset) {
    TokenizedDataset tokenized = TokenizeDataset(dataset, encode, data_options);
    if (compact) compact->Apply(&tokenized);
    return tokenized;
  };
  std::optional<TokenizedDataset> validation;
  if (data.validation.size() > 0) validation = tokenize(data.validation);

  Gpt2ForSequenceClassification model =
      compact
          ? BuildModel(config, data.labels.size(), compact->size(),
                       compact->ToCompact(static_cast<int32_t>(pad)), options, callbacks)
          : BuildModel(config, data.labels.size(), tokenizer.vocab_size(), pad, options, callbacks);
  if (!compact) {
    tokenizer.RequireFitsModel(model->options().config.vocab_size,
                               config.model.path.empty() ? "the model" : config.model.path);
  }
  QuantizeBaseForQlora(config, model);
  // Quantised on the CPU, then moved once; the trainer computes where the parameters are.
  model->to(ResolveDevice(options.device));

  TrainerOptions trainer_options;
  const TrainingConfig& t = config.training;
  trainer_options.learning_rate = t.learning_rate;
  trainer_options.batch_size = t.batch_size;
  trainer_options.epochs = t.epochs;
  trainer_options.weight_decay = t.weight_decay;
  trainer_options.warmup_steps = t.warmup_steps;
  trainer_options.max_grad_norm = t.max_grad_norm;
  trainer_options.adam_beta1 = t.adam_beta1;
  trainer_options.adam_beta2 = t.adam_beta2;
  trainer_options.adam_epsilon = t.adam_epsilon;
  trainer_options.eval_batch_size = config.data.eval_batch_size;
  trainer_options.seed = config.seed;
  trainer_options.group_by_length = config.data.group_by_length;
  if (!config.artifact_dir.empty()) {
    trainer_options.checkpoint_dir = (fs::path(config.artifact_dir) / "checkpoint").string();
    trainer_options.checkpoint_tag = config.checkpoint_tag;
  }
  TrainerCallbacks trainer_callbacks;
  trainer_callbacks.on_start = callbacks.on_start;
  trainer_callbacks.on_epoch = callbacks.on_epoch;
  trainer_callbacks.on_progress = callbacks.on_progress;
  trainer_callbacks.stop = callbacks.stop;
  Trainer trainer(model, trainer_options, trainer_callbacks);

  RunOutcome outcome;
  outcome.labels = data.labels.names();
  outcome.train_examples = train.size();
  outcome.validation_examples = validation ? validation->size() : 0;
  outcome.train = trainer.Train(train, validation ? &*validation : nullptr);
  if (outcome.train.stopped) return outcome;
  if (config.evaluate_test) {
    if (!data.has_test())
      Fail(ErrorCode::kInvalidArgument, "data.test_file: no test examples to evaluate");
    outcome.test = trainer.Evaluate(tokenize(data.test));
  }
  if (!config.artifact_dir.empty()) {
    outcome.model_dir = (fs::path(config.artifact_dir) / "model").string();
    SaveTrainedModel(outcome.model_dir, *model,
                     {config.model.random_init ? "random_init" : config.model.path, outcome.labels,
                      config.seed, compact ? &*compact : nullptr});
    CopyTokenizerFiles(config.model.tokenizer, outcome.model_dir);
  }
  return outcome;
}

RunOutcome RunEvaluation(const RunConfig& config, const std::string& model_dir,
                         const RunOptions& options, const RunCallbacks& callbacks) {
  ValidateRunConfig(config);
  if (options.threads > 0) at::set_num_threads(options.threads);
  at::globalContext().setFlushDenormal(true);
  SavedModelInfo saved;
  ReadSavedModelOptions(model_dir, &saved);  // checks the folder before the data is read

  Gpt2Tokenizer tokenizer = Gpt2Tokenizer::FromDirectory(config.model.tokenizer);
  const int64_t pad = tokenizer.eos_token_id();
  const formats::DataOptions data_options = MakeDataOptions(config.data, pad);
  // Train and validation too: the class ids come from train_file unless the study lists them.
  ClassificationData data = LoadData(config.data, data_options);
  if (data.labels.names() != saved.labels) {
    Fail(ErrorCode::kInvalidArgument,
         model_dir + " was trained on " + std::to_string(saved.labels.size()) +
             " classes that differ from the data's " + std::to_string(data.labels.size()) +
             " (names or order): evaluate it with the data it was trained on");
  }
  Gpt2ForSequenceClassification model =
      BuildModel(config, data.labels.size(), tokenizer.vocab_size(), pad, options, callbacks);
  tokenizer.RequireFitsModel(model->options().config.vocab_size,
                             config.model.path.empty() ? "the model" : config.model.path);
  QuantizeBaseForQlora(config, model);
  LoadTrainedModel(model_dir, *model);
  model->to(ResolveDevice(options.device));

  RunOutcome outcome;
  outcome.labels = data.labels.names();
  outcome.train_examples = static_cast<int64_t>(data.train.size());
  outcome.validation_examples = static_cast<int64_t>(data.validation.size());
  outcome.model_dir = model_dir;
  if (!config.evaluate_test) return outcome;
  if (!data.has_test())
    Fail(ErrorCode::kInvalidArgument, "data.test_file: no test examples to evaluate");
  const EncodeFn encode = [&tokenizer](std::string_view text) { return tokenizer.Encode(text); };
  TrainerOptions trainer_options;
  trainer_options.eval_batch_size = config.data.eval_batch_size;
  trainer_options.batch_size = config.training.batch_size;
  trainer_options.epochs = config.training.epochs;
  trainer_options.learning_rate = config.training.learning_rate;
  Trainer evaluator(model, trainer_options);
  outcome.test = evaluator.Evaluate(TokenizeDataset(data.test, encode, data_options));
  return outcome;
}

}  // namespace hpsearch::core
