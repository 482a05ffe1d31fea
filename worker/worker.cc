#include "worker/worker.h"

#include <atomic>
#include <filesystem>
#include <optional>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace hpsearch::worker {
namespace {

// The worker's client options, measuring with `clock` unless they name a clock of their own.
ClientOptions WithClock(ClientOptions options, Clock* clock) {
  if (options.clock == nullptr) options.clock = clock;
  return options;
}

ClientOptions HeartbeatClientOptions(ClientOptions options) {
  // A heartbeat is not retried: the next one follows within an interval anyway.
  options.retry_window = absl::ZeroDuration();
  options.call_timeout = absl::Seconds(5);
  return options;
}

std::string Ids(const v1::TrialSpec& trial) {
  return absl::StrCat("trial ", trial.trial_number(), " of study ", trial.study_name(),
                      " (attempt ", trial.attempt(), ", lease ", trial.lease_id(), ")");
}

absl::Status RestartError() {
  return absl::UnavailableError(
      "the last trial left this process's device unusable; exiting so that a fresh worker "
      "process takes the next trial (restart hpsearch-worker)");
}

// A stop by the user, as the attempt records it (FailTrialRequest.stopped).
std::string StoppedText(const std::string& worker_id) {
  return absl::StrCat("stopped by the user: worker ", worker_id,
                      " received SIGTERM (a Ctrl-C of hpsearch run, its scheduler or a kill) and "
                      "handed the trial back");
}

}  // namespace

// One running trial: the reporter the runner talks to; its lease is heartbeated meanwhile.
class Worker::Session : public TrialReporter {
 public:
  Session(Worker* worker, const v1::TrialSpec& trial) : worker_(worker), trial_(trial) {
    absl::Duration interval = absl::Milliseconds(
        trial.heartbeat_interval_ms() > 0 ? trial.heartbeat_interval_ms() : 5000);
    worker_->heartbeat_.Begin(worker_->worker_id_, trial.lease_id(), interval, Ids(trial),
                              [this](const v1::LeaseStatus& lease) { OnLeaseStatus(lease); });
  }
  ~Session() override { worker_->heartbeat_.End(); }

  absl::StatusOr<bool> ReportEpoch(const v1::EpochMetrics& metrics) override {
    // A held last epoch followed by another epoch was not the last: it goes first, in order.
    if (absl::Status status = FlushLastEpoch(); !status.ok()) return status;
    return SendEpoch(metrics);
  }

  // Held until the completion, which carries it (see RunTrial).
  absl::Status ReportLastEpoch(const v1::EpochMetrics& metrics) override {
    if (absl::Status status = FlushLastEpoch(); !status.ok()) return status;
    last_epoch_ = metrics;
    return absl::OkStatus();
  }

  // Reports a held last epoch on its own, for a run that does not end with a completion.
  absl::Status FlushLastEpoch() {
    if (!last_epoch_.has_value()) return absl::OkStatus();
    v1::EpochMetrics metrics = std::move(*last_epoch_);
    last_epoch_.reset();
    return SendEpoch(metrics).status();
  }

  std::optional<v1::EpochMetrics> TakeLastEpoch() {
    std::optional<v1::EpochMetrics> taken = std::move(last_epoch_);
    last_epoch_.reset();
    return taken;
  }

  absl::StatusOr<bool> SendEpoch(const v1::EpochMetrics& metrics) {
    v1::ReportEpochRequest request;
    request.set_lease_id(trial_.lease_id());
    request.set_worker_id(worker_->worker_id_);
    *request.mutable_metrics() = metrics;
    absl::StatusOr<v1::ReportEpochResponse> response = worker_->client_.ReportEpoch(request);
    if (!response.ok()) return response.status();
    // bench/soak.py checks every acknowledged report against the database from these lines.
    spdlog::debug("{}: epoch {} acknowledged", Ids(trial_), metrics.epoch());
    return response->decision() != v1::EPOCH_DECISION_PRUNE;
  }

  absl::Status ReportTrain(const v1::TrainSummary& train) override {
    v1::ReportResultRequest request;
    request.set_lease_id(trial_.lease_id());
    request.set_worker_id(worker_->worker_id_);
    *request.mutable_train() = train;
    return worker_->client_.ReportResult(request).status();
  }

  absl::Status ReportTest(const v1::TestMetrics& test) override {
    v1::ReportResultRequest request;
    request.set_lease_id(trial_.lease_id());
    request.set_worker_id(worker_->worker_id_);
    *request.mutable_test() = test;
    return worker_->client_.ReportResult(request).status();
  }

  StopReason stop_reason() const override {
    if (worker_->stopping_) return StopReason::kShutdown;
    return order_.load();
  }

  void Log(const std::string& line) override {
    spdlog::debug("trial {} | {}", trial_.trial_number(), line);
  }

  void Progress(const std::string& line) override {
    spdlog::info("trial {} | {}", trial_.trial_number(), line);
  }

  void StepProgress(const v1::TrialProgress& progress) override {
    worker_->heartbeat_.SetProgress(progress);
  }

  absl::Status FetchModel(int trial_number, const std::string& dir) override {
    absl::Time start = worker_->clock_.Now();
    absl::Status status = worker_->client_.FetchArtifact(trial_.study_id(), trial_number, dir);
    if (status.ok()) {
      spdlog::info("{}: fetched trial {}'s stored model into {} in {:.1f} s", Ids(trial_),
                   trial_number, dir, absl::ToDoubleSeconds(worker_->clock_.Now() - start));
    }
    return status;
  }

  void Note(const std::string& kind, const std::string& message) override {
    spdlog::info("{}: {}", Ids(trial_), message);
    v1::ReportEventRequest request;
    request.set_lease_id(trial_.lease_id());
    request.set_worker_id(worker_->worker_id_);
    request.set_kind(kind);
    request.set_message(message);
    if (absl::Status status = worker_->client_.ReportEvent(request).status(); !status.ok()) {
      spdlog::warn("{}: could not record the {} event: {}", Ids(trial_), kind,
                   std::string(status.message()));
    }
  }

  // Uploads the completed trial's artifact while the heartbeat still keeps the lease alive. A
  // failure is logged and recorded; the trial still completes with its figures.
  void UploadArtifact(const std::string& dir) {
    absl::Time start = worker_->clock_.Now();
    absl::StatusOr<v1::UploadArtifactResponse> uploaded =
        worker_->client_.UploadArtifact(trial_.lease_id(), worker_->worker_id_, dir);
    if (!uploaded.ok()) {
      Note("artifact_upload_failed",
           absl::StrCat("could not upload ", dir, ": ", uploaded.status().message()));
      return;
    }
    spdlog::info("{}: uploaded {} ({} files, {} bytes{}) in {:.1f} s", Ids(trial_), dir,
                 uploaded->files(), uploaded->bytes(),
                 uploaded->duplicate() ? ", already stored" : "",
                 absl::ToDoubleSeconds(worker_->clock_.Now() - start));
    if (worker_->options_.keep_uploaded_artifacts) return;
    // The coordinator has confirmed its copy: ours only doubles the disk the study takes.
    std::error_code error;
    std::filesystem::remove_all(dir, error);
    if (error) {
      spdlog::warn("{}: could not delete the local copy {}: {}", Ids(trial_), dir, error.message());
    }
  }

 private:
  void OnLeaseStatus(const v1::LeaseStatus& lease) {
    if (lease.order() != v1::LEASE_ORDER_CANCEL && lease.order() != v1::LEASE_ORDER_LOST) return;
    spdlog::warn("{}: coordinator says {}: {}", Ids(trial_), v1::LeaseOrder_Name(lease.order()),
                 lease.reason());
    order_ = lease.order() == v1::LEASE_ORDER_CANCEL ? StopReason::kCancel : StopReason::kLost;
  }

  Worker* worker_;
  const v1::TrialSpec& trial_;                  // outlives the session (RunTrial's argument)
  std::optional<v1::EpochMetrics> last_epoch_;  // ReportLastEpoch's, not sent yet
  std::atomic<StopReason> order_{StopReason::kNone};
};

Worker::Worker(WorkerOptions options, std::map<v1::RunnerType, std::unique_ptr<Runner>> runners)
    : options_(std::move(options)),
      clock_(options_.clock),
      runners_(std::move(runners)),
      client_(options_.coordinator_address, options_.security,
              WithClock(options_.client, clock_.get())),
      heartbeat_client_(client_.channel(),
                        HeartbeatClientOptions(WithClock(options_.client, clock_.get()))),
      heartbeat_(&heartbeat_client_, clock_.get()) {
  client_.set_should_stop([this] { return stopping_.load(); });
}

Worker::~Worker() = default;

void Worker::Stop() {
  stopping_ = true;
  client_.CancelAcquire();
}

absl::Status Worker::Register() {
  v1::RegisterRequest request;
  *request.mutable_info() = options_.info;
  request.set_previous_worker_id(worker_id_);
  // The coordinator leases only trials of the types this worker has a runner for.
  for (const auto& [type, runner] : runners_) request.add_runner_types(type);
  absl::StatusOr<v1::RegisterResponse> response = client_.Register(request);
  if (!response.ok()) return response.status();
  worker_id_ = response->worker_id();
  spdlog::info("registered with {} as {}", options_.coordinator_address, worker_id_);
  return absl::OkStatus();
}

absl::Status Worker::Run() {
  if (absl::Status status = Register(); !status.ok()) return status;
  std::optional<v1::TrialSpec> next;  // leased to us by the last CompleteTrial
  while (!stopping_) {
    if (next.has_value()) {
      v1::TrialSpec trial = std::move(*next);
      next.reset();
      if (RunAndCount(trial, &next)) return RestartError();
      if (options_.max_trials > 0 && trials_run_ >= options_.max_trials) break;
      continue;
    }
    v1::AcquireTrialRequest request;
    request.set_worker_id(worker_id_);
    request.set_wait_ms(absl::ToInt64Milliseconds(options_.acquire_wait));
    absl::Time asked = clock_.Now();
    absl::StatusOr<v1::AcquireTrialResponse> response = client_.AcquireTrial(request);
    if (stopping_) break;
    if (response.ok() && response->has_trial() && options_.on_acquired) {
      options_.on_acquired(clock_.Now() - asked);
    }
    if (!response.ok()) {
      if (response.status().code() == absl::StatusCode::kNotFound) {
        // The coordinator restarted and forgot us: register again under the same id.
        if (absl::Status status = Register(); !status.ok()) return status;
        continue;
      }
      return response.status();
    }
    if (!response->has_trial() || response->trial().lease_id().empty()) {
      if (options_.exit_when_idle) break;
      continue;
    }
    if (RunAndCount(response->trial(), &next)) return RestartError();
    if (options_.max_trials > 0 && trials_run_ >= options_.max_trials) break;
  }
  if (next.has_value()) {
    // Leased with the last completion just as we were told to stop: hand it back for a retry at
    // once rather than let its lease expire.
    v1::FailTrialRequest fail;
    fail.set_lease_id(next->lease_id());
    fail.set_worker_id(worker_id_);  // without it the coordinator refuses the call
    fail.set_retryable(true);
    fail.set_error(absl::StrCat("worker ", worker_id_, " stopped before starting this trial"));
    if (absl::Status status = client_.FailTrial(fail).status(); !status.ok()) {
      spdlog::warn("{}: handing it back failed: {}", Ids(*next), std::string(status.message()));
    }
  }
  return absl::OkStatus();
}

bool Worker::RunAndCount(const v1::TrialSpec& trial, std::optional<v1::TrialSpec>* next) {
  // Ask for the next trial with this one's completion unless this is the last one we run.
  bool want_next =
      !stopping_ && (options_.max_trials == 0 || trials_run_ + 1 < options_.max_trials);
  bool restart = false;
  if (absl::Status status = RunTrial(trial, want_next ? next : nullptr, &restart); !status.ok()) {
    spdlog::error("{}: {}", Ids(trial), std::string(status.message()));
  }
  ++trials_run_;
  return restart;
}

absl::Status Worker::RunTrial(const v1::TrialSpec& trial, std::optional<v1::TrialSpec>* next,
                              bool* restart) {
  absl::Time start = clock_.Now();
  v1::RunnerType type = trial.runner().type();
  auto runner = runners_.find(type);
  if (runner == runners_.end()) {
    v1::FailTrialRequest fail;
    fail.set_lease_id(trial.lease_id());
    fail.set_worker_id(worker_id_);
    fail.set_error(absl::StrCat("worker ", worker_id_, " has no ", v1::RunnerType_Name(type),
                                " runner in this build; run the study on a worker that has one"));
    fail.set_retryable(true);
    return client_.FailTrial(fail).status();
  }
  spdlog::info("{}: started", Ids(trial));
  RunOutcome outcome;
  std::optional<v1::EpochMetrics> last_epoch;  // rides on the completion
  {
    Session session(this, trial);
    outcome = runner->second->Run(trial, &session);
    bool completes =
        outcome.kind == RunOutcome::Kind::kComplete || outcome.kind == RunOutcome::Kind::kPruned;
    if (!completes && outcome.stop_reason != StopReason::kLost) {
      // No completion will carry the held last epoch: report it while the lease is still ours.
      if (absl::Status status = session.FlushLastEpoch(); !status.ok()) {
        spdlog::warn("{}: could not report the last epoch: {}", Ids(trial),
                     std::string(status.message()));
      }
    }
    if (outcome.kind == RunOutcome::Kind::kComplete && !outcome.artifact_dir.empty()) {
      session.UploadArtifact(outcome.artifact_dir);
    }
    last_epoch = session.TakeLastEpoch();
  }
  double seconds = absl::ToDoubleSeconds(clock_.Now() - start);
  switch (outcome.kind) {
    case RunOutcome::Kind::kComplete:
    case RunOutcome::Kind::kPruned: {
      v1::CompleteTrialRequest complete;
      complete.set_lease_id(trial.lease_id());
      complete.set_worker_id(worker_id_);
      *complete.mutable_result() = outcome.result;
      complete.set_pruned(outcome.kind == RunOutcome::Kind::kPruned);
      if (next != nullptr && !stopping_) complete.set_lease_next(true);
      if (last_epoch.has_value()) *complete.mutable_last_epoch() = std::move(*last_epoch);
      absl::Time asked = clock_.Now();
      absl::StatusOr<v1::CompleteTrialResponse> response = client_.CompleteTrial(complete);
      if (!response.ok()) return response.status();
      if (options_.on_completed) options_.on_completed(complete.has_last_epoch());
      if (next != nullptr && response->has_next_trial() &&
          !response->next_trial().lease_id().empty()) {
        *next = std::move(*response->mutable_next_trial());
        if (options_.on_acquired) options_.on_acquired(clock_.Now() - asked);
      }
      spdlog::info("{}: {} in {:.1f} s", Ids(trial), v1::TrialState_Name(response->state()),
                   seconds);
      return absl::OkStatus();
    }
    case RunOutcome::Kind::kFailed: {
      *restart = outcome.restart_worker;
      v1::FailTrialRequest fail;
      fail.set_lease_id(trial.lease_id());
      fail.set_worker_id(worker_id_);
      fail.set_retryable(outcome.retryable);
      if (outcome.stop_reason == StopReason::kShutdown) {
        fail.set_stopped(true);
        fail.set_error(StoppedText(worker_id_));
      } else {
        fail.set_error(outcome.error);
      }
      absl::StatusOr<v1::FailTrialResponse> response = client_.FailTrial(fail);
      if (!response.ok()) return response.status();
      spdlog::warn("{}: failed after {:.1f} s ({}): {}", Ids(trial), seconds,
                   v1::TrialState_Name(response->state()), fail.error());
      return absl::OkStatus();
    }
    case RunOutcome::Kind::kStopped: {
      if (outcome.stop_reason != StopReason::kShutdown) {
        spdlog::warn("{}: stopped after {:.1f} s: {}", Ids(trial), seconds, outcome.error);
        return absl::OkStatus();
      }
      // This worker is exiting: hand the trial back at once rather than let its lease expire.
      v1::FailTrialRequest fail;
      fail.set_lease_id(trial.lease_id());
      fail.set_worker_id(worker_id_);
      fail.set_retryable(true);
      fail.set_stopped(true);
      fail.set_error(StoppedText(worker_id_));
      absl::StatusOr<v1::FailTrialResponse> response = client_.FailTrial(fail);
      if (!response.ok()) return response.status();
      spdlog::warn("{}: stopped after {:.1f} s for shutdown; handed back ({})", Ids(trial), seconds,
                   v1::TrialState_Name(response->state()));
      return absl::OkStatus();
    }
  }
  return absl::OkStatus();
}

}  // namespace hpsearch::worker
