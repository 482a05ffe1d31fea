// The trainer on tiny models: repeatability, resume, stopping, the schedule, and real learning on a
// Banking77 subset.
#include <ATen/ATen.h>
#include "core/catch_torch.h"

#include <atomic>
#include <cmath>
#include <sstream>

#include <torch/types.h>  // first: clip_grad.h uses torch::Tensor without including it

#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>
#include <torch/serialize/archive.h>

#include "core/classification_data.h"
#include "core/error.h"
#include "core/flat_adamw.h"
#include "core/lr_schedule.h"
#include "core/tokenizer.h"
#include "core/trainer.h"
#include "gpt2_test_util.h"
#include "testing/testing.h"

namespace hpsearch::core {
namespace {

// A learnable toy task: the label is the first token modulo 3; lengths vary so padding is
// exercised.
TokenizedDataset ToyDataset(int64_t size, uint64_t seed) {
  TokenizedDataset data;
  data.source = "toy";
  data.num_classes = 3;
  data.max_length = 12;
  data.pad_token_id = 127;
  at::Generator generator = at::detail::createCPUGenerator(seed);
  at::Tensor tokens = at::randint(0, 120, {size, 12}, generator, at::kLong);
  at::Tensor lengths = at::randint(2, 13, {size}, generator, at::kLong);
  for (int64_t i = 0; i < size; ++i) {
    TokenizedExample example;
    for (int64_t t = 0; t < lengths[i].item<int64_t>(); ++t) {
      example.ids.push_back(static_cast<int32_t>(tokens[i][t].item<int64_t>()));
    }
    example.label = example.ids[0] % 3;
    example.line = i + 2;
    example.untruncated_length = static_cast<int64_t>(example.ids.size());
    data.examples.push_back(example);
  }
  return data;
}

TrainerOptions ToyOptions() {
  TrainerOptions options;
  options.learning_rate = 3e-3;
  options.batch_size = 8;
  options.epochs = 2;
  options.warmup_steps = 3;
  options.weight_decay = 0.01;
  options.eval_batch_size = 16;
  options.seed = 5;
  return options;
}

Gpt2ForSequenceClassification ToyModel(FineTuningMethod method = FineTuningMethod::kFull) {
  return Gpt2ForSequenceClassification(testing::TinyOptions(method, /*seed=*/3));
}

TEST_CASE("Linear schedule warms up then decays to zero", "[core][trainer]") {
  REQUIRE(LinearScheduleFactor(0, 10, 110) == 0.0);
  REQUIRE(LinearScheduleFactor(5, 10, 110) == 0.5);
  REQUIRE(LinearScheduleFactor(10, 10, 110) == 1.0);
  REQUIRE(LinearScheduleFactor(60, 10, 110) == 0.5);
  REQUIRE(LinearScheduleFactor(110, 10, 110) == 0.0);
  REQUIRE(LinearScheduleFactor(0, 0, 100) == 1.0);
}

TEST_CASE("Two runs with one seed give identical metrics", "[core][trainer]") {
  const TokenizedDataset train = ToyDataset(96, 1), validation = ToyDataset(32, 2);
  TrainResult first = Trainer(ToyModel(), ToyOptions()).Train(train, &validation);
  TrainResult second = Trainer(ToyModel(), ToyOptions()).Train(train, &validation);
  REQUIRE(first.epoch_results.size() == 2);
  for (size_t e = 0; e < 2; ++e) {
    REQUIRE(first.epoch_results[e].train_loss == second.epoch_results[e].train_loss);
    REQUIRE(first.epoch_results[e].validation->loss == second.epoch_results[e].validation->loss);
    REQUIRE(first.epoch_results[e].validation->accuracy ==
            second.epoch_results[e].validation->accuracy);
  }
  REQUIRE(first.train_loss == second.train_loss);
  REQUIRE(first.global_steps == 24);  // 96 / 8 x 2 epochs
  REQUIRE(first.epochs == 2.0);
  // A different seed trains differently.
  TrainerOptions other = ToyOptions();
  other.seed = 6;
  TrainResult third = Trainer(ToyModel(), other).Train(train, &validation);
  REQUIRE(third.train_loss != first.train_loss);
}

TEST_CASE("Training summary figures follow Hugging Face's definitions", "[core][trainer]") {
  const TokenizedDataset train = ToyDataset(40, 1), validation = ToyDataset(10, 2);
  Trainer trainer(ToyModel(), ToyOptions());
  TrainResult result = trainer.Train(train, &validation);
  REQUIRE(result.global_steps == 10);  // ceil(40 / 8) x 2
  double mean_of_epochs =
      (result.epoch_results[0].train_loss + result.epoch_results[1].train_loss) / 2;
  REQUIRE(result.train_loss == Approx(mean_of_epochs).epsilon(1e-9));  // equal steps per epoch
  REQUIRE(result.samples_per_second == Approx(80.0 / result.runtime_seconds));
  REQUIRE(result.steps_per_second == Approx(10.0 / result.runtime_seconds));
  // 6 x non-embedding parameters x padded input tokens.
  const Gpt2Config c = testing::TinyConfig();
  const int64_t non_embedding = c.n_layer * (12 * c.n_embd * c.n_embd + 13 * c.n_embd) +
                                2 * c.n_embd + c.num_labels * c.n_embd;
  REQUIRE(trainer.NonEmbeddingParameters() == non_embedding);
  REQUIRE(result.total_flos > 6.0 * non_embedding * 80);  // at least one token per example
  REQUIRE(result.total_flos <=
          6.0 * non_embedding * 80 * 12 + 1);  // at most max_length per example
}

TEST_CASE("Checkpoint after epoch 1 then resume equals an uninterrupted run", "[core][trainer]") {
  const TokenizedDataset train = ToyDataset(64, 1), validation = ToyDataset(16, 2);
  TrainResult uninterrupted = Trainer(ToyModel(), ToyOptions()).Train(train, &validation);

  hpsearch::testing::TempDir dir;
  TrainerOptions options = ToyOptions();
  options.checkpoint_dir = dir.path().string();
  TrainerCallbacks stop_after_first;
  stop_after_first.on_epoch = [](const EpochResult&) { return false; };
  TrainResult interrupted =
      Trainer(ToyModel(), options, stop_after_first).Train(train, &validation);
  REQUIRE(interrupted.stopped);
  REQUIRE(interrupted.epoch_results.size() == 1);

  // A fresh process would build a fresh model: its weights come from the checkpoint.
  TrainResult resumed = Trainer(ToyModel(), options).Train(train, &validation);
  REQUIRE(resumed.resumed_after_epoch == 1);
  REQUIRE(resumed.epoch_results.size() == 1);
  REQUIRE(resumed.epoch_results[0].epoch == 2);
  REQUIRE(resumed.epoch_results[0].train_loss == uninterrupted.epoch_results[1].train_loss);
  REQUIRE(resumed.epoch_results[0].validation->loss ==
          uninterrupted.epoch_results[1].validation->loss);
  REQUIRE(resumed.train_loss == uninterrupted.train_loss);
  REQUIRE(resumed.global_steps == uninterrupted.global_steps);
  REQUIRE(resumed.total_flos == uninterrupted.total_flos);
}

TEST_CASE("A resumed run replays its restored epochs, and another run's checkpoint is not resumed",
          "[core][trainer]") {
  const TokenizedDataset train = ToyDataset(48, 1), validation = ToyDataset(16, 2);
  TrainResult uninterrupted = Trainer(ToyModel(), ToyOptions()).Train(train, &validation);
  hpsearch::testing::TempDir dir;
  TrainerOptions options = ToyOptions();
  options.checkpoint_dir = dir.path().string();
  options.checkpoint_tag = "st-1/trial-0";
  TrainerCallbacks stop_after_first;
  stop_after_first.on_epoch = [](const EpochResult&) { return false; };
  TrainResult interrupted =
      Trainer(ToyModel(), options, stop_after_first).Train(train, &validation);
  REQUIRE(interrupted.epoch_results.size() == 1);
  const EpochResult first = interrupted.epoch_results[0];

  std::vector<TrainingStart> starts;
  std::vector<EpochResult> seen;
  TrainerCallbacks record;
  record.on_start = [&starts](const TrainingStart& start) { starts.push_back(start); };
  record.on_epoch = [&seen](const EpochResult& e) {
    seen.push_back(e);
    return true;
  };
  SECTION("the same run resumes and reports epoch 1 again, bit for bit, before epoch 2") {
    TrainResult resumed = Trainer(ToyModel(), options, record).Train(train, &validation);
    REQUIRE(starts.size() == 1);
    CHECK(starts[0].resumed_after_epoch == 1);
    CHECK(starts[0].note.find("resumed from the checkpoint") != std::string::npos);
    REQUIRE(seen.size() == 2);
    CHECK(seen[0].restored);
    CHECK(seen[0].epoch == 1);
    CHECK(seen[0].train_loss == first.train_loss);
    CHECK(seen[0].validation->loss == first.validation->loss);
    CHECK(seen[0].validation->f1_macro == first.validation->f1_macro);
    CHECK(seen[0].wall_time_seconds == first.wall_time_seconds);
    CHECK_FALSE(seen[1].restored);
    CHECK(seen[1].train_loss == uninterrupted.epoch_results[1].train_loss);
    CHECK(resumed.train_loss == uninterrupted.train_loss);
  }
  SECTION("a run with another tag starts over") {
    options.checkpoint_tag = "st-2/trial-0";
    TrainResult fresh = Trainer(ToyModel(), options, record).Train(train, &validation);
    REQUIRE(starts.size() == 1);
    CHECK(starts[0].resumed_after_epoch == 0);
    CHECK(starts[0].note.find("belongs to another run") != std::string::npos);
    REQUIRE(seen.size() == 2);
    CHECK_FALSE(seen[0].restored);
    CHECK(fresh.resumed_after_epoch == 0);
    CHECK(fresh.train_loss == uninterrupted.train_loss);
  }
}

TEST_CASE("A raised stop flag ends training between steps", "[core][trainer]") {
  const TokenizedDataset train = ToyDataset(64, 1);
  std::atomic<bool> stop{false};
  int steps = 0;
  TrainerCallbacks callbacks;
  callbacks.stop = &stop;
  callbacks.on_progress = [&](const TrainingProgress& progress) {
    ++steps;
    REQUIRE(progress.total_steps == 16);
    if (progress.step == 3) stop = true;
  };
  TrainResult result = Trainer(ToyModel(), ToyOptions(), callbacks).Train(train, nullptr);
  REQUIRE(result.stopped);
  REQUIRE(steps == 3);
  REQUIRE(result.global_steps == 3);
  REQUIRE(result.epoch_results.empty());
}

TEST_CASE("LoRA training moves only adapters and the head", "[core][trainer]") {
  const TokenizedDataset train = ToyDataset(32, 1);
  Gpt2ForSequenceClassification model = ToyModel(FineTuningMethod::kLora);
  std::map<std::string, at::Tensor> before;
  for (const auto& item : model->named_parameters())
    before[item.key()] = item.value().detach().clone();
  TrainerOptions options = ToyOptions();
  options.epochs = 1;
  Trainer(model, options).Train(train, nullptr);
  for (const auto& item : model->named_parameters()) {
    const bool changed = !at::equal(before[item.key()], item.value());
    const bool trainable = item.value().requires_grad();
    INFO(item.key());
    if (!trainable) REQUIRE_FALSE(changed);
    if (item.key().find("lora_B") != std::string::npos || item.key() == "score.weight")
      REQUIRE(changed);
  }
}

TEST_CASE("One epoch of a tiny GPT-2 learns a Banking77 subset", "[core][trainer][banking77]") {
  const auto root = hpsearch::testing::SourceDir();
  Gpt2Tokenizer tokenizer = Gpt2Tokenizer::FromDirectory((root / "data/gpt2").string());
  formats::DataOptions data_options;
  data_options.label_column = "category";
  data_options.max_length = 64;
  data_options.split_seed = 11;
  ClassificationData data =
      LoadClassificationData({root / "data/banking77/train.csv", {}, {}}, data_options);
  auto encode = [&](std::string_view text) { return tokenizer.Encode(text); };
  // A fixed subset keeps the test a few seconds long: 2,400 training and 600 validation texts.
  std::vector<int64_t> train_rows, validation_rows;
  for (int64_t i = 0; i < 2400; ++i) train_rows.push_back(i * data.train.size() / 2400);
  for (int64_t i = 0; i < 600; ++i) validation_rows.push_back(i * data.validation.size() / 600);
  TokenizedDataset train =
      TokenizeDataset(formats::SelectExamples(data.train, train_rows), encode, data_options);
  TokenizedDataset validation = TokenizeDataset(
      formats::SelectExamples(data.validation, validation_rows), encode, data_options);

  Gpt2ForSequenceClassificationOptions model_options;
  model_options.config.n_layer = 2;
  model_options.config.n_embd = 64;
  model_options.config.n_head = 2;
  model_options.config.n_positions = 64;
  model_options.config.vocab_size = tokenizer.vocab_size();
  model_options.config.num_labels = 77;
  model_options.fine_tuning.method = FineTuningMethod::kFull;
  model_options.seed = 1;
  TrainerOptions options;
  options.learning_rate = 2e-3;
  options.batch_size = 8;
  options.warmup_steps = 30;
  options.epochs = 1;
  options.eval_batch_size = 100;
  options.seed = 1;
  at::globalContext().setFlushDenormal(true);
  TrainResult result =
      Trainer(Gpt2ForSequenceClassification(model_options), options).Train(train, &validation);

  std::vector<int64_t> counts(77, 0);
  for (const auto& example : validation.examples) ++counts[static_cast<size_t>(example.label)];
  const double largest_class_rate =
      static_cast<double>(*std::max_element(counts.begin(), counts.end())) /
      static_cast<double>(validation.size());
  const EvalResult& val = *result.epoch_results[0].validation;
  INFO("val_loss " << val.loss << " val_accuracy " << val.accuracy << " largest class "
                   << largest_class_rate);
  REQUIRE(val.loss < std::log(77.0) - 0.5);
  REQUIRE(val.accuracy >= 3 * largest_class_rate);
}

TEST_CASE("FlatAdamW steps exactly as LibTorch's AdamW, with two weight-decay groups",
          "[core][trainer][flat_adamw]") {
  at::Generator generator = at::detail::createCPUGenerator(11);
  std::vector<at::Tensor> init = {at::randn({7, 5}, generator), at::randn({13}, generator),
                                  at::randn({3, 4, 2}, generator)};
  auto params_from = [&]() {
    std::vector<at::Tensor> params;
    for (const auto& t : init) params.push_back(t.clone().requires_grad_(true));
    return params;
  };
  std::vector<at::Tensor> flat = params_from(), reference = params_from();
  auto groups = [](const std::vector<at::Tensor>& p) {
    std::vector<torch::optim::OptimizerParamGroup> g;
    g.emplace_back(std::vector<at::Tensor>{p[0], p[2]},
                   std::make_unique<torch::optim::AdamWOptions>(
                       torch::optim::AdamWOptions(1e-2).weight_decay(0.1)));
    g.emplace_back(std::vector<at::Tensor>{p[1]},
                   std::make_unique<torch::optim::AdamWOptions>(
                       torch::optim::AdamWOptions(1e-2).weight_decay(0)));
    return g;
  };
  FlatAdamW flat_optimizer(groups(flat), torch::optim::AdamWOptions(1e-2));
  torch::optim::AdamW reference_optimizer(groups(reference), torch::optim::AdamWOptions(1e-2));
  REQUIRE(flat_optimizer.numel() == 35 + 13 + 24);
  // The parameters now live in the flat buffer: same values, storage inside it.
  for (size_t i = 0; i < flat.size(); ++i) REQUIRE(at::equal(flat[i], init[i]));
  const auto* base = static_cast<const char*>(flat_optimizer.flat_params().data_ptr());
  const auto* p2 = static_cast<const char*>(flat[2].data_ptr());
  REQUIRE(p2 >= base);
  REQUIRE(p2 < base + flat_optimizer.numel() * 4);

  for (int step = 0; step < 6; ++step) {
    const at::Tensor target = at::randn({72}, generator);
    auto loss_of = [&](const std::vector<at::Tensor>& p) {
      return (at::cat({p[0].reshape(-1), p[1], p[2].reshape(-1)}).sin() * target).sum();
    };
    flat_optimizer.ZeroGrad();
    reference_optimizer.zero_grad();
    loss_of(flat).backward();
    loss_of(reference).backward();
    // Gradients were accumulated into the flat gradient buffer, in place (group order: p0, p2,
    // then p1 after 35 + 24 values).
    REQUIRE(flat[1].grad().data_ptr() ==
            static_cast<float*>(flat_optimizer.flat_grads().data_ptr()) + 59);
    const at::Tensor norm = flat_optimizer.ClipGradNorm(0.5);
    const double reference_norm = torch::nn::utils::clip_grad_norm_(reference, 0.5);
    REQUIRE(norm.item<double>() == Approx(reference_norm).epsilon(1e-6));
    for (size_t i = 0; i < flat.size(); ++i) {
      REQUIRE(at::allclose(flat[i].grad(), reference[i].grad(), 1e-6, 1e-7));
    }
    flat_optimizer.step();
    reference_optimizer.step();
    for (size_t i = 0; i < flat.size(); ++i) {
      CAPTURE(step, i, (flat[i] - reference[i]).abs().max().item<double>());
      REQUIRE(at::allclose(flat[i], reference[i], 1e-6, 1e-7));
    }
  }
  REQUIRE(flat_optimizer.step_count() == 6);
  REQUIRE_FALSE(at::allclose(flat[0], init[0]));  // it did move
}

TEST_CASE("FlatAdamW state saves and loads, and refuses another model's state",
          "[core][trainer][flat_adamw]") {
  at::Generator generator = at::detail::createCPUGenerator(12);
  at::Tensor a = at::randn({10}, generator).requires_grad_(true);
  FlatAdamW optimizer({torch::optim::OptimizerParamGroup({a})}, torch::optim::AdamWOptions(0.1));
  for (int step = 0; step < 3; ++step) {
    optimizer.ZeroGrad();
    (a * a).sum().backward();
    optimizer.step();
  }
  torch::serialize::OutputArchive out;
  optimizer.save(out);
  std::ostringstream bytes;
  out.save_to(bytes);

  at::Tensor b = at::randn({10}, generator).requires_grad_(true);
  FlatAdamW restored({torch::optim::OptimizerParamGroup({b})}, torch::optim::AdamWOptions(0.1));
  torch::serialize::InputArchive in;
  std::istringstream stream(bytes.str());
  in.load_from(stream);
  restored.load(in);
  REQUIRE(restored.step_count() == 3);
  REQUIRE(at::equal(restored.exp_avg(), optimizer.exp_avg()));
  REQUIRE(at::equal(restored.exp_avg_sq(), optimizer.exp_avg_sq()));

  at::Tensor c = at::randn({11}, generator).requires_grad_(true);
  FlatAdamW other({torch::optim::OptimizerParamGroup({c})}, torch::optim::AdamWOptions(0.1));
  torch::serialize::InputArchive in2;
  std::istringstream stream2(bytes.str());
  in2.load_from(stream2);
  REQUIRE_THROWS_AS(other.load(in2), Error);
  REQUIRE_THROWS_AS(
      FlatAdamW(
          {torch::optim::OptimizerParamGroup({at::ones({2}, at::kDouble).requires_grad_(true)})},
          torch::optim::AdamWOptions(0.1)),
      Error);
}

TEST_CASE("Progress comes every progress_interval_steps with the interval's mean loss",
          "[core][trainer]") {
  const TokenizedDataset train = ToyDataset(60, 1);  // 8 steps per epoch, the last one short
  std::vector<TrainingProgress> every_step, every_three;
  TrainerCallbacks callbacks;
  callbacks.on_progress = [&](const TrainingProgress& p) { every_step.push_back(p); };
  Trainer(ToyModel(), ToyOptions(), callbacks).Train(train, nullptr);
  TrainerOptions options = ToyOptions();
  options.progress_interval_steps = 3;
  callbacks.on_progress = [&](const TrainingProgress& p) { every_three.push_back(p); };
  Trainer(ToyModel(), options, callbacks).Train(train, nullptr);
  REQUIRE(every_step.size() == 16);
  // Steps 3, 6, 8 (epoch end), 11, 14, 16.
  std::vector<int64_t> steps;
  for (const auto& p : every_three) steps.push_back(p.step);
  REQUIRE(steps == std::vector<int64_t>{3, 6, 8, 11, 14, 16});
  // The same training (same seed), so each interval's loss is the mean of its step losses.
  REQUIRE(every_three[0].loss ==
          Approx((every_step[0].loss + every_step[1].loss + every_step[2].loss) / 3));
  REQUIRE(every_three[2].loss == Approx((every_step[6].loss + every_step[7].loss) / 2));
}

// The tiny model without dropout: static and dynamic padding draw different dropout masks (their
// shapes differ), so equality holds only without it.
Gpt2ForSequenceClassification NoDropoutModel(FineTuningMethod method) {
  Gpt2ForSequenceClassificationOptions options = testing::TinyOptions(method, /*seed=*/3);
  options.config.resid_pdrop = options.config.embd_pdrop = options.config.attn_pdrop = 0.0;
  return Gpt2ForSequenceClassification(options);
}

bool Close(const at::Tensor& a, const at::Tensor& b) {
  return a.sizes() == b.sizes() && at::allclose(a, b, /*rtol=*/1e-4, /*atol=*/1e-6);
}

TEST_CASE("Static shapes give dynamic padding's losses and gradients, short last batch included",
          "[core][trainer][static_shapes]") {
  const FineTuningMethod method = GENERATE(FineTuningMethod::kFull, FineTuningMethod::kLora);
  INFO("method " << static_cast<int>(method));
  Gpt2ForSequenceClassification model = NoDropoutModel(method);
  TokenizedDataset data = ToyDataset(21, 4);  // batches of 8, 8 and 5; texts of 2 to 12 tokens
  data.max_length = 16;                       // so that bucket 16 pads every batch wider
  BatchOptions batching;
  batching.batch_size = 8;
  batching.seed = 9;
  PaddingOptions padding;
  padding.length_buckets = {4, 8, 16};
  padding.rows = 8;
  // The loss and every trainable gradient of one batch.
  auto loss_and_gradients = [&](const TokenBatch& batch) {
    model->zero_grad();
    const at::Tensor loss = SequenceClassificationLoss(
        model->forward(batch.input_ids, batch.attention_mask, batch.last_token_index),
        batch.labels);
    loss.backward();
    std::vector<at::Tensor> out = {loss.detach()};
    for (const auto& p : model->parameters())
      if (p.requires_grad()) out.push_back(p.grad().clone());
    return out;
  };
  int64_t wider = 0, filled = 0;
  for (const std::vector<int64_t>& indices : PlanBatches(data, batching, 0)) {
    const TokenBatch dynamic = CollateBatch(data, indices);
    const TokenBatch fixed = CollateBatch(data, indices, padding);
    REQUIRE(fixed.input_ids.size(0) == 8);
    wider += fixed.input_ids.size(1) > dynamic.input_ids.size(1) ? 1 : 0;
    filled += fixed.input_ids.size(0) > dynamic.input_ids.size(0) ? 1 : 0;
    const std::vector<at::Tensor> expected = loss_and_gradients(dynamic);
    const std::vector<at::Tensor> actual = loss_and_gradients(fixed);
    REQUIRE(expected.size() == actual.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      INFO("batch of " << indices.size() << ", tensor " << i << ": "
                       << expected[i].norm().item<double>() << " vs "
                       << actual[i].norm().item<double>());
      REQUIRE(Close(expected[i], actual[i]));
    }
  }
  // The comparison covered both kinds of padding.
  REQUIRE(wider == 3);
  REQUIRE(filled == 1);
}

TEST_CASE("Training with static shapes follows dynamic padding's run",
          "[core][trainer][static_shapes]") {
  TokenizedDataset train = ToyDataset(60, 1);  // the last batch holds 4 texts
  train.max_length = 16;                       // room for bucket 16
  const TokenizedDataset validation = ToyDataset(16, 2);
  TrainerOptions options = ToyOptions();
  options.static_shapes = StaticShapes::kOff;
  Gpt2ForSequenceClassification dynamic_model = NoDropoutModel(FineTuningMethod::kFull);
  const TrainResult dynamic = Trainer(dynamic_model, options).Train(train, &validation);
  options.static_shapes = StaticShapes::kOn;
  options.length_buckets = {4, 8, 16};
  Gpt2ForSequenceClassification fixed_model = NoDropoutModel(FineTuningMethod::kFull);
  const TrainResult fixed = Trainer(fixed_model, options).Train(train, &validation);
  REQUIRE(fixed.global_steps == dynamic.global_steps);
  REQUIRE(fixed.samples_per_second > 0);
  REQUIRE(fixed.train_loss == Approx(dynamic.train_loss).epsilon(1e-4));
  for (size_t e = 0; e < dynamic.epoch_results.size(); ++e) {
    REQUIRE(fixed.epoch_results[e].train_loss ==
            Approx(dynamic.epoch_results[e].train_loss).epsilon(1e-4));
    REQUIRE(fixed.epoch_results[e].validation->loss ==
            Approx(dynamic.epoch_results[e].validation->loss).epsilon(1e-4));
  }
  // Padding counts in the FLOPs, as Hugging Face counts input_ids.numel().
  REQUIRE(fixed.total_flos > dynamic.total_flos);
  const auto dynamic_parameters = dynamic_model->named_parameters();
  for (const auto& item : fixed_model->named_parameters()) {
    INFO(item.key());
    REQUIRE(at::allclose(item.value(), dynamic_parameters[item.key()], 1e-4, 1e-5));
  }
  // kAuto is off on the CPU: bit-identical to kOff.
  options.static_shapes = StaticShapes::kAuto;
  const TrainResult automatic =
      Trainer(NoDropoutModel(FineTuningMethod::kFull), options).Train(train, &validation);
  REQUIRE(automatic.train_loss == dynamic.train_loss);
  REQUIRE(automatic.total_flos == dynamic.total_flos);
}

}  // namespace
}  // namespace hpsearch::core
