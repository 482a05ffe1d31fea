// model_step_bench: milliseconds per training step (forward + backward + AdamW) of the demo-sized
// GPT-2 classifier — 2 layers x 128 wide, 2 heads, the full 50,257-token vocabulary, 77 labels,
// batch 32, 16 tokens — with full fine-tuning and with LoRA (r 8 on c_attn, PEFT's GPT-2 default;
// and all-linear), with and without gradient checkpointing, on 1 and 2 intra-op threads. Prints a
// table.
//
// OpenBLAS runs its own thread pool besides LibTorch's; run with OPENBLAS_NUM_THREADS=1 so the
// thread column counts all threads (the table header shows the value seen).
//
// OpenBLAS picks its kernels from the CPU model; on these VMs ("Intel(R) Xeon(R) Processor",
// AVX-512 present) it falls back to the SSE3 "Prescott" kernels and a step takes about twice as
// long. OPENBLAS_CORETYPE=SkylakeX (or Haswell) selects the right ones; the header shows the value
// seen.
//
// LibTorch's OpenMP workers spin while waiting; on a machine whose cores are busy with other work
// that spinning dominates the 2-thread rows, so compare thread counts only on an otherwise idle
// machine (or with OMP_WAIT_POLICY=PASSIVE).
//
// Usage: model_step_bench [--steps N] [--threads T]
//   --steps N    timed steps per row after 3 warm-up steps (default 20)
//   --threads T  run only the rows with T intra-op threads (default: 1, then 2)
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/gpt2_sequence_classifier.h"
#include "core/peft_state.h"

namespace {

using hpsearch::core::FineTuningMethod;

struct Row {
  const char* label;
  FineTuningMethod method;
  std::vector<std::string> targets;
  bool checkpointing;
};

struct Timing {
  double mean_ms = 0;
  double min_ms = 0;
  // Means of the three phases of a step.
  double forward_ms = 0;
  double backward_ms = 0;
  double optimizer_ms = 0;
  int64_t trainable = 0;
  double final_loss = 0;
};

Timing Measure(const Row& row, int threads, int steps) {
  at::set_num_threads(threads);
  hpsearch::core::Gpt2ForSequenceClassificationOptions options;
  options.config.n_layer = 2;
  options.config.n_embd = 128;
  options.config.n_head = 2;
  options.config.n_positions = 1024;
  options.config.vocab_size = 50257;
  options.config.num_labels = 77;
  options.fine_tuning.method = row.method;
  options.fine_tuning.target_modules = row.targets;
  options.seed = 1;
  options.gradient_checkpointing = row.checkpointing;
  hpsearch::core::Gpt2ForSequenceClassification model(options);
  model->train();

  constexpr int64_t kBatch = 32;
  constexpr int64_t kSeq = 16;
  at::Generator generator = at::detail::createCPUGenerator(7);
  const at::Tensor ids = at::randint(0, 50256, {kBatch, kSeq}, generator, at::kLong);
  at::Tensor mask = at::ones({kBatch, kSeq}, at::kLong);
  // Ragged lengths 9..16, right-padded, as a tokenised batch would be.
  for (int64_t i = 0; i < kBatch; ++i) {
    mask.index_put_({i, at::indexing::Slice(9 + i % 8, kSeq)}, 0);
  }
  const at::Tensor last = hpsearch::core::LastTokenIndexFromAttentionMask(mask);
  const at::Tensor labels = at::randint(0, 77, {kBatch}, generator, at::kLong);

  const std::vector<at::Tensor> parameters = hpsearch::core::TrainableParameters(*model);
  torch::optim::AdamW optimizer(parameters, torch::optim::AdamWOptions(1e-4));
  Timing timing;
  for (const at::Tensor& p : parameters) timing.trainable += p.numel();
  std::vector<double> times;
  using Clock = std::chrono::steady_clock;
  auto ms_between = [](Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
  };
  for (int step = 0; step < steps + 3; ++step) {
    const Clock::time_point start = Clock::now();
    optimizer.zero_grad();
    const at::Tensor loss =
        hpsearch::core::SequenceClassificationLoss(model(ids, mask, last), labels);
    const Clock::time_point forward_done = Clock::now();
    loss.backward();
    const Clock::time_point backward_done = Clock::now();
    optimizer.step();
    const Clock::time_point end = Clock::now();
    timing.final_loss = loss.item<double>();
    if (step < 3) continue;
    times.push_back(ms_between(start, end));
    timing.forward_ms += ms_between(start, forward_done) / steps;
    timing.backward_ms += ms_between(forward_done, backward_done) / steps;
    timing.optimizer_ms += ms_between(backward_done, end) / steps;
  }
  double sum = 0;
  for (double t : times) sum += t;
  timing.mean_ms = sum / static_cast<double>(times.size());
  timing.min_ms = *std::min_element(times.begin(), times.end());
  return timing;
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 20;
  std::vector<int> thread_counts = {1, 2};
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--steps") == 0 && i + 1 < argc) {
      steps = std::max(1, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
      thread_counts = {std::max(1, std::atoi(argv[++i]))};
    } else {
      std::fprintf(stderr, "usage: %s [--steps N] [--threads T]\n", argv[0]);
      return 2;
    }
  }
  at::globalContext().setFlushDenormal(true);
  const char* blas_threads = std::getenv("OPENBLAS_NUM_THREADS");
  const char* wait_policy = std::getenv("OMP_WAIT_POLICY");
  const char* core_type = std::getenv("OPENBLAS_CORETYPE");
  std::printf(
      "GPT-2 classifier training step: 2 layers x 128 wide, 2 heads, vocab 50257, 77 labels,\n"
      "batch 32 x 16 tokens (right-padded to lengths 9..16), AdamW lr 1e-4, %d timed steps after 3 "
      "warm-up\nOPENBLAS_NUM_THREADS=%s OPENBLAS_CORETYPE=%s OMP_WAIT_POLICY=%s\n\n",
      steps, blas_threads ? blas_threads : "(unset)", core_type ? core_type : "(unset)",
      wait_policy ? wait_policy : "(unset)");
  const std::vector<Row> rows = {
      {"full", FineTuningMethod::kFull, {"c_attn"}, false},
      {"full + checkpointing", FineTuningMethod::kFull, {"c_attn"}, true},
      {"lora r8 c_attn", FineTuningMethod::kLora, {"c_attn"}, false},
      {"lora r8 all-linear", FineTuningMethod::kLora, {"all-linear"}, false},
      {"lora r8 all-linear + ckpt", FineTuningMethod::kLora, {"all-linear"}, true},
  };
  std::printf("| %-26s | %7s | %12s | %11s | %7s | %7s | %7s | %9s | %9s |\n", "method", "threads",
              "ms/step mean", "ms/step min", "fwd", "bwd", "adamw", "trainable", "last loss");
  std::printf("|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n", std::string(28, '-').c_str(),
              std::string(9, '-').c_str(), std::string(14, '-').c_str(),
              std::string(13, '-').c_str(), std::string(9, '-').c_str(),
              std::string(9, '-').c_str(), std::string(9, '-').c_str(),
              std::string(11, '-').c_str(), std::string(11, '-').c_str());
  for (int threads : thread_counts) {
    for (const Row& row : rows) {
      const Timing timing = Measure(row, threads, steps);
      std::printf("| %-26s | %7d | %12.1f | %11.1f | %7.1f | %7.1f | %7.1f | %9lld | %9.4f |\n",
                  row.label, threads, timing.mean_ms, timing.min_ms, timing.forward_ms,
                  timing.backward_ms, timing.optimizer_ms, static_cast<long long>(timing.trainable),
                  timing.final_loss);
      std::fflush(stdout);
    }
  }
  return 0;
}
