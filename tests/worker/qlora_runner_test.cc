// The built-in qlora runner over the real training core (a tiny random-init GPT-2 on Banking77
// texts): it stops between steps on cancel, stops at the epoch end on prune, classifies failures
// (out of memory is retryable), and the same runner goes on to train the next trial after an
// out-of-memory failure. The reporter here records what the runner says; the coordinator's side
// of the same conversation is tested through real processes in tests/integration.
#include "worker/qlora_runner.h"

#include <sys/resource.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <new>
#include <stdexcept>
#include <system_error>
#include <vector>

#include "core/device_stats.h"
#include "core/error.h"
#include "testing/recording_reporter.h"
#include "testing/testing.h"
#include "worker/progress_log.h"
#include "worker/training_failure.h"

namespace hpsearch::worker {
namespace {

using testing::RecordingReporter;

// 15 Banking77 texts of three intents: after the 20% split, 12 train (6 steps of 2 per epoch) and 3
// validation texts.
v1::TrialSpec TinyTrial(const testing::TempDir& dir) {
  std::ofstream train(dir / "train.csv", std::ios::binary);
  train << "text,category\n"
           "I still have not received my new card,card_arrival\n"
           "When will my card arrive?,card_arrival\n"
           "How long does card delivery take?,card_arrival\n"
           "my card has not come yet,card_arrival\n"
           "Where is the card you sent me?,card_arrival\n"
           "Is there a fee for topping up?,top_up_fee\n"
           "How much does a top up cost,top_up_fee\n"
           "Why was I charged for topping up,top_up_fee\n"
           "top-up fees?,top_up_fee\n"
           "what does it cost to add money,top_up_fee\n"
           "I want to change my PIN,change_pin\n"
           "How do I reset my pin code?,change_pin\n"
           "Can I pick a new PIN at an ATM?,change_pin\n"
           "change pin please,change_pin\n"
           "I forgot my PIN,change_pin\n";
  train.close();
  std::ofstream(dir / "test.csv", std::ios::binary)
      << "text,category\nmy card is late,card_arrival\nnew pin,change_pin\n";
  v1::TrialSpec trial;
  trial.set_study_name("unit");
  trial.set_trial_number(0);
  trial.set_kind(v1::TRIAL_KIND_SEARCH);
  trial.set_seed(5);
  auto* arch = trial.mutable_model()->mutable_random_init();
  arch->set_n_layer(1);
  arch->set_n_embd(32);
  arch->set_n_head(2);
  arch->set_n_positions(32);
  trial.mutable_model()->set_tokenizer((testing::SourceDir() / "data/gpt2").string());
  trial.mutable_data()->set_train_file((dir / "train.csv").string());
  trial.mutable_data()->set_label_column("category");
  trial.mutable_data()->set_max_length(32);
  trial.mutable_data()->set_eval_batch_size(4);
  trial.mutable_training()->set_epochs(2);
  trial.mutable_training()->set_batch_size(2);
  trial.mutable_training()->set_learning_rate(1e-3);
  trial.mutable_fine_tune()->set_method(v1::FINE_TUNE_METHOD_QLORA);
  trial.mutable_fine_tune()->mutable_lora()->set_r(4);
  trial.mutable_runner()->set_type(v1::RUNNER_TYPE_QLORA);
  return trial;
}

QloraRunnerOptions EveryStep() {
  QloraRunnerOptions options;
  options.threads = 1;
  options.progress_interval_seconds = 0;
  return options;
}

TEST_CASE("Training failures are classified: out of memory and device errors are retryable",
          "[worker][qlora]") {
  struct Case {
    std::exception_ptr error;
    bool retryable;
    bool restart;
    const char* says;
  };
  // The message LibTorch's CPU allocator throws (c10::Error), with its backtrace.
  const std::string cpu_oom =
      "[enforce fail at alloc_cpu.cpp:83] err == 0. DefaultCPUAllocator: can't allocate memory: "
      "you tried to allocate 256000000000 bytes. Error code 12 (Cannot allocate memory)\n"
      "Exception raised from alloc_cpu at ../c10/core/impl/alloc_cpu.cpp:83 (most recent call "
      "first):\nframe #0: c10::ThrowEnforceNotMet";
  const std::vector<Case> cases = {
      {std::make_exception_ptr(std::bad_alloc()), true, false, "out of memory (retryable)"},
      {std::make_exception_ptr(std::runtime_error(cpu_oom)), true, false,
       "out of memory (retryable): [enforce fail at alloc_cpu.cpp:83]"},
      {std::make_exception_ptr(std::runtime_error(
           "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.15 GiB total capacity)")),
       true, false, "out of memory (retryable): CUDA out of memory. Tried to allocate 2.00 GiB"},
      {std::make_exception_ptr(
           std::runtime_error("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate")),
       true, false, "out of memory"},
      {std::make_exception_ptr(std::runtime_error("CUDA error: an illegal memory access was "
                                                  "encountered")),
       true, true, "device error (retryable; the worker restarts): CUDA error: an illegal"},
      {std::make_exception_ptr(std::runtime_error("NCCL error: unhandled system error")), true,
       false, "device error (retryable)"},
      {std::make_exception_ptr(
           core::Error(core::ErrorCode::kInvalidArgument, "data.max_length: 0 is not positive")),
       false, false, "training core (invalid argument): data.max_length: 0 is not positive"},
      {std::make_exception_ptr(core::Error(core::ErrorCode::kIo, "train.csv: read failed")), true,
       false, "training core (i/o error): train.csv: read failed"},
      {std::make_exception_ptr(
           core::Error(core::ErrorCode::kInternal, "CUDA out of memory while loading weights")),
       true, false, "out of memory (retryable): training core (internal)"},
      {std::make_exception_ptr(
           std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again))),
       true, false, "system error"},
      {std::make_exception_ptr(std::runtime_error("mat1 and mat2 shapes cannot be multiplied")),
       false, false, "training failed (not retried"},
      {std::make_exception_ptr(42), false, false, "not a std::exception"},
  };
  for (const Case& c : cases) {
    TrainingFailure f = ClassifyTrainingFailure(c.error);
    INFO(f.error);
    CHECK(f.retryable == c.retryable);
    CHECK(f.restart_worker == c.restart);
    CHECK(f.error.find(c.says) != std::string::npos);
    CHECK(f.error.find("frame #0") == std::string::npos);  // the backtrace is cut off
  }
}

TEST_CASE("Progress lines name the epoch, step, loss, rate and ETA, at most once per interval",
          "[worker][qlora]") {
  ProgressSnapshot p;
  p.epoch = 1;
  p.epochs = 4;
  p.step = 120;
  p.total_steps = 4004;
  p.loss = 2.34561;
  p.samples_per_second = 41.23;
  p.eta_seconds = 1510;
  CHECK(FormatProgressLine(p) ==
        "epoch 1/4 step 120/4004 (2%) loss 2.3456 41.2 samples/s ETA 25m10s");
  CHECK(FormatDuration(42) == "42s");
  CHECK(FormatDuration(3725) == "1h02m");
  CHECK(FormatDuration(-1) == "?");

  auto now = std::chrono::steady_clock::time_point{};
  ProgressThrottle throttle(10, [&now] { return now; });
  CHECK(throttle.ShouldLog());  // the first step shows the trial started
  now += std::chrono::seconds(9);
  CHECK_FALSE(throttle.ShouldLog());
  now += std::chrono::seconds(1);
  CHECK(throttle.ShouldLog());
  CHECK_FALSE(throttle.ShouldLog());
}

TEST_CASE("The worker's device reaches the core as given", "[worker][qlora][devices]") {
  CHECK(QloraRunnerCanRunOn("cpu"));
  CHECK(QloraRunnerCanRunOn("cuda:1") == core::BuiltWithTorchCuda());
  if (core::BuiltWithTorchCuda())
    testing::Skip("a CUDA build: the GPU path is scripts/gpu-check.sh's");
  // Without CUDA the core itself refuses cuda:1, naming it: the string reached core::RunOptions
  // (the core's "auto" would have trained on the CPU).
  testing::TempDir dir;
  QloraRunnerOptions options = EveryStep();
  options.device = "cuda:1";
  RecordingReporter reporter;
  RunOutcome outcome = QloraRunner(options).Run(TinyTrial(dir), &reporter);
  INFO(outcome.error);
  CHECK(outcome.kind == RunOutcome::Kind::kFailed);
  CHECK(outcome.error.find("training core (unsupported): device \"cuda:1\"") != std::string::npos);
  CHECK(reporter.epochs.empty());
}

TEST_CASE("A cancel stops the qlora runner between steps, before the epoch ends",
          "[worker][qlora]") {
  testing::TempDir dir;
  v1::TrialSpec trial = TinyTrial(dir);
  RecordingReporter reporter;
  reporter.cancel_after_steps = 2;
  QloraRunner runner(EveryStep());
  RunOutcome outcome = runner.Run(trial, &reporter);
  INFO(outcome.error);
  CHECK(outcome.kind == RunOutcome::Kind::kStopped);
  CHECK(outcome.stop_reason == StopReason::kCancel);
  CHECK(reporter.steps_seen == 2);  // step 3 of 6 never ran
  CHECK(reporter.epochs.empty());
  CHECK(reporter.trains.empty());
  REQUIRE(!reporter.progress.empty());
  CHECK(reporter.progress[0].rfind("epoch 1/2 step 1/12 (8%) loss ", 0) == 0);
}

TEST_CASE("A prune stops the qlora runner at the epoch end and keeps the data sizes",
          "[worker][qlora]") {
  testing::TempDir dir;
  v1::TrialSpec trial = TinyTrial(dir);
  RecordingReporter reporter;
  reporter.prune_from_epoch = 1;
  QloraRunnerOptions options = EveryStep();
  options.progress_interval_seconds = 3600;  // first step only
  QloraRunner runner(options);
  RunOutcome outcome = runner.Run(trial, &reporter);
  INFO(outcome.error);
  CHECK(outcome.kind == RunOutcome::Kind::kPruned);
  REQUIRE(reporter.epochs.size() == 1);
  CHECK(reporter.epochs[0].has_val_accuracy());
  CHECK(reporter.trains.empty());
  CHECK(outcome.result.extra().at("train_examples") == 12);
  CHECK(outcome.result.extra().at("validation_examples") == 3);
  CHECK(outcome.result.extra().at("num_labels") == 3);
  // One step line (the first), the epoch line, the prune line.
  REQUIRE(reporter.progress.size() == 3);
  CHECK(reporter.progress[1].rfind("epoch 1/2 done: train loss ", 0) == 0);
  CHECK(reporter.progress[1].find("accuracy") != std::string::npos);
  CHECK(reporter.progress[2] == "pruned by the coordinator after epoch 1");
}

TEST_CASE("After an out-of-memory failure the same runner trains the next trial",
          "[worker][qlora]") {
  // Cap this test process's address space a few GiB above what it uses, so the oversized model
  // below fails to allocate whatever the machine's overcommit policy is (one test case per
  // process under ctest, so the cap ends with it).
  rlimit limit{};
  REQUIRE(getrlimit(RLIMIT_AS, &limit) == 0);
  std::ifstream status("/proc/self/status");
  std::string line;
  long long vm_kb = 0;
  while (std::getline(status, line)) {
    if (line.rfind("VmSize:", 0) == 0) vm_kb = std::stoll(line.substr(7));
  }
  REQUIRE(vm_kb > 0);
  limit.rlim_cur = static_cast<rlim_t>(vm_kb) * 1024 + (6ULL << 30);
  REQUIRE(setrlimit(RLIMIT_AS, &limit) == 0);

  testing::TempDir dir;
  QloraRunner runner(EveryStep());
  v1::TrialSpec huge = TinyTrial(dir);
  // 16M x 1024 float embeddings: 64 GB, within core/gpt2_config.h's shape limits.
  huge.mutable_model()->mutable_random_init()->set_vocab_size(16000000);
  huge.mutable_model()->mutable_random_init()->set_n_embd(1024);
  RecordingReporter oom_reporter;
  RunOutcome oom = runner.Run(huge, &oom_reporter);
  INFO(oom.error);
  CHECK(oom.kind == RunOutcome::Kind::kFailed);
  CHECK(oom.retryable);
  CHECK_FALSE(oom.restart_worker);
  CHECK(oom.error.rfind("out of memory (retryable): ", 0) == 0);
  CHECK(oom_reporter.epochs.empty());

  v1::TrialSpec next = TinyTrial(dir);
  next.set_kind(v1::TRIAL_KIND_FINAL);
  next.set_evaluate_test(true);
  next.mutable_data()->set_test_file((dir / "test.csv").string());
  RecordingReporter reporter;
  RunOutcome outcome = runner.Run(next, &reporter);
  INFO(outcome.error);
  CHECK(outcome.kind == RunOutcome::Kind::kComplete);
  CHECK(reporter.epochs.size() == 2);
  REQUIRE(reporter.trains.size() == 1);
  CHECK(reporter.trains[0].global_steps() == 12);
  REQUIRE(reporter.tests.size() == 1);
  CHECK(outcome.result.extra().at("test_examples") == 2);
}

// A reporter whose "coordinator" stores one model: FetchModel copies `stored` into the folder.
class StoredModelReporter : public RecordingReporter {
 public:
  absl::Status FetchModel(int trial_number, const std::string& dir) override {
    fetched.push_back(trial_number);
    if (stored.empty())
      return absl::NotFoundError("trial 0 of study 'unit' has no stored artifact");
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    std::filesystem::copy(stored, dir, std::filesystem::copy_options::recursive);
    return absl::OkStatus();
  }
  std::string stored;
  std::vector<int> fetched;
};

TEST_CASE(
    "A reuse final trial evaluates the fetched model without training: the test figures of "
    "the run that trained it",
    "[worker][qlora][final_stage]") {
  testing::TempDir dir;
  QloraRunner runner(EveryStep());
  // The run that trains the model and tests it, as a retrain would.
  v1::TrialSpec trained = TinyTrial(dir);
  trained.set_kind(v1::TRIAL_KIND_FINAL);
  trained.set_retrain_on(v1::RETRAIN_ON_TRAIN);
  trained.set_evaluate_test(true);
  trained.mutable_data()->set_test_file((dir / "test.csv").string());
  trained.set_artifact_dir((dir / "trained").string());
  RecordingReporter train_reporter;
  RunOutcome first = runner.Run(trained, &train_reporter);
  INFO(first.error);
  REQUIRE(first.kind == RunOutcome::Kind::kComplete);
  REQUIRE(first.result.has_test());
  REQUIRE_FALSE(first.artifact_dir.empty());

  v1::TrialSpec reuse = trained;
  reuse.set_trial_number(3);
  reuse.set_source_trial_number(0);
  reuse.set_retrain_on(v1::RETRAIN_ON_REUSE);
  reuse.set_artifact_dir((dir / "final").string());
  StoredModelReporter reporter;
  reporter.stored = first.artifact_dir;
  RunOutcome outcome = runner.Run(reuse, &reporter);
  INFO(outcome.error);
  REQUIRE(outcome.kind == RunOutcome::Kind::kComplete);
  CHECK(reporter.fetched == std::vector<int>{0});
  CHECK(reporter.epochs.empty());
  CHECK(reporter.trains.empty());
  CHECK_FALSE(outcome.result.has_train());
  REQUIRE(reporter.tests.size() == 1);
  const v1::TestMetrics& a = first.result.test();
  const v1::TestMetrics& b = outcome.result.test();
  // The same model, read back from its files, scores exactly what the run measured in memory.
  CHECK(b.test_loss() == a.test_loss());
  CHECK(b.test_accuracy() == a.test_accuracy());
  CHECK(b.test_f1() == a.test_f1());
  CHECK(b.test_f1_macro() == a.test_f1_macro());
  CHECK(outcome.result.extra().at("test_examples") == 2);
  // The evaluated model is the final trial's artifact, its metrics.json saying whose it is.
  REQUIRE(outcome.artifact_dir == (dir / "final" / "model").string());
  std::ifstream metrics(std::filesystem::path(outcome.artifact_dir) / "metrics.json");
  const std::string text((std::istreambuf_iterator<char>(metrics)), {});
  CHECK(text.find("\"reused_trial_number\": 0") != std::string::npos);
  CHECK(std::filesystem::exists(std::filesystem::path(outcome.artifact_dir) /
                                "adapter_model.safetensors"));

  SECTION("a model the coordinator does not have fails the attempt, naming the trial") {
    StoredModelReporter missing;
    RunOutcome failed = runner.Run(reuse, &missing);
    CHECK(failed.kind == RunOutcome::Kind::kFailed);
    CHECK_FALSE(failed.retryable);
    CHECK(failed.error.rfind("cannot fetch trial 0's stored model to reuse: ", 0) == 0);
  }
}

}  // namespace
}  // namespace hpsearch::worker
