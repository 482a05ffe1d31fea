// Coordinator: the WorkerService calls (register, acquire, heartbeat, reports, complete, fail).
#include "server/coordinator.h"

#include "absl/strings/str_cat.h"
#include "server/coordinator_internal.h"
#include "server/study_file/study_view.h"
#include "server/trial_spec_builder.h"

namespace hpsearch::server {

// -------------------------------------------------------------------------------- worker service

absl::StatusOr<v1::RegisterResponse> Coordinator::Register(const v1::RegisterRequest& request) {
  uint64_t sequence;
  v1::RegisterResponse response;
  {
    absl::MutexLock lock(&mu_);
    std::string worker_id = request.previous_worker_id();
    if (worker_id.empty()) worker_id = NewId("wk-");
    workers_[worker_id] = request.info();
    std::set<v1::RunnerType>& can_run = worker_runner_types_[worker_id];
    can_run.clear();
    for (int type : request.runner_types()) can_run.insert(static_cast<v1::RunnerType>(type));
    worker_last_write_[worker_id] = clock_->Now();
    HPSEARCH_RETURN_IF_ERROR(store_->PutWorker(worker_id, request.info(), NowMs()));
    response.set_worker_id(worker_id);
    response.set_heartbeat_interval_ms(absl::ToInt64Milliseconds(options_.heartbeat_interval));
    response.set_lease_ttl_ms(absl::ToInt64Milliseconds(options_.lease_ttl));
    sequence = store_->Sequence();
  }
  HPSEARCH_RETURN_IF_ERROR(Finish(sequence, false));
  return response;
}

absl::StatusOr<std::optional<v1::TrialSpec>> Coordinator::TryAcquire(const std::string& worker_id) {
  uint64_t sequence;
  std::optional<v1::TrialSpec> spec;
  {
    absl::MutexLock lock(&mu_);
    if (workers_.count(worker_id) == 0) {
      return absl::NotFoundError(
          absl::StrCat("worker ", worker_id,
                       " is not registered here (the coordinator may have restarted): "
                       "call Register with previous_worker_id set"));
    }
    absl::StatusOr<std::optional<v1::TrialSpec>> acquired = AcquireAny(worker_id);
    if (!acquired.ok()) return acquired.status();
    spec = std::move(*acquired);
    sequence = store_->Sequence();
  }
  HPSEARCH_RETURN_IF_ERROR(Finish(sequence, false));
  return spec;
}

absl::StatusOr<v1::HeartbeatResponse> Coordinator::Heartbeat(const v1::HeartbeatRequest& request) {
  uint64_t sequence;
  v1::HeartbeatResponse response;
  {
    absl::MutexLock lock(&mu_);
    absl::Time now = clock_->Now();
    for (const std::string& lease_id : request.lease_ids()) {
      v1::LeaseStatus* status = response.add_leases();
      status->set_lease_id(lease_id);
      auto it = leases_.find(lease_id);
      if (it != leases_.end() && it->second.worker_id == request.worker_id()) {
        it->second.deadline = now + options_.lease_ttl;
        status->set_order(v1::LEASE_ORDER_CONTINUE);
        status->set_deadline_unix_ms(absl::ToUnixMillis(it->second.deadline));
        if (request.has_progress() && lease_id == request.lease_ids(0)) {
          HPSEARCH_RETURN_IF_ERROR(RecordProgress(it->second, request.progress(), now));
        }
      } else if (it != leases_.end()) {
        status->set_order(v1::LEASE_ORDER_LOST);
        status->set_reason(absl::StrCat("lease ", lease_id, " belongs to worker ",
                                        it->second.worker_id, ", not ", request.worker_id()));
      } else if (absl::StatusOr<std::optional<db::EndedLease>> ended = FindEndedLease(lease_id);
                 !ended.ok()) {
        return ended.status();
      } else if (ended->has_value()) {
        bool cancel = (*ended)->ended_by == db::LeaseEnd::kTimeout ||
                      (*ended)->ended_by == db::LeaseEnd::kCancelled;
        status->set_order(cancel ? v1::LEASE_ORDER_CANCEL : v1::LEASE_ORDER_LOST);
        status->set_reason(EndedLeaseReason(**ended));
      } else {
        status->set_order(v1::LEASE_ORDER_LOST);
        status->set_reason(absl::StrCat("lease ", lease_id, " is unknown to this coordinator"));
      }
    }
    // last_seen is informative; write it at most every few seconds per worker.
    auto last = worker_last_write_.find(request.worker_id());
    if (workers_.count(request.worker_id()) != 0 &&
        (last == worker_last_write_.end() || now - last->second > absl::Seconds(5))) {
      worker_last_write_[request.worker_id()] = now;
      HPSEARCH_RETURN_IF_ERROR(store_->TouchWorker(request.worker_id(), absl::ToUnixMillis(now)));
    }
    sequence = store_->Sequence();
  }
  HPSEARCH_RETURN_IF_ERROR(Finish(sequence, false));
  return response;
}

absl::Status Coordinator::RecordProgress(const Lease& lease, const v1::TrialProgress& progress,
                                         absl::Time now) {
  StudyRecord* study = &studies_[lease.study_id];
  TrialRecord* record = &study->trials[lease.trial_number];
  v1::Trial& trial = record->trial.Mutable();  // a leased trial: not packed
  v1::TrialProgress* kept = trial.mutable_progress();
  *kept = progress;
  kept->set_updated_unix_ms(absl::ToUnixMillis(now));
  if (now - record->progress_written < options_.progress_write_interval) return absl::OkStatus();
  record->progress_written = now;
  HPSEARCH_RETURN_IF_ERROR(store_->PutProgress(record->trial_id, trial.attempt(), *kept));
  EmitTrial(*study, trial);
  return absl::OkStatus();
}

absl::StatusOr<v1::ReportEpochResponse> Coordinator::ReportEpoch(
    const v1::ReportEpochRequest& request) {
  uint64_t sequence = 0;
  absl::StatusOr<v1::ReportEpochResponse> response = ApplyReportEpoch(request, &sequence);
  if (!response.ok()) return response.status();
  HPSEARCH_RETURN_IF_ERROR(Finish(sequence, false));
  return response;
}

void Coordinator::ReportEpochAsync(const v1::ReportEpochRequest& request,
                                   Done<v1::ReportEpochResponse> done) {
  uint64_t sequence = 0;
  absl::StatusOr<v1::ReportEpochResponse> response = ApplyReportEpoch(request, &sequence);
  if (!response.ok()) {
    done(response.status());
    return;
  }
  FinishAsync(sequence, false,
              [response = std::move(*response), done = std::move(done)](absl::Status status) {
                if (status.ok()) {
                  done(response);
                } else {
                  done(status);
                }
              });
}

absl::StatusOr<v1::ReportEpochResponse> Coordinator::ApplyReportEpoch(
    const v1::ReportEpochRequest& request, uint64_t* sequence) {
  HPSEARCH_RETURN_IF_ERROR(ValidateEpochMetrics(request.metrics()));
  v1::ReportEpochResponse response;
  {
    absl::MutexLock lock(&mu_);
    Lease* lease = nullptr;
    HPSEARCH_RETURN_IF_ERROR(LeaseStatus(request.lease_id(), request.worker_id(), &lease));
    lease->deadline = std::max(lease->deadline, clock_->Now() + options_.lease_ttl);
    StudyRecord* study = &studies_[lease->study_id];
    TrialRecord* record = &study->trials[lease->trial_number];
    bool duplicate = false;
    HPSEARCH_RETURN_IF_ERROR(RecordEpoch(study, record, request.metrics(), &duplicate));
    response.set_duplicate(duplicate);
    if (!duplicate && !record->prune_requested &&
        record->trial.head().kind() == v1::TRIAL_KIND_SEARCH &&
        !IsLastEpoch(study->study.spec(), record->trial.Mutable(), request.metrics())) {
      PruneRequest prune;
      prune.spec = &study->study.spec();
      prune.trial_number = record->trial.head().number();
      prune.epoch = request.metrics().epoch();
      prune.history = &study->history;
      if (std::optional<PruneVerdict> verdict = study->pruner->Judge(prune)) {
        // Kept with the trial, stored when its attempt ends pruned.
        record->prune_requested = true;
        v1::PruneReason* reason = record->trial.Mutable().mutable_prune_reason();
        reason->set_rule(verdict->rule);
        reason->set_epoch(verdict->epoch);
        reason->set_value(verdict->value);
        reason->set_threshold(verdict->threshold);
      }
    }
    response.set_decision(record->prune_requested ? v1::EPOCH_DECISION_PRUNE
                                                  : v1::EPOCH_DECISION_CONTINUE);
    *sequence = store_->Sequence();
  }
  return response;
}

absl::Status Coordinator::ReportResult(const v1::ReportResultRequest& request) {
  uint64_t sequence;
  {
    absl::MutexLock lock(&mu_);
    Lease* lease = nullptr;
    HPSEARCH_RETURN_IF_ERROR(LeaseStatus(request.lease_id(), request.worker_id(), &lease));
    TrialRecord* record = &studies_[lease->study_id].trials[lease->trial_number];
    if (request.has_train()) {
      HPSEARCH_RETURN_IF_ERROR(store_->PutTrainSummary(record->trial_id, request.train()));
      *record->trial.Mutable().mutable_result()->mutable_train() = request.train();
    } else if (request.has_test()) {
      for (const auto& [name, value] : request.test().extra()) {
        HPSEARCH_RETURN_IF_ERROR(CheckFinite(value, 0, "test " + name));
      }
      HPSEARCH_RETURN_IF_ERROR(store_->PutTestMetrics(record->trial_id, request.test()));
      *record->trial.Mutable().mutable_result()->mutable_test() = request.test();
    } else {
      return absl::InvalidArgumentError("result: set train or test");
    }
    sequence = store_->Sequence();
  }
  return Finish(sequence, false);
}

absl::StatusOr<std::optional<v1::TrialSpec>> Coordinator::AcquireAny(const std::string& worker_id) {
  const std::set<v1::RunnerType>& can_run = worker_runner_types_[worker_id];
  for (const std::string& id : study_order_) {
    StudyRecord* study = &studies_[id];
    v1::RunnerType type = study->study.spec().runner().type();
    // Ask/tell studies are run by their clients; a worker has nothing to run them with.
    if (type == v1::RUNNER_TYPE_NONE) continue;
    if (type == v1::RUNNER_TYPE_UNSPECIFIED) type = v1::RUNNER_TYPE_QLORA;
    if (!can_run.empty() && can_run.count(type) == 0) continue;  // empty: an older worker, runs all
    absl::StatusOr<std::optional<v1::TrialSpec>> acquired = AcquireFrom(study, worker_id);
    if (!acquired.ok() || acquired->has_value()) return acquired;
  }
  return std::nullopt;
}

absl::StatusOr<v1::CompleteTrialResponse> Coordinator::CompleteTrial(
    const v1::CompleteTrialRequest& request) {
  uint64_t sequence = 0;
  absl::StatusOr<v1::CompleteTrialResponse> response = ApplyCompleteTrial(request, &sequence);
  if (!response.ok()) return response.status();
  HPSEARCH_RETURN_IF_ERROR(Finish(sequence, true));
  return response;
}

void Coordinator::CompleteTrialAsync(const v1::CompleteTrialRequest& request,
                                     Done<v1::CompleteTrialResponse> done) {
  uint64_t sequence = 0;
  absl::StatusOr<v1::CompleteTrialResponse> response = ApplyCompleteTrial(request, &sequence);
  if (!response.ok()) {
    done(response.status());
    return;
  }
  FinishAsync(sequence, true,
              [response = std::move(*response), done = std::move(done)](absl::Status status) {
                if (status.ok()) {
                  done(response);
                } else {
                  done(status);
                }
              });
}

absl::StatusOr<v1::CompleteTrialResponse> Coordinator::ApplyCompleteTrial(
    const v1::CompleteTrialRequest& request, uint64_t* sequence) {
  if (request.has_last_epoch())
    HPSEARCH_RETURN_IF_ERROR(ValidateEpochMetrics(request.last_epoch()));
  v1::CompleteTrialResponse response;
  {
    absl::MutexLock lock(&mu_);
    absl::StatusOr<std::optional<db::EndedLease>> ended = FindEndedLease(request.lease_id());
    if (!ended.ok()) return ended.status();
    bool retried = ended->has_value() && EndedByHolder(**ended);
    if (retried) {
      // A retried CompleteTrial whose reply was lost (or that outlived a coordinator restart):
      // the same answer, and nothing changes.
      response.set_state(EndedTrialState(**ended));
    } else {
      Lease* lease = nullptr;
      HPSEARCH_RETURN_IF_ERROR(LeaseStatus(request.lease_id(), request.worker_id(), &lease));
      StudyRecord* study = &studies_[lease->study_id];
      TrialRecord* record = &study->trials[lease->trial_number];
      if (request.has_last_epoch()) {
        // First of the completion's writes: when it is refused (out of order), nothing is written.
        bool duplicate = false;
        HPSEARCH_RETURN_IF_ERROR(RecordEpoch(study, record, request.last_epoch(), &duplicate));
      }
      const v1::TrialResult& result = request.result();
      if (result.has_train()) {
        HPSEARCH_RETURN_IF_ERROR(store_->PutTrainSummary(record->trial_id, result.train()));
        *record->trial.Mutable().mutable_result()->mutable_train() = result.train();
      }
      if (result.has_test()) {
        HPSEARCH_RETURN_IF_ERROR(store_->PutTestMetrics(record->trial_id, result.test()));
        *record->trial.Mutable().mutable_result()->mutable_test() = result.test();
      }
      if (!result.extra().empty()) {
        HPSEARCH_RETURN_IF_ERROR(store_->PutResultExtra(record->trial_id, result));
        *record->trial.Mutable().mutable_result()->mutable_extra() = result.extra();
      }
      v1::TrialState state = request.pruned() ? v1::TRIAL_STATE_PRUNED : v1::TRIAL_STATE_COMPLETE;
      std::string error;
      if (state == v1::TRIAL_STATE_COMPLETE &&
          record->trial.head().kind() == v1::TRIAL_KIND_SEARCH &&
          !TrialObjective(study->study.spec(), record->trial.Mutable().epochs())) {
        state = v1::TRIAL_STATE_FAILED;
        error =
            absl::StrCat("the trial finished without any epoch reporting the objective metric '",
                         ObjectiveMetric(study->study.spec()),
                         "': make the command print it in its epoch lines");
      }
      HPSEARCH_RETURN_IF_ERROR(
          EndAttempt(study, record, state, error, false, db::LeaseEnd::kWorker));
      response.set_state(record->trial.head().state());
    }
    // The next trial rides on the same commit. An unknown worker (e.g. after a restart) gets none
    // and learns it from its next AcquireTrial, which tells it to register again.
    const std::string next_for = request.lease_next() ? request.worker_id() : std::string();
    if (retried && !next_for.empty()) {
      // The first reply may have carried a next trial: hand the same lease out again. A restart
      // forgets which lease a completion handed out (granted_with is not stored), but both were
      // one commit: the restored lease of the same worker that started as the trial ended. (A
      // worker runs one trial at a time and retries its completion before anything else, so no
      // other lease of it starts then.) Without this the lease waited out the restart grace with
      // a worker that never heard of it (bench/soak.py, coordinator SIGKILLed every minute).
      int64_t completed_ms = -1;
      if (auto it = studies_.find((**ended).study_id); it != studies_.end()) {
        const std::deque<TrialRecord>& trials = it->second.trials;
        const int number = (**ended).trial_number;
        if (number >= 0 && number < static_cast<int>(trials.size()) &&
            trials[number].trial.head().attempt() == (**ended).attempt) {
          completed_ms = trials[number].trial.head().ended_unix_ms();
        }
      }
      for (const auto& [lease_id, lease] : leases_) {
        if (lease.worker_id != next_for) continue;
        if (lease.granted_with != request.lease_id()) {
          if (!lease.granted_with.empty() || completed_ms < 0) continue;
          const int64_t started_ms = absl::ToUnixMillis(
              studies_[lease.study_id].trials[lease.trial_number].attempt_started);
          if (started_ms < completed_ms || started_ms - completed_ms > 1000) continue;
        }
        const StudyRecord& study = studies_[lease.study_id];
        LeaseGrant grant{lease_id, lease.deadline, options_.heartbeat_interval};
        absl::StatusOr<v1::TrialSpec> next = LeasedSpec(
            study, study.trials[lease.trial_number].trial.head(), grant);  // leased: whole
        if (!next.ok()) return next.status();
        *response.mutable_next_trial() = std::move(*next);
        break;
      }
    } else if (!next_for.empty() && workers_.count(next_for) != 0) {
      absl::StatusOr<std::optional<v1::TrialSpec>> next = AcquireAny(next_for);
      if (!next.ok()) return next.status();
      if (next->has_value()) {
        leases_[(*next)->lease_id()].granted_with = request.lease_id();
        *response.mutable_next_trial() = std::move(**next);
      }
    }
    *sequence = store_->Sequence();
  }
  return response;
}

absl::StatusOr<v1::TrialState> Coordinator::FailTrial(const v1::FailTrialRequest& request) {
  uint64_t sequence;
  v1::TrialState state;
  {
    absl::MutexLock lock(&mu_);
    absl::StatusOr<std::optional<db::EndedLease>> ended = FindEndedLease(request.lease_id());
    if (!ended.ok()) return ended.status();
    if (ended->has_value() && EndedByHolder(**ended)) {
      return EndedTrialState(**ended);  // a retried FailTrial whose reply was lost
    }
    Lease* lease = nullptr;
    HPSEARCH_RETURN_IF_ERROR(LeaseStatus(request.lease_id(), request.worker_id(), &lease));
    StudyRecord* study = &studies_[lease->study_id];
    TrialRecord* record = &study->trials[lease->trial_number];
    std::string error = request.error().empty() ? "failed (no reason given)" : request.error();
    HPSEARCH_RETURN_IF_ERROR(EndAttempt(study, record, v1::TRIAL_STATE_FAILED, error,
                                        request.retryable(), db::LeaseEnd::kWorker,
                                        request.stopped()));
    state = record->trial.head().state();
    sequence = store_->Sequence();
  }
  HPSEARCH_RETURN_IF_ERROR(Finish(sequence, true));
  return state;
}

}  // namespace hpsearch::server
