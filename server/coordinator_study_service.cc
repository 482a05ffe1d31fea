// Coordinator: the StudyService calls (submit, read, cancel, Ask/Tell).
#include "server/coordinator.h"

#include <google/protobuf/util/message_differencer.h>

#include "absl/strings/str_cat.h"
#include "server/coordinator_internal.h"
#include "server/study_view.h"

namespace hpsearch::server {

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
    std::string worker_id =
        absl::StrCat("client:", request.client_name().empty() ? std::string("anonymous")
                                                              : request.client_name());
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
    RETURN_IF_ERROR(LeaseStatus(request.lease_id(), &lease));
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

}  // namespace hpsearch::server
