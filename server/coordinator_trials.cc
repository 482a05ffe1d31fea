// Coordinator: the trial life cycle (create, lease, end attempts, retries), the final stage, epoch
// recording and time (Tick: lease expiry, per-trial timeout, study time limit).
#include "server/coordinator.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/coordinator_internal.h"
#include "server/study_file/study_view.h"
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

}  // namespace

// ---------------------------------------------------------------------------------------- trials

absl::StatusOr<Coordinator::TrialRecord*> Coordinator::CreateTrial(
    StudyRecord* study, v1::TrialKind kind, std::vector<v1::ParamAssignment> params, uint64_t seed,
    int source_number) {
  TrialRecord record;
  v1::Trial& trial = record.trial.Mutable();
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
  UpdateHistory(study, created->trial.head());  // whole: a new trial is not packed
  EmitTrial(*study, created->trial.head());
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
  v1::Trial& trial = record->trial.Mutable();
  trial.set_state(v1::TRIAL_STATE_RUNNING);
  trial.set_worker_id(worker_id);
  trial.set_started_unix_ms(absl::ToUnixMillis(now));
  trial.set_ended_unix_ms(0);
  study->waiting.erase(trial.number());
  ++study->running;
  record->lease_id = lease_id;
  record->attempt_started = now;
  record->prune_requested = false;
  record->told_value.reset();
  leases_[lease_id] = Lease{study->study.id(), trial.number(), worker_id, deadline, ""};
  v1::TrialAttempt attempt;
  attempt.set_attempt(trial.attempt());
  attempt.set_state(v1::TRIAL_STATE_RUNNING);
  attempt.set_worker_id(worker_id);
  attempt.set_started_unix_ms(absl::ToUnixMillis(now));
  HPSEARCH_RETURN_IF_ERROR(store_->PutAttempt(record->trial_id, attempt, lease_id, std::nullopt));
  HPSEARCH_RETURN_IF_ERROR(PersistTrial(study, record));
  LeaseGrant grant{lease_id, deadline, options_.heartbeat_interval};
  return LeasedSpec(*study, trial, grant);
}

absl::StatusOr<bool> Coordinator::ModelStored(const StudyRecord& study, int number) {
  if (number < 0 || number >= static_cast<int>(study.trials.size())) return false;
  absl::StatusOr<std::optional<db::ArtifactRecord>> artifact =
      store_->LoadArtifact(study.trials[number].trial_id, 0);
  if (!artifact.ok()) return artifact.status();
  return artifact->has_value();
}

absl::StatusOr<v1::TrialSpec> Coordinator::LeasedSpec(const StudyRecord& study,
                                                      const v1::Trial& trial,
                                                      const LeaseGrant& grant) {
  v1::TrialSpec spec = BuildTrialSpec(study.study, trial, grant, options_.default_artifacts_root);
  if (trial.kind() == v1::TRIAL_KIND_FINAL) {
    absl::StatusOr<bool> stored = ModelStored(study, trial.source_trial_number());
    if (!stored.ok()) return stored.status();
    spec.set_retrain_on(FinalRetrainOn(study.study.spec(), *stored));
  }
  return spec;
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
                                     db::LeaseEnd ended_by, bool stopped_by_user) {
  v1::Trial& trial = record->trial.Mutable();
  if (state != v1::TRIAL_STATE_PRUNED) trial.clear_prune_reason();  // asked, but it ended otherwise
  if (trial.has_progress() || record->progress_written != absl::InfinitePast()) {
    trial.clear_progress();
    record->progress_written = absl::InfinitePast();
    HPSEARCH_RETURN_IF_ERROR(store_->DeleteProgress(record->trial_id));
  }
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
  attempt.set_stopped(stopped_by_user && state == v1::TRIAL_STATE_FAILED);
  HPSEARCH_RETURN_IF_ERROR(store_->PutAttempt(record->trial_id, attempt, lease_id, ended_by));

  StudyBudget budget = BudgetOf(study->study.spec());
  // The attempts that failed, this one included: a stop by the user is not a failure.
  int failed_attempts = trial.attempt();
  for (const v1::TrialAttempt& past : trial.attempts()) failed_attempts -= past.stopped() ? 1 : 0;
  std::string event;
  if (state == v1::TRIAL_STATE_COMPLETE || state == v1::TRIAL_STATE_PRUNED) {
    trial.set_state(state);
    trial.set_ended_unix_ms(now_ms);
    if (trial.kind() == v1::TRIAL_KIND_SEARCH) {
      std::optional<double> objective = record->told_value
                                            ? record->told_value
                                            : TrialObjective(study->study.spec(), trial.epochs());
      if (objective) trial.set_objective_value(*objective);
    }
    event = db::TrialStateName(state);
  } else if (attempt.stopped() || (retryable && failed_attempts <= budget.max_retries)) {
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
    event = attempt.stopped() ? "stopped" : "retry";
  } else {
    trial.set_state(v1::TRIAL_STATE_FAILED);
    trial.set_ended_unix_ms(now_ms);
    trial.set_error(retryable ? absl::StrCat(error, " (failed attempt ", failed_attempts, " of ",
                                             budget.max_retries + 1, ", no retry left)")
                              : error);
    event = "failed";
  }
  const std::string trial_error = trial.error();
  // From here `trial` reads only scalar fields: PersistTrial packs an ended trial.
  HPSEARCH_RETURN_IF_ERROR(PersistTrial(study, record));
  HPSEARCH_RETURN_IF_ERROR(AddEvent(*study, trial.number(), attempt.attempt(), attempt.worker_id(),
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
                                      db::TrialStateName(trial.state()), ": ", trial_error));
  }
  if (trial.state() == v1::TRIAL_STATE_FAILED)
    HPSEARCH_RETURN_IF_ERROR(MaybeFailDoomedStudy(study));
  return MaybeFinishSearch(study);
}

absl::Status Coordinator::MaybeFailDoomedStudy(StudyRecord* study) {
  if (study->study.state() != v1::STUDY_STATE_SEARCHING) return absl::OkStatus();
  const int limit = BudgetOf(study->study.spec()).max_failures;
  if (limit <= 0) return absl::OkStatus();
  // The search trials that ended, in the order they ended: count the failures at the end.
  // Scalar fields only (trial.head()); the last one's error is read whole below.
  std::vector<const HeldTrial*> ended;
  for (const TrialRecord& record : study->trials) {
    const v1::Trial& head = record.trial.head();
    if (head.kind() == v1::TRIAL_KIND_SEARCH && IsTerminal(head.state())) {
      ended.push_back(&record.trial);
    }
  }
  std::stable_sort(ended.begin(), ended.end(), [](const HeldTrial* a, const HeldTrial* b) {
    return a->head().ended_unix_ms() < b->head().ended_unix_ms();
  });
  int in_a_row = 0;
  for (auto it = ended.rbegin(); it != ended.rend(); ++it) {
    if ((*it)->head().state() != v1::TRIAL_STATE_FAILED) break;
    ++in_a_row;
  }
  if (in_a_row < limit) return absl::OkStatus();
  const v1::Trial last = ended.back()->Full();
  const std::string why = absl::StrCat(
      "the last ", in_a_row, " search trials failed in a row (budget.max_failures ", limit,
      "): the study stopped early; the last error (trial ", last.number(),
      "): ", last.error().substr(0, last.error().find('\n')), "; see all with `hpsearch trials ",
      study->study.spec().name(), " --db ", store_->path(), "`");
  HPSEARCH_RETURN_IF_ERROR(SetStudyState(study, v1::STUDY_STATE_FAILED, why));
  return StopActiveTrials(study, why);
}

absl::Status Coordinator::StopActiveTrials(StudyRecord* study, const std::string& why) {
  for (TrialRecord& record : study->trials) {
    if (record.trial.head().state() == v1::TRIAL_STATE_RUNNING) {
      HPSEARCH_RETURN_IF_ERROR(
          EndAttempt(study, &record, v1::TRIAL_STATE_FAILED, why, false, db::LeaseEnd::kCancelled));
    } else if (record.trial.head().state() == v1::TRIAL_STATE_WAITING) {
      v1::Trial& trial = record.trial.Mutable();
      trial.set_state(v1::TRIAL_STATE_FAILED);
      trial.set_error(why);
      trial.set_ended_unix_ms(NowMs());
      HPSEARCH_RETURN_IF_ERROR(PersistTrial(study, &record));
    }
  }
  study->waiting.clear();
  return absl::OkStatus();
}

absl::Status Coordinator::MaybeFinishSearch(StudyRecord* study) {
  if (study->study.state() != v1::STUDY_STATE_SEARCHING) return absl::OkStatus();
  if (SearchOpen(*study) || !study->waiting.empty() || study->running > 0) return absl::OkStatus();
  const v1::StudySpec& spec = study->study.spec();
  const TrialRecord* best = nullptr;
  int complete = 0, failed = 0, pruned = 0;
  for (const TrialRecord& record : study->trials) {
    const v1::Trial& trial = record.trial.head();  // scalar fields only
    if (trial.kind() != v1::TRIAL_KIND_SEARCH) continue;
    if (trial.state() == v1::TRIAL_STATE_FAILED) ++failed;
    if (trial.state() == v1::TRIAL_STATE_PRUNED) ++pruned;
    if (trial.state() != v1::TRIAL_STATE_COMPLETE || !trial.has_objective_value()) continue;
    ++complete;
    if (best == nullptr ||
        BetterObjective(spec, trial.objective_value(), best->trial.head().objective_value())) {
      best = &record;
    }
  }
  if (best == nullptr) {
    return SetStudyState(
        study, v1::STUDY_STATE_FAILED,
        absl::StrCat("no search trial completed (", study->search_created, " trials: ", failed,
                     " failed, ", pruned, " pruned); see their errors with `hpsearch trials ",
                     spec.name(), " --db ", store_->path(), "`"));
  }
  std::string reason = absl::StrFormat(
      "trial %d is the best: %s %.6g (%s, %s epoch) among %d complete trials",
      best->trial.head().number(), ObjectiveMetric(spec), best->trial.head().objective_value(),
      MinimizeObjective(spec) ? "minimize" : "maximize",
      spec.objective().from_epoch() == v1::EPOCH_SELECTION_BEST ? "best" : "last", complete);
  study->study.set_best_trial_number(best->trial.head().number());
  study->study.set_best_objective_value(best->trial.head().objective_value());
  if (!FinalStageEnabled(spec)) {
    return SetStudyState(study, v1::STUDY_STATE_COMPLETE, reason + "; final stage disabled");
  }
  const v1::Trial best_trial = best->trial.Full();  // its params: an ended trial is packed
  std::vector<v1::ParamAssignment> params(best_trial.params().begin(), best_trial.params().end());
  int source = best->trial.head().number();
  uint64_t seed = best->trial.head().seed();
  absl::StatusOr<TrialRecord*> final_trial =
      CreateTrial(study, v1::TRIAL_KIND_FINAL, std::move(params), seed, source);
  if (!final_trial.ok()) return final_trial.status();
  study->study.set_final_trial_number((*final_trial)->trial.head().number());
  absl::StatusOr<bool> stored = ModelStored(*study, source);
  if (!stored.ok()) return stored.status();
  const int final_number = (*final_trial)->trial.head().number();
  std::string what;
  switch (FinalRetrainOn(spec, *stored)) {
    case v1::RETRAIN_ON_REUSE:
      what = FinalRetrainConverted(spec, *stored)
                 ? absl::StrCat("reuses trial ", source,
                                "'s stored model instead of retraining it (a retrain on the same "
                                "data with the same seed would repeat it exactly) and evaluates "
                                "it on test")
                 : absl::StrCat("evaluates trial ", source,
                                "'s stored model on test without retraining (retrain_on: reuse)");
      break;
    case v1::RETRAIN_ON_TRAIN_VALIDATION:
      what =
          "retrains it with the same parameters and seed on train + validation (validation "
          "metrics stay empty: validation data is trained on)";
      break;
    default:
      what = "retrains it with the same parameters and seed on train";
      if (UsesBuiltInTrainer(spec)) {
        absl::StrAppend(&what, *stored ? " (final_stage.reuse_if_exact: false)"
                                       : " (its model is not stored, so it cannot be reused)");
      }
  }
  return SetStudyState(study, v1::STUDY_STATE_FINALIZING,
                       absl::StrCat(reason, "; final trial ", final_number, " ", what));
}

absl::Status Coordinator::RecordEpoch(StudyRecord* study, TrialRecord* record,
                                      const v1::EpochMetrics& metrics, bool* duplicate) {
  v1::Trial& trial = record->trial.Mutable();
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
  UpdateHistory(study, trial);
  if (study->listeners == 0) return absl::OkStatus();
  PendingEvent pending;
  pending.study_id = study->study.id();
  pending.event.set_unix_ms(NowMs());
  v1::EpochEvent* epoch = pending.event.mutable_epoch();
  epoch->set_trial_number(trial.number());
  epoch->set_attempt(trial.attempt());
  *epoch->mutable_metrics() = metrics;
  pending_events_.push_back(std::move(pending));
  events_pending_.store(true, std::memory_order_release);
  return absl::OkStatus();
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
    HPSEARCH_RETURN_IF_ERROR(EndAttempt(
        study, record, v1::TRIAL_STATE_FAILED,
        absl::StrCat("lease expired: worker ", lease.worker_id, " sent no heartbeat or report for ",
                     FormatSeconds(options_.lease_ttl), " (the worker died or lost the network)"),
        true, db::LeaseEnd::kExpired));
  }
  for (const std::string& lease_id : timed_out) {
    auto it = leases_.find(lease_id);
    if (it == leases_.end()) continue;
    StudyRecord* study = &studies_[it->second.study_id];
    TrialRecord* record = &study->trials[it->second.trial_number];
    HPSEARCH_RETURN_IF_ERROR(
        EndAttempt(study, record, v1::TRIAL_STATE_FAILED,
                   absl::StrCat("timed out: ran longer than budget.trial_timeout_seconds = ",
                                FormatSeconds(BudgetOf(study->study.spec()).trial_timeout)),
                   true, db::LeaseEnd::kTimeout));
  }
  for (const std::string& id : study_order_) {
    StudyRecord* study = &studies_[id];
    if (study->study.state() != v1::STUDY_STATE_SEARCHING) continue;
    if (!PastTimeLimit(*study)) continue;
    StudyBudget budget = BudgetOf(study->study.spec());
    // No trial starts after the time limit; waiting ones never will.
    for (int number : std::vector<int>(study->waiting.begin(), study->waiting.end())) {
      TrialRecord* record = &study->trials[number];
      v1::Trial& trial = record->trial.Mutable();
      trial.set_state(v1::TRIAL_STATE_FAILED);
      trial.set_error(absl::StrCat("not started: the study's time limit (",
                                   FormatSeconds(budget.time_limit), ") was reached"));
      trial.set_ended_unix_ms(absl::ToUnixMillis(now));
      HPSEARCH_RETURN_IF_ERROR(PersistTrial(study, record));
    }
    study->waiting.clear();
    HPSEARCH_RETURN_IF_ERROR(MaybeFinishSearch(study));
  }
  return absl::OkStatus();
}

absl::Status Coordinator::Tick() {
  uint64_t sequence;
  {
    absl::MutexLock lock(&mu_);
    HPSEARCH_RETURN_IF_ERROR(TickLocked());
    // The alive mark bounds what a restart counts as downtime; a second of slack is plenty for a
    // time limit, and one small write a second costs nothing.
    absl::Time now = clock_->Now();
    if (now - alive_written_ >= absl::Seconds(1)) {
      HPSEARCH_RETURN_IF_ERROR(store_->PutAlive(absl::ToUnixMillis(now)));
      alive_written_ = now;
    }
    sequence = store_->Sequence();
  }
  return Finish(sequence, true);
}

}  // namespace hpsearch::server
