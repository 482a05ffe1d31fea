#include "server/coordinator.h"

#include <sys/random.h>

#include <google/protobuf/util/message_differencer.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/study_view.h"
#include "server/trial_spec_builder.h"

namespace hpsearch::server {
namespace {

// Lease ids are what a worker shows to act on a trial, so they come from the kernel's CSPRNG (128
// bits) rather than the generator that names studies and workers.
std::string NewLeaseId() {
  unsigned char bytes[16];
  size_t filled = 0;
  while (filled < sizeof(bytes)) {
    ssize_t got = ::getrandom(bytes + filled, sizeof(bytes) - filled, 0);
    if (got > 0) {
      filled += static_cast<size_t>(got);
    } else if (got < 0 && errno != EINTR) {
      // Only a kernel older than 3.17 lacks getrandom(); nothing safe can replace it here.
      std::fprintf(stderr, "hpsearch: getrandom() failed: %s\n", std::strerror(errno));
      std::abort();
    }
  }
  std::string id = "ls-";
  for (unsigned char b : bytes) id += absl::StrFormat("%02x", b);
  return id;
}

// The holder of a lease an Ask client took: its leases are heartbeated and told under this id.
std::string AskClientId(const std::string& client_name) {
  return absl::StrCat("client:", client_name.empty() ? std::string("anonymous") : client_name);
}

#define RETURN_IF_ERROR(expr)                                         \
  do {                                                                \
    if (absl::Status _status = (expr); !_status.ok()) return _status; \
  } while (0)

bool IsTerminal(v1::TrialState state) {
  return state == v1::TRIAL_STATE_COMPLETE || state == v1::TRIAL_STATE_PRUNED ||
         state == v1::TRIAL_STATE_FAILED;
}

bool StudyActive(v1::StudyState state) {
  return state == v1::STUDY_STATE_SEARCHING || state == v1::STUDY_STATE_FINALIZING;
}

std::string FormatSeconds(absl::Duration d) {
  return absl::StrFormat("%.3gs", absl::ToDoubleSeconds(d));
}

absl::Status CheckFinite(double value, int epoch, const std::string& name) {
  if (std::isfinite(value)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("epoch ", epoch, ": ", name, " is ", std::isnan(value) ? "NaN" : "infinite",
                   ": report only finite values (leave a metric out when it was not measured)"));
}

absl::Status ValidateEpochMetrics(const v1::EpochMetrics& m) {
  if (m.epoch() < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("epoch ", m.epoch(), " is not valid: epochs are numbered from 1"));
  }
  if (m.has_train_loss()) RETURN_IF_ERROR(CheckFinite(m.train_loss(), m.epoch(), "train_loss"));
  if (m.has_val_loss()) RETURN_IF_ERROR(CheckFinite(m.val_loss(), m.epoch(), "val_loss"));
  if (m.has_val_accuracy()) {
    RETURN_IF_ERROR(CheckFinite(m.val_accuracy(), m.epoch(), "val_accuracy"));
  }
  if (m.has_val_f1()) RETURN_IF_ERROR(CheckFinite(m.val_f1(), m.epoch(), "val_f1"));
  if (m.has_val_f1_macro()) {
    RETURN_IF_ERROR(CheckFinite(m.val_f1_macro(), m.epoch(), "val_f1_macro"));
  }
  RETURN_IF_ERROR(CheckFinite(m.samples_per_second(), m.epoch(), "samples_per_second"));
  RETURN_IF_ERROR(CheckFinite(m.wall_time_seconds(), m.epoch(), "wall_time_seconds"));
  for (const auto& [name, value] : m.extra()) RETURN_IF_ERROR(CheckFinite(value, m.epoch(), name));
  return absl::OkStatus();
}

}  // namespace

Coordinator::Coordinator(db::ResultsStore* store, Clock* clock, CoordinatorOptions options)
    : store_(store), clock_(clock), options_(std::move(options)) {}

Coordinator::~Coordinator() = default;

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Create(db::ResultsStore* store,
                                                                 Clock* clock,
                                                                 CoordinatorOptions options) {
  if (options.default_artifacts_root.empty()) {
    std::filesystem::path db_path(store->path());
    options.default_artifacts_root =
        (std::filesystem::absolute(db_path).parent_path() / "artifacts").string();
  }
  std::unique_ptr<Coordinator> coordinator(new Coordinator(store, clock, std::move(options)));
  RETURN_IF_ERROR(coordinator->Load());
  RETURN_IF_ERROR(coordinator->Finish(store->Sequence(), true));
  return coordinator;
}

absl::Status Coordinator::Load() {
  absl::StatusOr<std::vector<db::StoredStudy>> stored = store_->LoadAll();
  if (!stored.ok()) return stored.status();
  absl::MutexLock lock(&mu_);
  absl::Time now = clock_->Now();
  for (db::StoredStudy& s : *stored) {
    std::string id = s.study.id();
    StudyRecord& study = studies_[id];
    study.study = std::move(s.study);
    absl::StatusOr<std::unique_ptr<Sampler>> sampler = MakeSampler(study.study.spec());
    absl::StatusOr<std::unique_ptr<Pruner>> pruner = MakePruner(study.study.spec());
    if (!sampler.ok()) return sampler.status();
    if (!pruner.ok()) return pruner.status();
    study.sampler = std::move(*sampler);
    study.pruner = std::move(*pruner);
    study_order_.push_back(id);
    study_by_name_[study.study.spec().name()] = id;
    for (db::StoredTrial& st : s.trials) {
      int number = st.trial.number();
      if (number != static_cast<int>(study.trials.size())) {
        return absl::DataLossError(
            absl::StrCat("study ", id, " in ", store_->path(), " has a gap before trial ", number));
      }
      TrialRecord record;
      record.trial_id = st.trial_id;
      record.trial = std::move(st.trial);
      if (record.trial.kind() == v1::TRIAL_KIND_SEARCH) ++study.search_created;
      if (record.trial.state() == v1::TRIAL_STATE_WAITING) study.waiting.insert(number);
      if (record.trial.state() == v1::TRIAL_STATE_RUNNING) {
        ++study.running;
        record.lease_id = st.lease_id;
        record.attempt_started = absl::FromUnixMillis(record.trial.started_unix_ms());
        // A stored lease keeps its deadline but never expires before the grace period ends.
        absl::Time deadline =
            std::max(absl::FromUnixMillis(st.lease_deadline_ms), now + options_.restart_grace);
        leases_[st.lease_id] = Lease{id, number, record.trial.worker_id(), deadline};
      }
      study.trials.push_back(std::move(record));
      UpdateHistory(&study, study.trials.back());
    }
  }
  for (const std::string& id : study_order_) {
    RETURN_IF_ERROR(MaybeFinishSearch(&studies_[id]));
  }
  return absl::OkStatus();
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
  auto ended = ended_leases_.find(lease_id);
  if (ended != ended_leases_.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("lease ", lease_id, " is no longer valid (", ended->second.reason,
                     "): stop this attempt and do not report it further"));
  }
  return absl::NotFoundError(
      absl::StrCat("lease ", lease_id, " is unknown to this coordinator: acquire a new trial"));
}

void Coordinator::UpdateHistory(StudyRecord* study, const TrialRecord& record) {
  const v1::Trial& trial = record.trial;
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
  RETURN_IF_ERROR(
      store_->UpdateTrial(record->trial_id, record->trial, record->lease_id, deadline_ms));
  UpdateHistory(study, *record);
  EmitTrial(*study, *record);
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
  for (const TrialRecord& record : study.trials) ++counts[record.trial.state()];
  for (int state = 0; state < v1::TrialState_ARRAYSIZE; ++state) {
    if (counts[state] > 0) {
      (*snapshot.mutable_trial_counts())[db::TrialStateName(static_cast<v1::TrialState>(state))] =
          counts[state];
    }
  }
  return snapshot;
}

void Coordinator::EmitTrial(const StudyRecord& study, const TrialRecord& record) {
  PendingEvent pending;
  pending.study_id = study.study.id();
  pending.event.set_unix_ms(NowMs());
  v1::Trial* trial = pending.event.mutable_trial();
  *trial = record.trial;
  trial->clear_attempts();
  pending_events_.push_back(std::move(pending));
}

void Coordinator::EmitStudy(const StudyRecord& study) {
  PendingEvent pending;
  pending.study_id = study.study.id();
  pending.event.set_unix_ms(NowMs());
  *pending.event.mutable_study() = StudySnapshot(study);
  pending_events_.push_back(std::move(pending));
}

absl::Status Coordinator::Finish(uint64_t sequence, bool work_changed) {
  RETURN_IF_ERROR(store_->Sync(sequence));
  absl::MutexLock publish(&publish_mu_);
  std::vector<PendingEvent> events;
  {
    absl::MutexLock lock(&mu_);
    events.swap(pending_events_);
  }
  std::function<void()> work_available;
  std::vector<std::pair<std::string, Listener>> listeners;
  {
    absl::MutexLock lock(&listeners_mu_);
    work_available = work_available_;
    if (!events.empty()) {
      for (const auto& [token, entry] : listeners_) listeners.push_back(entry);
    }
  }
  for (const PendingEvent& pending : events) {
    for (const auto& [study_id, listener] : listeners) {
      if (study_id == pending.study_id) listener(pending.event);
    }
  }
  if (work_changed && work_available) work_available();
  return absl::OkStatus();
}

bool Coordinator::SearchOpen(const StudyRecord& study) {
  const v1::StudySpec& spec = study.study.spec();
  StudyBudget budget = BudgetOf(spec);
  if (study.search_created >= budget.n_trials) return false;
  if (budget.time_limit > absl::ZeroDuration() &&
      clock_->Now() >= absl::FromUnixMillis(study.study.created_unix_ms()) + budget.time_limit) {
    return false;
  }
  SampleRequest request;
  request.spec = &spec;
  request.trial_number = static_cast<int>(study.trials.size());
  request.history = &study.history;
  return !study.sampler->Exhausted(request);
}

absl::Status Coordinator::SetStudyState(StudyRecord* study, v1::StudyState state,
                                        const std::string& reason) {
  study->study.set_state(state);
  study->study.set_state_reason(reason);
  if (!StudyActive(state)) study->study.set_ended_unix_ms(NowMs());
  RETURN_IF_ERROR(store_->PutStudy(study->study));
  RETURN_IF_ERROR(AddEvent(*study, -1, 0, "", "study_" + db::StudyStateName(state), reason));
  EmitStudy(*study);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------- trials

absl::StatusOr<Coordinator::TrialRecord*> Coordinator::CreateTrial(
    StudyRecord* study, v1::TrialKind kind, std::vector<v1::ParamAssignment> params, uint64_t seed,
    int source_number) {
  TrialRecord record;
  v1::Trial& trial = record.trial;
  trial.set_study_id(study->study.id());
  trial.set_number(static_cast<int>(study->trials.size()));
  trial.set_kind(kind);
  trial.set_state(v1::TRIAL_STATE_WAITING);
  trial.set_attempt(1);
  trial.set_seed(seed);
  for (v1::ParamAssignment& param : params) *trial.add_params() = std::move(param);
  trial.set_source_trial_number(source_number);
  trial.set_created_unix_ms(NowMs());
  absl::StatusOr<int64_t> trial_id = store_->InsertTrial(trial);
  if (!trial_id.ok()) return trial_id.status();
  record.trial_id = *trial_id;
  study->waiting.insert(trial.number());
  study->trials.push_back(std::move(record));
  TrialRecord* created = &study->trials.back();
  UpdateHistory(study, *created);
  EmitTrial(*study, *created);
  return created;
}

absl::StatusOr<Coordinator::TrialRecord*> Coordinator::CreateSearchTrial(StudyRecord* study) {
  const v1::StudySpec& spec = study->study.spec();
  SampleRequest request;
  request.spec = &spec;
  request.trial_number = static_cast<int>(study->trials.size());
  request.seed = SamplingSeed(spec.seed(), request.trial_number);
  request.history = &study->history;
  if (study->search_created < spec.enqueue_size()) {
    const v1::EnqueuedTrial& enqueued = spec.enqueue(study->search_created);
    request.fixed.assign(enqueued.params().begin(), enqueued.params().end());
  }
  absl::StatusOr<std::vector<v1::ParamAssignment>> sampled = study->sampler->Sample(request);
  if (!sampled.ok()) return sampled.status();
  // Search-space order first, then any enqueued name outside the space.
  std::vector<v1::ParamAssignment> params;
  std::vector<bool> fixed_used(request.fixed.size(), false);
  for (const v1::ParameterSpec& p : spec.search_space()) {
    bool found = false;
    for (size_t i = 0; i < request.fixed.size() && !found; ++i) {
      if (request.fixed[i].name() == p.name()) {
        params.push_back(request.fixed[i]);
        fixed_used[i] = found = true;
      }
    }
    for (size_t i = 0; i < sampled->size() && !found; ++i) {
      if ((*sampled)[i].name() == p.name()) {
        params.push_back((*sampled)[i]);
        found = true;
      }
    }
  }
  for (size_t i = 0; i < request.fixed.size(); ++i) {
    if (!fixed_used[i]) params.push_back(request.fixed[i]);
  }
  // The trial seed is the study seed plus the trial number: readable, and a final trial reuses it.
  absl::StatusOr<TrialRecord*> record =
      CreateTrial(study, v1::TRIAL_KIND_SEARCH, std::move(params),
                  spec.seed() + static_cast<uint64_t>(request.trial_number), -1);
  if (record.ok()) ++study->search_created;
  return record;
}

absl::StatusOr<v1::TrialSpec> Coordinator::StartAttempt(StudyRecord* study, TrialRecord* record,
                                                        const std::string& worker_id) {
  absl::Time now = clock_->Now();
  std::string lease_id = NewLeaseId();
  absl::Time deadline = now + options_.lease_ttl;
  v1::Trial& trial = record->trial;
  trial.set_state(v1::TRIAL_STATE_RUNNING);
  trial.set_worker_id(worker_id);
  trial.set_started_unix_ms(absl::ToUnixMillis(now));
  trial.set_ended_unix_ms(0);
  study->waiting.erase(trial.number());
  ++study->running;
  record->lease_id = lease_id;
  record->attempt_started = now;
  record->prune_requested = false;
  leases_[lease_id] = Lease{study->study.id(), trial.number(), worker_id, deadline};
  v1::TrialAttempt attempt;
  attempt.set_attempt(trial.attempt());
  attempt.set_state(v1::TRIAL_STATE_RUNNING);
  attempt.set_worker_id(worker_id);
  attempt.set_started_unix_ms(absl::ToUnixMillis(now));
  RETURN_IF_ERROR(store_->PutAttempt(record->trial_id, attempt, lease_id));
  RETURN_IF_ERROR(PersistTrial(study, record));
  LeaseGrant grant{lease_id, deadline, options_.heartbeat_interval};
  return BuildTrialSpec(study->study, trial, grant, options_.default_artifacts_root);
}

absl::StatusOr<std::optional<v1::TrialSpec>> Coordinator::AcquireFrom(
    StudyRecord* study, const std::string& worker_id) {
  if (!StudyActive(study->study.state())) return std::nullopt;
  if (study->running >= BudgetOf(study->study.spec()).parallelism) return std::nullopt;
  TrialRecord* record = nullptr;
  if (!study->waiting.empty()) {
    record = &study->trials[*study->waiting.begin()];
  } else if (study->study.state() == v1::STUDY_STATE_SEARCHING && SearchOpen(*study)) {
    absl::StatusOr<TrialRecord*> created = CreateSearchTrial(study);
    if (!created.ok()) return created.status();
    record = *created;
  } else {
    return std::nullopt;
  }
  absl::StatusOr<v1::TrialSpec> spec = StartAttempt(study, record, worker_id);
  if (!spec.ok()) return spec.status();
  return std::optional<v1::TrialSpec>(std::move(*spec));
}

absl::Status Coordinator::EndAttempt(StudyRecord* study, TrialRecord* record, v1::TrialState state,
                                     const std::string& error, bool retryable,
                                     v1::LeaseOrder order) {
  v1::Trial& trial = record->trial;
  const std::string lease_id = record->lease_id;
  leases_.erase(lease_id);
  --study->running;
  record->lease_id.clear();
  int64_t now_ms = NowMs();
  v1::TrialAttempt attempt;
  attempt.set_attempt(trial.attempt());
  attempt.set_state(state);
  attempt.set_worker_id(trial.worker_id());
  attempt.set_started_unix_ms(trial.started_unix_ms());
  attempt.set_ended_unix_ms(now_ms);
  attempt.set_error(error);
  RETURN_IF_ERROR(store_->PutAttempt(record->trial_id, attempt, lease_id));

  StudyBudget budget = BudgetOf(study->study.spec());
  std::string event;
  if (state == v1::TRIAL_STATE_COMPLETE || state == v1::TRIAL_STATE_PRUNED) {
    trial.set_state(state);
    trial.set_ended_unix_ms(now_ms);
    if (trial.kind() == v1::TRIAL_KIND_SEARCH) {
      std::optional<double> objective = TrialObjective(study->study.spec(), trial.epochs());
      if (objective) trial.set_objective_value(*objective);
    }
    event = db::TrialStateName(state);
  } else if (retryable && trial.attempt() <= budget.max_retries) {
    // Back to WAITING: the attempt and its epochs become history, the next lease is attempt + 1.
    v1::TrialAttempt* history = trial.add_attempts();
    *history = attempt;
    *history->mutable_epochs() = trial.epochs();
    trial.clear_epochs();
    trial.set_attempt(trial.attempt() + 1);
    trial.set_state(v1::TRIAL_STATE_WAITING);
    trial.set_worker_id("");
    trial.set_started_unix_ms(0);
    trial.set_error(error);
    study->waiting.insert(trial.number());
    event = "retry";
  } else {
    trial.set_state(v1::TRIAL_STATE_FAILED);
    trial.set_ended_unix_ms(now_ms);
    trial.set_error(retryable ? absl::StrCat(error, " (attempt ", trial.attempt(), " of ",
                                             budget.max_retries + 1, ", no retry left)")
                              : error);
    event = "failed";
  }
  EndedLease& ended = ended_leases_[lease_id];
  ended.order = order;
  ended.reason = error.empty()
                     ? absl::StrCat("trial ", trial.number(), " attempt ", attempt.attempt(),
                                    " ended ", db::TrialStateName(state))
                     : error;
  ended.final_state = trial.state();
  RETURN_IF_ERROR(PersistTrial(study, record));
  RETURN_IF_ERROR(AddEvent(*study, trial.number(), attempt.attempt(), attempt.worker_id(),
                           "trial_" + event, error));

  if (!IsTerminal(trial.state())) return absl::OkStatus();
  if (trial.kind() == v1::TRIAL_KIND_FINAL) {
    if (study->study.state() != v1::STUDY_STATE_FINALIZING) return absl::OkStatus();
    if (trial.state() == v1::TRIAL_STATE_COMPLETE) {
      return SetStudyState(study, v1::STUDY_STATE_COMPLETE,
                           absl::StrCat(study->study.state_reason(), "; final trial ",
                                        trial.number(), " completed"));
    }
    return SetStudyState(study, v1::STUDY_STATE_FAILED,
                         absl::StrCat("final trial ", trial.number(), " ",
                                      db::TrialStateName(trial.state()), ": ", trial.error()));
  }
  return MaybeFinishSearch(study);
}

absl::Status Coordinator::MaybeFinishSearch(StudyRecord* study) {
  if (study->study.state() != v1::STUDY_STATE_SEARCHING) return absl::OkStatus();
  if (SearchOpen(*study) || !study->waiting.empty() || study->running > 0) return absl::OkStatus();
  const v1::StudySpec& spec = study->study.spec();
  const TrialRecord* best = nullptr;
  int complete = 0, failed = 0, pruned = 0;
  for (const TrialRecord& record : study->trials) {
    const v1::Trial& trial = record.trial;
    if (trial.kind() != v1::TRIAL_KIND_SEARCH) continue;
    if (trial.state() == v1::TRIAL_STATE_FAILED) ++failed;
    if (trial.state() == v1::TRIAL_STATE_PRUNED) ++pruned;
    if (trial.state() != v1::TRIAL_STATE_COMPLETE || !trial.has_objective_value()) continue;
    ++complete;
    if (best == nullptr ||
        BetterObjective(spec, trial.objective_value(), best->trial.objective_value())) {
      best = &record;
    }
  }
  if (best == nullptr) {
    return SetStudyState(
        study, v1::STUDY_STATE_FAILED,
        absl::StrCat("no search trial completed (", study->search_created, " trials: ", failed,
                     " failed, ", pruned, " pruned); see their errors with `hpsearch trials ",
                     spec.name(), "`"));
  }
  std::string reason = absl::StrFormat(
      "trial %d is the best: %s %.6g (%s, %s epoch) among %d complete trials", best->trial.number(),
      ObjectiveMetric(spec), best->trial.objective_value(),
      MinimizeObjective(spec) ? "minimize" : "maximize",
      spec.objective().from_epoch() == v1::EPOCH_SELECTION_BEST ? "best" : "last", complete);
  study->study.set_best_trial_number(best->trial.number());
  study->study.set_best_objective_value(best->trial.objective_value());
  if (!FinalStageEnabled(spec)) {
    return SetStudyState(study, v1::STUDY_STATE_COMPLETE, reason + "; final stage disabled");
  }
  std::vector<v1::ParamAssignment> params(best->trial.params().begin(), best->trial.params().end());
  int source = best->trial.number();
  uint64_t seed = best->trial.seed();
  absl::StatusOr<TrialRecord*> final_trial =
      CreateTrial(study, v1::TRIAL_KIND_FINAL, std::move(params), seed, source);
  if (!final_trial.ok()) return final_trial.status();
  study->study.set_final_trial_number((*final_trial)->trial.number());
  bool on_validation = spec.final_stage().retrain_on() == v1::RETRAIN_ON_TRAIN_VALIDATION;
  return SetStudyState(study, v1::STUDY_STATE_FINALIZING,
                       absl::StrCat(reason, "; final trial ", (*final_trial)->trial.number(),
                                    " retrains it with the same parameters and seed on ",
                                    on_validation ? "train + validation (validation metrics stay "
                                                    "empty: validation data is trained on)"
                                                  : "train"));
}

absl::Status Coordinator::RecordEpoch(StudyRecord* study, TrialRecord* record,
                                      const v1::EpochMetrics& metrics, bool* duplicate) {
  v1::Trial& trial = record->trial;
  int last = trial.epochs_size() == 0 ? 0 : trial.epochs(trial.epochs_size() - 1).epoch();
  *duplicate = false;
  if (metrics.epoch() <= last) {
    *duplicate = true;
    return absl::OkStatus();
  }
  if (metrics.epoch() != last + 1) {
    return absl::OutOfRangeError(absl::StrCat(
        "trial ", trial.number(), " attempt ", trial.attempt(), ": epoch ", metrics.epoch(),
        " reported after epoch ", last, "; epochs must arrive in order (expected ", last + 1, ")"));
  }
  absl::StatusOr<bool> inserted =
      store_->InsertEpoch(record->trial_id, trial.attempt(), record->lease_id, metrics, NowMs());
  if (!inserted.ok()) return inserted.status();
  *trial.add_epochs() = metrics;
  UpdateHistory(study, *record);
  PendingEvent pending;
  pending.study_id = study->study.id();
  pending.event.set_unix_ms(NowMs());
  v1::EpochEvent* epoch = pending.event.mutable_epoch();
  epoch->set_trial_number(trial.number());
  epoch->set_attempt(trial.attempt());
  *epoch->mutable_metrics() = metrics;
  pending_events_.push_back(std::move(pending));
  return absl::OkStatus();
}

// --------------------------------------------------------------------------------- study service

absl::StatusOr<v1::SubmitStudyResponse> Coordinator::SubmitStudy(
    const v1::SubmitStudyRequest& request) {
  v1::StudySpec spec = request.spec();
  v1::SubmitStudyResponse response;
  std::vector<std::string> warnings;
  if (options_.validate) {
    RETURN_IF_ERROR(options_.validate(&spec, &warnings));
  } else if (spec.name().empty()) {
    return absl::InvalidArgumentError("name: a study needs a name");
  }
  for (std::string& warning : warnings) response.add_warnings(std::move(warning));
  absl::StatusOr<std::unique_ptr<Sampler>> sampler = MakeSampler(spec);
  if (!sampler.ok()) return sampler.status();
  absl::StatusOr<std::unique_ptr<Pruner>> pruner = MakePruner(spec);
  if (!pruner.ok()) return pruner.status();
  uint64_t sequence;
  {
    absl::MutexLock lock(&mu_);
    if (StudyRecord* existing = FindStudy(spec.name())) {
      if (!request.resume_if_exists()) {
        return absl::AlreadyExistsError(
            absl::StrCat("study '", spec.name(), "' exists (", existing->study.id(),
                         "): resume it (submit with resume) or choose another name"));
      }
      if (!google::protobuf::util::MessageDifferencer::Equals(existing->study.spec(), spec)) {
        return absl::AlreadyExistsError(
            absl::StrCat("study '", spec.name(),
                         "' exists with a different spec: a resumed study must be "
                         "submitted unchanged; choose another name for a changed search"));
      }
      response.set_study_id(existing->study.id());
      response.set_resumed(true);
      return response;
    }
    std::string id = NewId("st-");
    StudyRecord& study = studies_[id];
    study.study.set_id(id);
    *study.study.mutable_spec() = std::move(spec);
    study.study.set_state(v1::STUDY_STATE_SEARCHING);
    study.study.set_created_unix_ms(NowMs());
    study.sampler = std::move(*sampler);
    study.pruner = std::move(*pruner);
    study_order_.push_back(id);
    study_by_name_[study.study.spec().name()] = id;
    RETURN_IF_ERROR(store_->PutStudy(study.study));
    RETURN_IF_ERROR(AddEvent(study, -1, 0, "", "study_submitted", study.study.spec().name()));
    EmitStudy(study);
    RETURN_IF_ERROR(MaybeFinishSearch(&study));  // n_trials 0 ends at once
    response.set_study_id(id);
    sequence = store_->Sequence();
  }
  RETURN_IF_ERROR(Finish(sequence, true));
  return response;
}

absl::StatusOr<v1::Study> Coordinator::GetStudy(const std::string& id_or_name) {
  absl::MutexLock lock(&mu_);
  StudyRecord* study = FindStudy(id_or_name);
  if (study == nullptr) {
    return absl::NotFoundError(absl::StrCat("no study with id or name '", id_or_name, "'"));
  }
  return StudySnapshot(*study);
}

std::vector<v1::Study> Coordinator::ListStudies() {
  absl::MutexLock lock(&mu_);
  std::vector<v1::Study> studies;
  for (const std::string& id : study_order_) studies.push_back(StudySnapshot(studies_[id]));
  return studies;
}

absl::StatusOr<std::vector<v1::Trial>> Coordinator::ListTrials(const std::string& id_or_name) {
  absl::MutexLock lock(&mu_);
  StudyRecord* study = FindStudy(id_or_name);
  if (study == nullptr) {
    return absl::NotFoundError(absl::StrCat("no study with id or name '", id_or_name, "'"));
  }
  std::vector<v1::Trial> trials;
  for (const TrialRecord& record : study->trials) {
    trials.push_back(record.trial);
    trials.back().clear_attempts();
  }
  return trials;
}

absl::StatusOr<v1::Trial> Coordinator::GetTrial(const std::string& id_or_name, int number) {
  absl::MutexLock lock(&mu_);
  StudyRecord* study = FindStudy(id_or_name);
  if (study == nullptr) {
    return absl::NotFoundError(absl::StrCat("no study with id or name '", id_or_name, "'"));
  }
  if (number < 0 || number >= static_cast<int>(study->trials.size())) {
    return absl::NotFoundError(absl::StrCat("study '", id_or_name, "' has no trial ", number,
                                            " (it has ", study->trials.size(), ")"));
  }
  return study->trials[number].trial;
}

absl::StatusOr<v1::Study> Coordinator::CancelStudy(const std::string& id_or_name,
                                                   const std::string& reason) {
  uint64_t sequence;
  v1::Study snapshot;
  {
    absl::MutexLock lock(&mu_);
    StudyRecord* study = FindStudy(id_or_name);
    if (study == nullptr) {
      return absl::NotFoundError(absl::StrCat("no study with id or name '", id_or_name, "'"));
    }
    if (!StudyActive(study->study.state())) {
      return absl::FailedPreconditionError(
          absl::StrCat("study '", study->study.spec().name(), "' already ended ",
                       db::StudyStateName(study->study.state()), "; nothing to cancel"));
    }
    std::string why = absl::StrCat("study ", study->study.spec().name(), " was cancelled",
                                   reason.empty() ? "" : ": ", reason);
    RETURN_IF_ERROR(SetStudyState(study, v1::STUDY_STATE_CANCELLED, why));
    for (TrialRecord& record : study->trials) {
      if (record.trial.state() == v1::TRIAL_STATE_RUNNING) {
        RETURN_IF_ERROR(
            EndAttempt(study, &record, v1::TRIAL_STATE_FAILED, why, false, v1::LEASE_ORDER_CANCEL));
      } else if (record.trial.state() == v1::TRIAL_STATE_WAITING) {
        record.trial.set_state(v1::TRIAL_STATE_FAILED);
        record.trial.set_error(why);
        record.trial.set_ended_unix_ms(NowMs());
        RETURN_IF_ERROR(PersistTrial(study, &record));
      }
    }
    study->waiting.clear();
    snapshot = StudySnapshot(*study);
    sequence = store_->Sequence();
  }
  RETURN_IF_ERROR(Finish(sequence, true));
  return snapshot;
}

absl::StatusOr<v1::TrialSpec> Coordinator::Ask(const v1::AskRequest& request) {
  uint64_t sequence;
  std::optional<v1::TrialSpec> spec;
  {
    absl::MutexLock lock(&mu_);
    StudyRecord* study = FindStudy(request.study());
    if (study == nullptr) {
      return absl::NotFoundError(absl::StrCat("no study with id or name '", request.study(), "'"));
    }
    std::string worker_id = AskClientId(request.client_name());
    workers_[worker_id].set_name(worker_id);
    absl::StatusOr<std::optional<v1::TrialSpec>> acquired = AcquireFrom(study, worker_id);
    if (!acquired.ok()) return acquired.status();
    if (!acquired->has_value()) {
      return absl::UnavailableError(
          absl::StrCat("no trial of study '", study->study.spec().name(), "' can start now (state ",
                       db::StudyStateName(study->study.state()), ", ", study->running,
                       " running of parallelism ", BudgetOf(study->study.spec()).parallelism,
                       "): ask again later"));
    }
    spec = std::move(**acquired);
    sequence = store_->Sequence();
  }
  RETURN_IF_ERROR(Finish(sequence, false));
  return *spec;
}

absl::StatusOr<v1::Trial> Coordinator::Tell(const v1::TellRequest& request) {
  uint64_t sequence;
  v1::Trial trial;
  {
    absl::MutexLock lock(&mu_);
    Lease* lease = nullptr;
    RETURN_IF_ERROR(LeaseStatus(request.lease_id(), AskClientId(request.client_name()), &lease));
    StudyRecord* study = &studies_[lease->study_id];
    TrialRecord* record = &study->trials[lease->trial_number];
    for (const v1::EpochMetrics& metrics : request.epochs()) {
      RETURN_IF_ERROR(ValidateEpochMetrics(metrics));
      bool duplicate = false;
      RETURN_IF_ERROR(RecordEpoch(study, record, metrics, &duplicate));
    }
    if (request.has_result()) {
      if (request.result().has_train()) {
        RETURN_IF_ERROR(store_->PutTrainSummary(record->trial_id, request.result().train()));
        *record->trial.mutable_result()->mutable_train() = request.result().train();
      }
      if (request.result().has_test()) {
        RETURN_IF_ERROR(store_->PutTestMetrics(record->trial_id, request.result().test()));
        *record->trial.mutable_result()->mutable_test() = request.result().test();
      }
    }
    switch (request.state()) {
      case v1::TRIAL_STATE_COMPLETE:
      case v1::TRIAL_STATE_PRUNED: {
        v1::TrialState state = request.state();
        std::string error;
        if (state == v1::TRIAL_STATE_COMPLETE && record->trial.kind() == v1::TRIAL_KIND_SEARCH &&
            !TrialObjective(study->study.spec(), record->trial.epochs())) {
          state = v1::TRIAL_STATE_FAILED;
          error = absl::StrCat("told COMPLETE without any epoch reporting the objective metric '",
                               ObjectiveMetric(study->study.spec()), "'");
        }
        RETURN_IF_ERROR(EndAttempt(study, record, state, error, false, v1::LEASE_ORDER_LOST));
        break;
      }
      case v1::TRIAL_STATE_FAILED:
        RETURN_IF_ERROR(
            EndAttempt(study, record, v1::TRIAL_STATE_FAILED,
                       request.error().empty() ? "failed (told by the client)" : request.error(),
                       false, v1::LEASE_ORDER_LOST));
        break;
      default:
        return absl::InvalidArgumentError(
            "state: Tell needs TRIAL_STATE_COMPLETE, TRIAL_STATE_PRUNED or TRIAL_STATE_FAILED");
    }
    ended_leases_[request.lease_id()].completed_by_lease = true;
    trial = record->trial;
    sequence = store_->Sequence();
  }
  RETURN_IF_ERROR(Finish(sequence, true));
  return trial;
}

// -------------------------------------------------------------------------------- worker service

absl::StatusOr<v1::RegisterResponse> Coordinator::Register(const v1::RegisterRequest& request) {
  uint64_t sequence;
  v1::RegisterResponse response;
  {
    absl::MutexLock lock(&mu_);
    std::string worker_id = request.previous_worker_id();
    if (worker_id.empty()) worker_id = NewId("wk-");
    workers_[worker_id] = request.info();
    worker_last_write_[worker_id] = clock_->Now();
    RETURN_IF_ERROR(store_->PutWorker(worker_id, request.info(), NowMs()));
    response.set_worker_id(worker_id);
    response.set_heartbeat_interval_ms(absl::ToInt64Milliseconds(options_.heartbeat_interval));
    response.set_lease_ttl_ms(absl::ToInt64Milliseconds(options_.lease_ttl));
    sequence = store_->Sequence();
  }
  RETURN_IF_ERROR(Finish(sequence, false));
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
    for (const std::string& id : study_order_) {
      StudyRecord* study = &studies_[id];
      absl::StatusOr<std::optional<v1::TrialSpec>> acquired = AcquireFrom(study, worker_id);
      if (!acquired.ok()) return acquired.status();
      if (acquired->has_value()) {
        spec = std::move(*acquired);
        break;
      }
    }
    sequence = store_->Sequence();
  }
  RETURN_IF_ERROR(Finish(sequence, false));
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
      } else if (it != leases_.end()) {
        status->set_order(v1::LEASE_ORDER_LOST);
        status->set_reason(absl::StrCat("lease ", lease_id, " belongs to worker ",
                                        it->second.worker_id, ", not ", request.worker_id()));
      } else if (auto ended = ended_leases_.find(lease_id); ended != ended_leases_.end()) {
        status->set_order(ended->second.order == v1::LEASE_ORDER_CANCEL ? v1::LEASE_ORDER_CANCEL
                                                                        : v1::LEASE_ORDER_LOST);
        status->set_reason(ended->second.reason);
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
      RETURN_IF_ERROR(store_->TouchWorker(request.worker_id(), absl::ToUnixMillis(now)));
    }
    sequence = store_->Sequence();
  }
  RETURN_IF_ERROR(Finish(sequence, false));
  return response;
}

absl::StatusOr<v1::ReportEpochResponse> Coordinator::ReportEpoch(
    const v1::ReportEpochRequest& request) {
  RETURN_IF_ERROR(ValidateEpochMetrics(request.metrics()));
  uint64_t sequence;
  v1::ReportEpochResponse response;
  {
    absl::MutexLock lock(&mu_);
    Lease* lease = nullptr;
    RETURN_IF_ERROR(LeaseStatus(request.lease_id(), request.worker_id(), &lease));
    lease->deadline = std::max(lease->deadline, clock_->Now() + options_.lease_ttl);
    StudyRecord* study = &studies_[lease->study_id];
    TrialRecord* record = &study->trials[lease->trial_number];
    bool duplicate = false;
    RETURN_IF_ERROR(RecordEpoch(study, record, request.metrics(), &duplicate));
    response.set_duplicate(duplicate);
    if (!duplicate && !record->prune_requested && record->trial.kind() == v1::TRIAL_KIND_SEARCH) {
      PruneRequest prune;
      prune.spec = &study->study.spec();
      prune.trial_number = record->trial.number();
      prune.epoch = request.metrics().epoch();
      prune.history = &study->history;
      record->prune_requested = study->pruner->ShouldPrune(prune);
    }
    response.set_decision(record->prune_requested ? v1::EPOCH_DECISION_PRUNE
                                                  : v1::EPOCH_DECISION_CONTINUE);
    sequence = store_->Sequence();
  }
  RETURN_IF_ERROR(Finish(sequence, false));
  return response;
}

absl::Status Coordinator::ReportResult(const v1::ReportResultRequest& request) {
  uint64_t sequence;
  {
    absl::MutexLock lock(&mu_);
    Lease* lease = nullptr;
    RETURN_IF_ERROR(LeaseStatus(request.lease_id(), request.worker_id(), &lease));
    TrialRecord* record = &studies_[lease->study_id].trials[lease->trial_number];
    if (request.has_train()) {
      RETURN_IF_ERROR(store_->PutTrainSummary(record->trial_id, request.train()));
      *record->trial.mutable_result()->mutable_train() = request.train();
    } else if (request.has_test()) {
      for (const auto& [name, value] : request.test().extra()) {
        RETURN_IF_ERROR(CheckFinite(value, 0, "test " + name));
      }
      RETURN_IF_ERROR(store_->PutTestMetrics(record->trial_id, request.test()));
      *record->trial.mutable_result()->mutable_test() = request.test();
    } else {
      return absl::InvalidArgumentError("result: set train or test");
    }
    sequence = store_->Sequence();
  }
  return Finish(sequence, false);
}

absl::StatusOr<v1::TrialState> Coordinator::CompleteTrial(const v1::CompleteTrialRequest& request) {
  uint64_t sequence;
  v1::TrialState result_state;
  {
    absl::MutexLock lock(&mu_);
    auto ended = ended_leases_.find(request.lease_id());
    if (ended != ended_leases_.end() && ended->second.completed_by_lease) {
      return ended->second.final_state;  // a retried CompleteTrial whose reply was lost
    }
    Lease* lease = nullptr;
    RETURN_IF_ERROR(LeaseStatus(request.lease_id(), request.worker_id(), &lease));
    StudyRecord* study = &studies_[lease->study_id];
    TrialRecord* record = &study->trials[lease->trial_number];
    const v1::TrialResult& result = request.result();
    if (result.has_train()) {
      RETURN_IF_ERROR(store_->PutTrainSummary(record->trial_id, result.train()));
      *record->trial.mutable_result()->mutable_train() = result.train();
    }
    if (result.has_test()) {
      RETURN_IF_ERROR(store_->PutTestMetrics(record->trial_id, result.test()));
      *record->trial.mutable_result()->mutable_test() = result.test();
    }
    if (!result.extra().empty()) {
      RETURN_IF_ERROR(store_->PutResultExtra(record->trial_id, result));
      *record->trial.mutable_result()->mutable_extra() = result.extra();
    }
    v1::TrialState state = request.pruned() ? v1::TRIAL_STATE_PRUNED : v1::TRIAL_STATE_COMPLETE;
    std::string error;
    if (state == v1::TRIAL_STATE_COMPLETE && record->trial.kind() == v1::TRIAL_KIND_SEARCH &&
        !TrialObjective(study->study.spec(), record->trial.epochs())) {
      state = v1::TRIAL_STATE_FAILED;
      error = absl::StrCat("the trial finished without any epoch reporting the objective metric '",
                           ObjectiveMetric(study->study.spec()),
                           "': make the command print it in its epoch lines");
    }
    RETURN_IF_ERROR(EndAttempt(study, record, state, error, false, v1::LEASE_ORDER_LOST));
    EndedLease& done = ended_leases_[request.lease_id()];
    done.completed_by_lease = true;
    result_state = done.final_state;
    sequence = store_->Sequence();
  }
  RETURN_IF_ERROR(Finish(sequence, true));
  return result_state;
}

absl::StatusOr<v1::TrialState> Coordinator::FailTrial(const v1::FailTrialRequest& request) {
  uint64_t sequence;
  v1::TrialState state;
  {
    absl::MutexLock lock(&mu_);
    Lease* lease = nullptr;
    RETURN_IF_ERROR(LeaseStatus(request.lease_id(), request.worker_id(), &lease));
    StudyRecord* study = &studies_[lease->study_id];
    TrialRecord* record = &study->trials[lease->trial_number];
    std::string error = request.error().empty() ? "failed (no reason given)" : request.error();
    RETURN_IF_ERROR(EndAttempt(study, record, v1::TRIAL_STATE_FAILED, error, request.retryable(),
                               v1::LEASE_ORDER_LOST));
    state = record->trial.state();
    sequence = store_->Sequence();
  }
  RETURN_IF_ERROR(Finish(sequence, true));
  return state;
}

// ------------------------------------------------------------------------------------------ time

absl::Status Coordinator::TickLocked() {
  absl::Time now = clock_->Now();
  std::vector<std::pair<std::string, Lease>> due;
  std::vector<std::string> timed_out;
  for (const auto& [lease_id, lease] : leases_) {
    if (lease.deadline <= now) {
      due.emplace_back(lease_id, lease);
      continue;
    }
    StudyRecord& study = studies_[lease.study_id];
    absl::Duration timeout = BudgetOf(study.study.spec()).trial_timeout;
    if (timeout > absl::ZeroDuration() &&
        now - study.trials[lease.trial_number].attempt_started > timeout) {
      timed_out.push_back(lease_id);
    }
  }
  for (const auto& [lease_id, lease] : due) {
    StudyRecord* study = &studies_[lease.study_id];
    TrialRecord* record = &study->trials[lease.trial_number];
    if (record->lease_id != lease_id) continue;
    RETURN_IF_ERROR(EndAttempt(
        study, record, v1::TRIAL_STATE_FAILED,
        absl::StrCat("lease expired: worker ", lease.worker_id, " sent no heartbeat or report for ",
                     FormatSeconds(options_.lease_ttl), " (the worker died or lost the network)"),
        true, v1::LEASE_ORDER_LOST));
  }
  for (const std::string& lease_id : timed_out) {
    auto it = leases_.find(lease_id);
    if (it == leases_.end()) continue;
    StudyRecord* study = &studies_[it->second.study_id];
    TrialRecord* record = &study->trials[it->second.trial_number];
    RETURN_IF_ERROR(
        EndAttempt(study, record, v1::TRIAL_STATE_FAILED,
                   absl::StrCat("timed out: ran longer than budget.trial_timeout_seconds = ",
                                FormatSeconds(BudgetOf(study->study.spec()).trial_timeout)),
                   true, v1::LEASE_ORDER_CANCEL));
  }
  for (const std::string& id : study_order_) {
    StudyRecord* study = &studies_[id];
    if (study->study.state() != v1::STUDY_STATE_SEARCHING) continue;
    StudyBudget budget = BudgetOf(study->study.spec());
    if (budget.time_limit == absl::ZeroDuration() ||
        now < absl::FromUnixMillis(study->study.created_unix_ms()) + budget.time_limit) {
      continue;
    }
    // No trial starts after the time limit; waiting ones never will.
    for (int number : std::vector<int>(study->waiting.begin(), study->waiting.end())) {
      TrialRecord* record = &study->trials[number];
      record->trial.set_state(v1::TRIAL_STATE_FAILED);
      record->trial.set_error(absl::StrCat("not started: the study's time limit (",
                                           FormatSeconds(budget.time_limit), ") was reached"));
      record->trial.set_ended_unix_ms(absl::ToUnixMillis(now));
      RETURN_IF_ERROR(PersistTrial(study, record));
    }
    study->waiting.clear();
    RETURN_IF_ERROR(MaybeFinishSearch(study));
  }
  return absl::OkStatus();
}

absl::Status Coordinator::Tick() {
  uint64_t sequence;
  {
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(TickLocked());
    sequence = store_->Sequence();
  }
  return Finish(sequence, true);
}

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
      return absl::NotFoundError(absl::StrCat("no study with id or name '", id_or_name, "'"));
    }
    study_id = study->study.id();
    *snapshot = StudySnapshot(*study);
    trials->clear();
    for (const TrialRecord& record : study->trials) {
      trials->push_back(record.trial);
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
  absl::MutexLock lock(&listeners_mu_);
  listeners_.erase(token);
}

}  // namespace hpsearch::server
