#include "worker/qlora_runner.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/device_stats.h"
#include "core/run.h"
#include "google/protobuf/util/json_util.h"
#include "worker/coordinator_client.h"
#include "worker/progress_log.h"
#include "worker/training_failure.h"

namespace hpsearch::worker {
namespace {

v1::EpochMetrics ToEpochMetrics(const core::EpochResult& e) {
  v1::EpochMetrics m;
  m.set_epoch(static_cast<int32_t>(e.epoch));
  m.set_train_loss(e.train_loss);
  if (e.validation) {
    m.set_val_loss(e.validation->loss);
    m.set_val_accuracy(e.validation->accuracy);
    m.set_val_f1(e.validation->f1_weighted);
    m.set_val_f1_macro(e.validation->f1_macro);
  }
  m.set_step(e.global_step);
  m.set_samples_per_second(e.samples_per_second);
  m.set_wall_time_seconds(e.wall_time_seconds);
  return m;
}

v1::TrainSummary ToTrainSummary(const core::TrainResult& t) {
  v1::TrainSummary s;
  s.set_global_steps(t.global_steps);
  s.set_train_loss(t.train_loss);
  s.set_runtime_seconds(t.runtime_seconds);
  s.set_samples_per_second(t.samples_per_second);
  s.set_steps_per_second(t.steps_per_second);
  s.set_total_flos(t.total_flos);
  s.set_epochs(t.epochs);
  return s;
}

v1::TestMetrics ToTestMetrics(const core::EvalResult& r) {
  v1::TestMetrics m;
  m.set_test_loss(r.loss);
  m.set_test_accuracy(r.accuracy);
  m.set_test_f1(r.f1_weighted);
  m.set_test_f1_macro(r.f1_macro);
  m.set_runtime_seconds(r.runtime_seconds);
  m.set_samples_per_second(r.samples_per_second);
  m.set_steps_per_second(r.steps_per_second);
  return m;
}

nlohmann::json ProtoJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions print;
  print.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(message, &json, print).ok()) return {};
  return nlohmann::json::parse(json);
}

// metrics.json beside the saved model: what the trial was and what it measured, so an uploaded
// artifact describes itself.
void WriteMetricsFile(const std::string& dir, const v1::TrialSpec& trial,
                      const std::vector<v1::EpochMetrics>& epochs, const v1::TrialResult& result) {
  nlohmann::json j = {{"study_id", trial.study_id()},
                      {"study_name", trial.study_name()},
                      {"trial_number", trial.trial_number()},
                      {"kind", trial.kind() == v1::TRIAL_KIND_FINAL ? "final" : "search"},
                      {"attempt", trial.attempt()},
                      {"seed", trial.seed()},
                      {"params", nlohmann::json::array()},
                      {"epochs", nlohmann::json::array()},
                      {"result", ProtoJson(result)}};
  if (trial.kind() == v1::TRIAL_KIND_FINAL && trial.retrain_on() == v1::RETRAIN_ON_REUSE) {
    j["reused_trial_number"] = trial.source_trial_number();  // its model, not retrained
  }
  for (const v1::ParamAssignment& param : trial.params()) j["params"].push_back(ProtoJson(param));
  for (const v1::EpochMetrics& epoch : epochs) j["epochs"].push_back(ProtoJson(epoch));
  std::ofstream(std::filesystem::path(dir) / "metrics.json") << j.dump(2) << "\n";
}

// A failed attempt from whatever the core or LibTorch threw, classified once
// (worker/training_failure.h).
RunOutcome FailedOutcome(std::exception_ptr error) {
  TrainingFailure failure = ClassifyTrainingFailure(error);
  RunOutcome outcome;
  outcome.kind = RunOutcome::Kind::kFailed;
  outcome.retryable = failure.retryable;
  outcome.restart_worker = failure.restart_worker;
  outcome.error = failure.error;
  return outcome;
}

}  // namespace

absl::StatusOr<std::string> TrialSpecToRunConfigJson(const v1::TrialSpec& trial) {
  std::string json;
  google::protobuf::util::JsonPrintOptions print;
  print.preserve_proto_field_names = true;
  auto status = google::protobuf::util::MessageToJsonString(trial, &json, print);
  if (!status.ok())
    return absl::InternalError(absl::StrCat("cannot write the trial as JSON: ", status.ToString()));
  return json;
}

bool QloraRunnerCanRunOn(const std::string& device) {
  return device == "cpu" || core::BuiltWithTorchCuda();
}

RunOutcome QloraRunner::Reuse(const v1::TrialSpec& trial, TrialReporter* reporter) {
  RunOutcome outcome;
  absl::StatusOr<std::string> json = TrialSpecToRunConfigJson(trial);
  if (!json.ok()) {
    outcome.error = std::string(json.status().message());
    return outcome;
  }
  const int source = trial.source_trial_number();
  const std::string model_dir = (std::filesystem::path(trial.artifact_dir()) / "model").string();
  reporter->Progress(
      absl::StrCat("reusing trial ", source, "'s stored model: fetching it from the coordinator"));
  if (absl::Status status = reporter->FetchModel(source, model_dir); !status.ok()) {
    outcome.kind = RunOutcome::Kind::kFailed;
    outcome.retryable = IsTransient(status);
    outcome.error =
        absl::StrCat("cannot fetch trial ", source, "'s stored model to reuse: ", status.message());
    return outcome;
  }
  if (reporter->stop_reason() != StopReason::kNone) {
    outcome.kind = RunOutcome::Kind::kStopped;
    outcome.stop_reason = reporter->stop_reason();
    return outcome;
  }
  try {
    core::RunConfig config = core::RunConfigFromJson(nlohmann::json::parse(*json));
    core::RunOptions run_options;
    run_options.threads = options_.threads;
    run_options.device = options_.device;
    core::RunCallbacks callbacks;
    callbacks.on_warning = [reporter](const std::string& warning) {
      reporter->Progress("warning: " + warning);
    };
    core::RunOutcome run = core::RunEvaluation(config, model_dir, run_options, callbacks);
    if (reporter->stop_reason() != StopReason::kNone) {
      outcome.kind = RunOutcome::Kind::kStopped;
      outcome.stop_reason = reporter->stop_reason();
      return outcome;
    }
    auto& extra = *outcome.result.mutable_extra();
    extra["train_examples"] = static_cast<double>(run.train_examples);
    if (run.validation_examples > 0) {
      extra["validation_examples"] = static_cast<double>(run.validation_examples);
    }
    extra["num_labels"] = static_cast<double>(run.labels.size());
    if (run.test) {
      extra["test_examples"] = static_cast<double>(run.test->samples);
      *outcome.result.mutable_test() = ToTestMetrics(*run.test);
      reporter->Progress(
          absl::StrFormat("trial %d's model on test: accuracy %.4f, F1 %.4f (%.1f s)", source,
                          run.test->accuracy, run.test->f1_weighted, run.test->runtime_seconds));
      if (absl::Status s = reporter->ReportTest(outcome.result.test()); !s.ok()) {
        reporter->Log("could not report the test metrics: " + std::string(s.message()));
      }
    }
    WriteMetricsFile(model_dir, trial, {}, outcome.result);
    outcome.kind = RunOutcome::Kind::kComplete;
    outcome.artifact_dir = model_dir;
  } catch (...) {
    outcome = FailedOutcome(std::current_exception());
  }
  return outcome;
}

RunOutcome QloraRunner::Run(const v1::TrialSpec& trial, TrialReporter* reporter) {
  if (trial.kind() == v1::TRIAL_KIND_FINAL && trial.retrain_on() == v1::RETRAIN_ON_REUSE) {
    return Reuse(trial, reporter);
  }
  absl::StatusOr<std::string> json = TrialSpecToRunConfigJson(trial);
  if (!json.ok()) {
    RunOutcome outcome;
    outcome.error = std::string(json.status().message());
    return outcome;
  }
  std::atomic<bool> stop{false};
  bool pruned = false;
  bool lease_lost = false;
  std::string refusal;  // why the coordinator refused an epoch report
  const int64_t epochs = trial.training().has_epochs() ? trial.training().epochs() : 0;
  ProgressThrottle throttle(options_.progress_interval_seconds);
  core::RunCallbacks callbacks;
  callbacks.stop = &stop;
  callbacks.on_warning = [reporter](const std::string& warning) {
    reporter->Progress("warning: " + warning);
  };
  callbacks.on_progress = [&](const core::TrainingProgress& p) {
    v1::TrialProgress progress;
    progress.set_epoch(static_cast<int32_t>(p.epoch));
    progress.set_epochs(static_cast<int32_t>(epochs));
    progress.set_step(p.step);
    progress.set_total_steps(p.total_steps);
    progress.set_samples_per_second(p.samples_per_second);
    progress.set_eta_seconds(p.eta_seconds);
    reporter->StepProgress(progress);
    // Checked after every optimizer step (last thing here): the trainer reads `stop` before the
    // next one.
    if (throttle.ShouldLog()) {
      ProgressSnapshot snapshot;
      snapshot.epoch = p.epoch;
      snapshot.epochs = epochs;
      snapshot.step = p.step;
      snapshot.total_steps = p.total_steps;
      snapshot.loss = p.loss;
      snapshot.samples_per_second = p.samples_per_second;
      snapshot.eta_seconds = p.eta_seconds;
      reporter->Progress(FormatProgressLine(snapshot));
    }
    if (reporter->stop_reason() != StopReason::kNone) stop = true;
  };
  callbacks.on_start = [&](const core::TrainingStart& start) {
    // A first attempt normally finds nothing: only re-leases (and surprises) are worth an event.
    if (trial.attempt() > 1 || start.resumed_after_epoch > 0 ||
        start.note.find("another run") != std::string::npos) {
      reporter->Note(start.resumed_after_epoch > 0 ? "resumed_from_checkpoint" : "started_over",
                     absl::StrCat("attempt ", trial.attempt(), ": ", start.note));
    } else {
      reporter->Log(start.note);
    }
  };
  std::vector<v1::EpochMetrics> reported;  // for metrics.json
  callbacks.on_epoch = [&](const core::EpochResult& e) {
    v1::EpochMetrics metrics = ToEpochMetrics(e);
    if (epochs > 0) metrics.set_last(e.epoch >= epochs);  // the last epoch is never pruned
    reported.push_back(metrics);
    std::string line = absl::StrFormat(
        "epoch %d%s %s: train loss %.4f", e.epoch, epochs > 0 ? absl::StrCat("/", epochs) : "",
        e.restored ? "restored from the checkpoint" : "done", e.train_loss);
    if (e.validation) {
      absl::StrAppendFormat(&line, ", val loss %.4f, accuracy %.4f, F1 %.4f", e.validation->loss,
                            e.validation->accuracy, e.validation->f1_weighted);
    }
    absl::StrAppendFormat(&line, " (%.1f s)", e.wall_time_seconds);
    reporter->Progress(line);
    if (epochs > 0 && e.epoch == epochs && trial.kind() == v1::TRIAL_KIND_SEARCH) {
      // Only saving the adapter follows a search trial's last epoch: it rides on the completion.
      if (absl::Status status = reporter->ReportLastEpoch(metrics); !status.ok()) {
        lease_lost = true;
        refusal = absl::StrCat("the last epoch could not be reported: ", status.message());
        return false;
      }
      return reporter->stop_reason() == StopReason::kNone;
    }
    absl::StatusOr<bool> keep_going = reporter->ReportEpoch(metrics);
    if (!keep_going.ok()) {
      lease_lost = true;
      refusal = absl::StrCat("the coordinator refused the report of epoch ", e.epoch, ": ",
                             keep_going.status().message());
      return false;
    }
    if (!*keep_going) {
      pruned = true;
      reporter->Progress(absl::StrCat("pruned by the coordinator after epoch ", e.epoch));
    }
    return *keep_going && reporter->stop_reason() == StopReason::kNone;
  };
  RunOutcome outcome;
  try {
    core::RunConfig config = core::RunConfigFromJson(nlohmann::json::parse(*json));
    // The artifact folder is per study name and trial; the tag keeps a checkpoint another study of
    // the same name left there (another results database) from being resumed.
    config.checkpoint_tag = absl::StrCat(trial.study_id(), "/trial-", trial.trial_number());
    core::RunOptions run_options;
    run_options.threads = options_.threads;
    // Never the core's "auto": a cpu worker on a GPU machine must not train on the GPU.
    run_options.device = options_.device;
    core::RunOutcome run = core::RunTraining(config, run_options, callbacks);
    if (lease_lost || reporter->stop_reason() != StopReason::kNone) {
      outcome.kind = RunOutcome::Kind::kStopped;
      outcome.stop_reason = lease_lost ? StopReason::kLost : reporter->stop_reason();
      outcome.error = refusal;
      return outcome;
    }
    auto& extra = *outcome.result.mutable_extra();
    extra["train_examples"] = static_cast<double>(run.train_examples);
    if (run.validation_examples > 0) {
      extra["validation_examples"] = static_cast<double>(run.validation_examples);
    }
    extra["num_labels"] = static_cast<double>(run.labels.size());
    if (pruned) {
      outcome.kind = RunOutcome::Kind::kPruned;
      return outcome;
    }
    *outcome.result.mutable_train() = ToTrainSummary(run.train);
    if (absl::Status s = reporter->ReportTrain(outcome.result.train()); !s.ok()) {
      reporter->Log("could not report the train summary: " + std::string(s.message()));
    }
    if (run.test) {
      extra["test_examples"] = static_cast<double>(run.test->samples);
      *outcome.result.mutable_test() = ToTestMetrics(*run.test);
      if (absl::Status s = reporter->ReportTest(outcome.result.test()); !s.ok()) {
        reporter->Log("could not report the test metrics: " + std::string(s.message()));
      }
    }
    outcome.kind = RunOutcome::Kind::kComplete;
    if (!run.model_dir.empty()) {
      WriteMetricsFile(run.model_dir, trial, reported, outcome.result);
      outcome.artifact_dir = run.model_dir;
      // The trial is done: its resume point only costs disk now (a full fine-tune's optimizer
      // state is twice the model).
      std::error_code ignored;
      std::filesystem::remove_all(std::filesystem::path(config.artifact_dir) / "checkpoint",
                                  ignored);
    }
  } catch (...) {
    // Whatever the core or LibTorch threw (out of memory included); the runner stays usable for
    // the next trial: everything the attempt allocated was released on the way out.
    outcome = FailedOutcome(std::current_exception());
  }
  return outcome;
}

}  // namespace hpsearch::worker
