// hpsearch-core train --config FILE: one training run without the service.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/run.h"
#include "core/tool/commands.h"
#include "core/tool/tool_util.h"

namespace hpsearch::core::tool {
namespace {

constexpr char kTrainUsage[] =
    "usage: hpsearch-core train --config FILE [--threads N] [--device auto|cpu|cuda|cuda:N]\n"
    "  Trains one run described by FILE, a TrialSpec in JSON (as `hpsearch trials --format json` "
    "prints\n"
    "  one; snake_case or lowerCamelCase keys). Prints JSON lines on stdout, the protocol of "
    "command\n"
    "  trials: {\"type\":\"epoch\",...} after every epoch, then {\"type\":\"train_summary\",...} "
    "and, with\n"
    "  evaluate_test, {\"type\":\"test\",...}. Progress goes to stderr. --device: where to train\n"
    "  (auto: the first GPU when this build has its CUDA kernels, else the CPU).\n";

void PrintLine(const nlohmann::json& line) { std::cout << line.dump() << std::endl; }

}  // namespace

int RunTrain(int argc, char** argv) {
  std::map<std::string, std::string> flags;
  std::string error;
  if (!ParseFlags(argc, argv, {"config", "threads", "device"}, &flags, &error)) {
    std::fprintf(stderr, "hpsearch-core train: %s\n%s", error.c_str(), kTrainUsage);
    return 2;
  }
  if (flags.count("help")) return std::fputs(kTrainUsage, stdout), 0;
  if (!flags.count("config")) {
    std::fprintf(stderr, "hpsearch-core train: --config is required\n%s", kTrainUsage);
    return 2;
  }
  RunOptions options;
  int64_t threads = 0;
  if (!IntFlag(flags, "threads", 1, 4096, 0, &threads, &error)) {
    std::fprintf(stderr, "hpsearch-core train: %s\n", error.c_str());
    return 2;
  }
  options.threads = static_cast<int>(threads);
  if (flags.count("device")) options.device = flags["device"];
  RunConfig config;
  try {
    config = LoadRunConfig(flags["config"]);
  } catch (const Error& e) {
    std::fprintf(stderr, "hpsearch-core train: %s\n", e.what());
    return 2;
  }
  RunCallbacks callbacks;
  callbacks.on_warning = [](const std::string& warning) {
    std::fprintf(stderr, "warning: %s\n", warning.c_str());
  };
  auto last_progress = std::chrono::steady_clock::now();
  callbacks.on_progress = [&last_progress](const TrainingProgress& p) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_progress < std::chrono::seconds(2) && p.step != p.total_steps) return;
    last_progress = now;
    std::fprintf(stderr, "epoch %lld step %lld/%lld loss %.4f %.1f samples/s ETA %.0fs\n",
                 static_cast<long long>(p.epoch), static_cast<long long>(p.step),
                 static_cast<long long>(p.total_steps), p.loss, p.samples_per_second,
                 p.eta_seconds);
  };
  callbacks.on_epoch = [](const EpochResult& e) {
    nlohmann::json line = {{"type", "epoch"},
                           {"epoch", e.epoch},
                           {"train_loss", e.train_loss},
                           {"step", e.global_step},
                           {"samples_per_second", e.samples_per_second},
                           {"wall_time_seconds", e.wall_time_seconds}};
    if (e.validation) {
      line["val_loss"] = e.validation->loss;
      line["val_accuracy"] = e.validation->accuracy;
      line["val_f1"] = e.validation->f1_weighted;
      line["val_f1_macro"] = e.validation->f1_macro;
    }
    PrintLine(line);
    return true;
  };
  try {
    RunOutcome outcome = RunTraining(config, options, callbacks);
    const TrainResult& t = outcome.train;
    PrintLine({{"type", "train_summary"},
               {"global_steps", t.global_steps},
               {"train_loss", t.train_loss},
               {"runtime_seconds", t.runtime_seconds},
               {"samples_per_second", t.samples_per_second},
               {"steps_per_second", t.steps_per_second},
               {"total_flos", t.total_flos},
               {"epochs", t.epochs}});
    if (outcome.test) {
      const EvalResult& r = *outcome.test;
      PrintLine({{"type", "test"},
                 {"test_loss", r.loss},
                 {"test_accuracy", r.accuracy},
                 {"test_f1", r.f1_weighted},
                 {"test_f1_macro", r.f1_macro},
                 {"runtime_seconds", r.runtime_seconds},
                 {"samples_per_second", r.samples_per_second},
                 {"steps_per_second", r.steps_per_second}});
    }
    if (!outcome.model_dir.empty())
      std::fprintf(stderr, "model saved in %s\n", outcome.model_dir.c_str());
  } catch (const Error& e) {
    std::fprintf(stderr, "hpsearch-core train: %s\n", e.what());
    return ExitCodeFor(e.code());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hpsearch-core train: internal error: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace hpsearch::core::tool
