// Coordinator: construction, shared bookkeeping (lookups, persistence, events, commit-then-publish)
// and subscriptions. The contract is in coordinator.h; the other halves live in coordinator_*.cc.
#include "server/coordinator.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/coordinator_internal.h"
#include "server/study_file/study_view.h"

namespace hpsearch::server {

Coordinator::Coordinator(db::ResultsStore* store, Clock* clock, CoordinatorOptions options)
    : store_(store), clock_(clock), options_(std::move(options)) {
  // Every operation writes under mu_ and commits after releasing it (Finish): commits taking mu_
  // never split an operation's writes.
  store_->SetOperationLock(&mu_);
}

Coordinator::~Coordinator() { store_->SetOperationLock(nullptr); }

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Create(db::ResultsStore* store,
                                                                 Clock* clock,
                                                                 CoordinatorOptions options) {
  if (options.default_artifacts_root.empty()) {
    std::filesystem::path db_path(store->path());
    options.default_artifacts_root =
        (std::filesystem::absolute(db_path).parent_path() / "artifacts").string();
  }
  std::unique_ptr<Coordinator> coordinator(new Coordinator(store, clock, std::move(options)));
  HPSEARCH_RETURN_IF_ERROR(coordinator->Load());
  HPSEARCH_RETURN_IF_ERROR(coordinator->Finish(store->Sequence(), true));
  return coordinator;
}

// ------------------------------------------------------------------------------------------
// helpers

int64_t Coordinator::NowMs() { return absl::ToUnixMillis(clock_->Now()); }

std::string Coordinator::NewId(const char* prefix) {
  return absl::StrFormat("%s%016x", prefix, absl::Uniform<uint64_t>(bitgen_));
}

Coordinator::StudyRecord* Coordinator::FindStudy(const std::string& id_or_name) {
  auto it = studies_.find(id_or_name);
  if (it != studies_.end()) return &it->second;
  auto by_name = study_by_name_.find(id_or_name);
  if (by_name != study_by_name_.end()) return &studies_[by_name->second];
  return nullptr;
}

absl::Status Coordinator::UnknownStudy(const std::string& id_or_name) {
  std::vector<std::string> names;
  for (const std::string& id : study_order_) names.push_back(studies_[id].study.spec().name());
  return UnknownStudyError(id_or_name, names);
}

absl::Status Coordinator::LeaseStatus(const std::string& lease_id, const std::string& holder,
                                      Lease** lease) {
  if (lease_id.empty()) return absl::InvalidArgumentError("lease_id is empty");
  if (holder.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("lease ", lease_id,
                     ": worker_id is empty; set it to the id Register returned (Ask clients: "
                     "client_name)"));
  }
  auto it = leases_.find(lease_id);
  if (it != leases_.end()) {
    if (it->second.worker_id != holder) {
      return absl::PermissionDeniedError(
          absl::StrCat("lease ", lease_id, " is not held by ", holder,
                       ": a worker reports only on the trials it acquired"));
    }
    *lease = &it->second;
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<db::EndedLease>> ended = FindEndedLease(lease_id);
  if (!ended.ok()) return ended.status();
  if (ended->has_value()) {
    return absl::FailedPreconditionError(
        absl::StrCat("lease ", lease_id, " is no longer valid (", EndedLeaseReason(**ended),
                     "): stop this attempt and do not report it further"));
  }
  return absl::NotFoundError(
      absl::StrCat("lease ", lease_id, " is unknown to this coordinator: acquire a new trial"));
}

absl::StatusOr<std::optional<db::EndedLease>> Coordinator::FindEndedLease(
    const std::string& lease_id) {
  if (lease_id.empty() || leases_.count(lease_id) != 0) return std::nullopt;
  absl::StatusOr<std::optional<db::EndedLease>> ended = store_->FindLease(lease_id);
  if (!ended.ok()) return ended.status();
  // An attempt still running in the store but not leased here cannot happen (Load re-arms every
  // stored lease); treat it as unknown rather than guess.
  if (ended->has_value() && (*ended)->attempt_state == v1::TRIAL_STATE_RUNNING) {
    return std::nullopt;
  }
  return ended;
}

void Coordinator::UpdateHistory(StudyRecord* study, const v1::Trial& trial) {
  if (trial.kind() != v1::TRIAL_KIND_SEARCH) return;
  if (static_cast<int>(study->history.trials.size()) <= trial.number()) {
    study->history.trials.resize(trial.number() + 1);
  }
  HistoryTrial& h = study->history.trials[trial.number()];
  h.number = trial.number();
  h.state = trial.state();
  if (h.params.size() != static_cast<size_t>(trial.params_size())) {
    h.params.assign(trial.params().begin(), trial.params().end());
  }
  h.objective_value.reset();
  if (trial.state() == v1::TRIAL_STATE_COMPLETE && trial.has_objective_value()) {
    h.objective_value = trial.objective_value();
  }
  std::string metric = ObjectiveMetric(study->study.spec());
  h.epoch_values.clear();
  for (const v1::EpochMetrics& epoch : trial.epochs()) {
    h.epoch_values.push_back(MetricValue(epoch, metric));
  }
}

absl::Status Coordinator::PersistTrial(StudyRecord* study, TrialRecord* record) {
  int64_t deadline_ms = 0;
  if (!record->lease_id.empty()) {
    auto it = leases_.find(record->lease_id);
    if (it != leases_.end()) deadline_ms = absl::ToUnixMillis(it->second.deadline);
  }
  const v1::Trial& trial = record->trial.Mutable();
  HPSEARCH_RETURN_IF_ERROR(
      store_->UpdateTrial(record->trial_id, trial, record->lease_id, deadline_ms));
  UpdateHistory(study, trial);
  EmitTrial(*study, trial);
  record->trial.PackIfEnded();  // memory: an ended trial is read far less than it is held
  return absl::OkStatus();
}

absl::Status Coordinator::AddEvent(const StudyRecord& study, int trial_number, int attempt,
                                   const std::string& worker_id, const std::string& kind,
                                   const std::string& message) {
  return store_->AddEvent(NowMs(), study.study.id(), trial_number, attempt, worker_id, kind,
                          message);
}

v1::Study Coordinator::StudySnapshot(const StudyRecord& study) {
  v1::Study snapshot = study.study;
  int32_t counts[v1::TrialState_ARRAYSIZE] = {0};
  for (const TrialRecord& record : study.trials) ++counts[record.trial.head().state()];
  for (int state = 0; state < v1::TrialState_ARRAYSIZE; ++state) {
    if (counts[state] > 0) {
      (*snapshot.mutable_trial_counts())[db::TrialStateName(static_cast<v1::TrialState>(state))] =
          counts[state];
    }
  }
  return snapshot;
}

void Coordinator::EmitTrial(const StudyRecord& study, const v1::Trial& whole) {
  if (study.listeners == 0) return;  // nobody watches: skip the copy
  PendingEvent pending;
  pending.study_id = study.study.id();
  pending.event.set_unix_ms(NowMs());
  v1::Trial* trial = pending.event.mutable_trial();
  *trial = whole;
  trial->clear_attempts();
  pending_events_.push_back(std::move(pending));
  events_pending_.store(true, std::memory_order_release);
}

void Coordinator::EmitStudy(const StudyRecord& study) {
  if (study.listeners == 0) return;
  PendingEvent pending;
  pending.study_id = study.study.id();
  pending.event.set_unix_ms(NowMs());
  *pending.event.mutable_study() = StudySnapshot(study);
  pending_events_.push_back(std::move(pending));
  events_pending_.store(true, std::memory_order_release);
}

absl::Status Coordinator::Finish(uint64_t sequence, bool work_changed) {
  HPSEARCH_RETURN_IF_ERROR(store_->Sync(sequence));
  Publish(work_changed);
  return absl::OkStatus();
}

void Coordinator::FinishAsync(uint64_t sequence, bool work_changed,
                              std::function<void(absl::Status)> done) {
  store_->SyncAsync(sequence, [this, work_changed, done = std::move(done)](absl::Status status) {
    if (status.ok()) Publish(work_changed);
    done(status);
  });
}

void Coordinator::Publish(bool work_changed) {
  // Most commits carry no event (nobody watches the study): then neither the publication lock nor
  // mu_ is taken, which every acknowledgement of a batched commit would otherwise queue on.
  if (events_pending_.load(std::memory_order_acquire)) {
    absl::MutexLock publish(&publish_mu_);
    std::vector<PendingEvent> events;
    {
      absl::MutexLock lock(&mu_);
      events.swap(pending_events_);
      events_pending_.store(false, std::memory_order_relaxed);
    }
    std::vector<std::pair<std::string, Listener>> listeners;
    if (!events.empty()) {
      absl::MutexLock lock(&listeners_mu_);
      for (const auto& [token, entry] : listeners_) listeners.push_back(entry);
    }
    for (const PendingEvent& pending : events) {
      for (const auto& [study_id, listener] : listeners) {
        if (study_id == pending.study_id) listener(pending.event);
      }
    }
  }
  if (!work_changed) return;
  std::function<void()> work_available;
  {
    absl::MutexLock lock(&listeners_mu_);
    work_available = work_available_;
  }
  if (work_available) work_available();
}

bool Coordinator::SearchOpen(const StudyRecord& study) {
  const v1::StudySpec& spec = study.study.spec();
  StudyBudget budget = BudgetOf(spec);
  if (study.search_created >= budget.n_trials) return false;
  if (PastTimeLimit(study)) return false;
  SampleRequest request;
  request.spec = &spec;
  request.trial_number = static_cast<int>(study.trials.size());
  request.history = &study.history;
  return !study.sampler->Exhausted(request);
}

bool Coordinator::PastTimeLimit(const StudyRecord& study) {
  absl::Duration limit = BudgetOf(study.study.spec()).time_limit;
  if (limit <= absl::ZeroDuration()) return false;
  return clock_->Now() >= absl::FromUnixMillis(study.study.created_unix_ms()) +
                              absl::Milliseconds(study.study.downtime_ms()) + limit;
}

absl::Status Coordinator::SetStudyState(StudyRecord* study, v1::StudyState state,
                                        const std::string& reason) {
  study->study.set_state(state);
  study->study.set_state_reason(reason);
  if (!StudyActive(state)) study->study.set_ended_unix_ms(NowMs());
  HPSEARCH_RETURN_IF_ERROR(store_->PutStudy(study->study));
  HPSEARCH_RETURN_IF_ERROR(
      AddEvent(*study, -1, 0, "", "study_" + db::StudyStateName(state), reason));
  EmitStudy(*study);
  return absl::OkStatus();
}

// ------------------------------------------------------------------------------ notifications

void Coordinator::SetWorkAvailableCallback(std::function<void()> callback) {
  absl::MutexLock lock(&listeners_mu_);
  work_available_ = std::move(callback);
}

absl::StatusOr<int64_t> Coordinator::Subscribe(const std::string& id_or_name, Listener listener,
                                               v1::Study* snapshot,
                                               std::vector<v1::Trial>* trials) {
  absl::MutexLock publish(&publish_mu_);
  std::string study_id;
  {
    absl::MutexLock lock(&mu_);
    StudyRecord* study = FindStudy(id_or_name);
    if (study == nullptr) {
      return UnknownStudy(id_or_name);
    }
    study_id = study->study.id();
    ++study->listeners;  // events from here on are published to the listener
    *snapshot = StudySnapshot(*study);
    trials->clear();
    for (const TrialRecord& record : study->trials) {
      trials->push_back(record.trial.Full());
      trials->back().clear_attempts();
    }
  }
  absl::MutexLock lock(&listeners_mu_);
  int64_t token = next_token_++;
  listeners_[token] = {study_id, std::move(listener)};
  return token;
}

void Coordinator::Unsubscribe(int64_t token) {
  // Taking publish_mu_ waits out a publication in progress, so the listener is never called
  // afterwards.
  absl::MutexLock publish(&publish_mu_);
  std::string study_id;
  {
    absl::MutexLock lock(&listeners_mu_);
    auto it = listeners_.find(token);
    if (it == listeners_.end()) return;
    study_id = it->second.first;
    listeners_.erase(it);
  }
  absl::MutexLock lock(&mu_);
  auto study = studies_.find(study_id);
  if (study != studies_.end()) --study->second.listeners;
}

}  // namespace hpsearch::server
