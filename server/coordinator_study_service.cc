// Coordinator: the StudyService calls (submit, read, cancel, Ask/Tell).
#include "server/coordinator.h"

#include <google/protobuf/util/message_differencer.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "server/coordinator_internal.h"
#include "server/sampling/sampler_kinds.h"
#include "server/study_file/study_view.h"

namespace hpsearch::server {
namespace {

// The holder of a lease an Ask client took: its leases are heartbeated and told under this id.
std::string AskClientId(const std::string& client_name) {
  return absl::StrCat("client:", client_name.empty() ? std::string("anonymous") : client_name);
}

using HashMap = google::protobuf::Map<std::string, std::string>;

// The submitted data hashes, lower-cased; INVALID_ARGUMENT naming the first malformed one.
absl::StatusOr<HashMap> NormalizeDataHashes(const HashMap& hashes) {
  HashMap normalized;
  for (const auto& [path, sha256] : hashes) {
    if (path.empty()) {
      return absl::InvalidArgumentError(
          "data_sha256: a hash has an empty path; key each hash by its data file's path");
    }
    std::string lower = absl::AsciiStrToLower(sha256);
    if (lower.size() != 64 || lower.find_first_not_of("0123456789abcdef") != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("data_sha256['", path, "']: '", sha256,
                       "' is not a sha256: send the 64 hex digits of the file's SHA-256"));
    }
    normalized[path] = lower;
  }
  return normalized;
}

// "budget.n_trials: 3 -> 4; ..." for the first few fields where two specs differ.
std::string SpecDifferences(const v1::StudySpec& stored, const v1::StudySpec& submitted) {
  std::string report;
  google::protobuf::util::MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&report);
  if (differencer.Compare(stored, submitted)) return "";
  std::vector<std::string> lines = absl::StrSplit(report, '\n', absl::SkipWhitespace());
  std::string out;
  for (size_t i = 0; i < lines.size() && i < 5; ++i) {
    std::string line = lines[i].size() > 160 ? lines[i].substr(0, 160) + "..." : lines[i];
    absl::StrAppend(&out, i == 0 ? "" : "; ", line);
  }
  if (lines.size() > 5) absl::StrAppend(&out, "; and ", lines.size() - 5, " more");
  return out;
}

// The data files whose hashes differ between the stored and the submitted ones.
std::string HashDifferences(const HashMap& stored, const HashMap& submitted) {
  std::vector<std::string> differences;
  for (const auto& [path, sha256] : stored) {
    auto it = submitted.find(path);
    if (it == submitted.end()) {
      differences.push_back(absl::StrCat(path, ": hashed at submission, not sent now"));
    } else if (it->second != sha256) {
      differences.push_back(
          absl::StrCat(path, ": sha256 ", sha256, " at submission, ", it->second, " now"));
    }
  }
  for (const auto& [path, sha256] : submitted) {
    if (stored.find(path) == stored.end()) {
      differences.push_back(absl::StrCat(path, ": not hashed at submission, sent now"));
    }
  }
  std::sort(differences.begin(), differences.end());
  return absl::StrJoin(differences, "; ");
}

// OK when `spec` and `hashes` may resume `existing`; else FAILED_PRECONDITION naming what differs.
// Hashes are compared only when both sides have them: a client that sends none is not checked, and
// a study stored without any adopts the first ones sent.
absl::Status CheckResumable(const v1::Study& existing, const v1::StudySpec& spec,
                            const HashMap& hashes) {
  std::string spec_differences = SpecDifferences(existing.spec(), spec);
  std::string data_differences;
  if (!existing.data_sha256().empty() && !hashes.empty()) {
    data_differences = HashDifferences(existing.data_sha256(), hashes);
  }
  if (spec_differences.empty() && data_differences.empty()) return absl::OkStatus();
  std::string what;
  if (!spec_differences.empty()) absl::StrAppend(&what, "spec: ", spec_differences);
  if (!data_differences.empty()) {
    absl::StrAppend(&what, what.empty() ? "" : "; ", "data: ", data_differences);
  }
  return absl::FailedPreconditionError(
      absl::StrCat("study '", spec.name(), "' (", existing.id(),
                   ") exists and differs from this submission in ", what,
                   ": a resumed study must be submitted with the same spec and data (a larger "
                   "budget extends it with --n-trials N); submit a changed search under another "
                   "name"));
}

}  // namespace

// --------------------------------------------------------------------------------- study service

absl::StatusOr<v1::SubmitStudyResponse> Coordinator::SubmitStudy(
    const v1::SubmitStudyRequest& request) {
  v1::StudySpec spec = request.spec();
  if (!request.study_file_text().empty()) {
    if (request.has_spec()) {
      return absl::InvalidArgumentError(
          "study_file_text: send either a study file's text or a spec, not both");
    }
    if (!options_.read_study_file) {
      return absl::UnimplementedError(
          "study_file_text: this coordinator does not read study files; send a spec");
    }
    std::string dir = request.study_file_dir().empty() ? "/" : request.study_file_dir();
    if (dir[0] != '/') {
      return absl::InvalidArgumentError(
          absl::StrCat("study_file_dir: '", dir,
                       "' is not absolute: name a folder on the coordinator's machine"));
    }
    absl::StatusOr<v1::StudySpec> read = options_.read_study_file(request.study_file_text(), dir);
    if (!read.ok()) return read.status();
    spec = *std::move(read);
  }
  v1::SubmitStudyResponse response;
  std::vector<std::string> warnings;
  if (options_.validate) {
    HPSEARCH_RETURN_IF_ERROR(options_.validate(&spec, &warnings));
  } else if (spec.name().empty()) {
    return absl::InvalidArgumentError("name: a study needs a name");
  }
  for (std::string& warning : warnings) response.add_warnings(std::move(warning));
  // Unvalidated submissions store the TPE options they run with too: a restart takes a stored
  // TPE spec without them for an older hpsearch's (coordinator_restore.cc).
  FillRunOptions(spec.mutable_sampler(), /*stored=*/false);
  absl::StatusOr<HashMap> hashes = NormalizeDataHashes(request.data_sha256());
  if (!hashes.ok()) return hashes.status();
  absl::StatusOr<std::unique_ptr<Sampler>> sampler = MakeSampler(spec);
  if (!sampler.ok()) return sampler.status();
  absl::StatusOr<std::unique_ptr<Pruner>> pruner = MakePruner(spec);
  if (!pruner.ok()) return pruner.status();
  uint64_t sequence;
  bool extended = false;
  {
    absl::MutexLock lock(&mu_);
    if (StudyRecord* existing = FindStudy(spec.name())) {
      if (!request.resume_if_exists()) {
        return absl::AlreadyExistsError(
            absl::StrCat("study '", spec.name(), "' exists (", existing->study.id(),
                         "): resume it (submit with resume) or choose another name"));
      }
      const v1::BudgetSpec& stored_budget = existing->study.spec().budget();
      // A study stored before budget.max_failures existed keeps running without it.
      if (!stored_budget.has_max_failures()) spec.mutable_budget()->clear_max_failures();
      // With extend_budget only the budget may differ, and replaces the stored one (ChangeBudget).
      v1::StudySpec same_budget = spec;
      if (request.extend_budget()) *same_budget.mutable_budget() = stored_budget;
      HPSEARCH_RETURN_IF_ERROR(CheckResumable(existing->study, same_budget, *hashes));
      response.set_study_id(existing->study.id());
      response.set_resumed(true);
      if (!google::protobuf::util::MessageDifferencer::Equals(stored_budget, spec.budget())) {
        HPSEARCH_RETURN_IF_ERROR(ChangeBudget(existing, spec.budget()));
        extended = true;
      }
      if (existing->study.data_sha256().empty() && !hashes->empty()) {
        *existing->study.mutable_data_sha256() = std::move(*hashes);
        HPSEARCH_RETURN_IF_ERROR(store_->PutStudy(existing->study));
      }
      sequence = store_->Sequence();
    } else {
      std::string id = NewId("st-");
      StudyRecord& study = studies_[id];
      study.study.set_id(id);
      *study.study.mutable_spec() = std::move(spec);
      study.study.set_state(v1::STUDY_STATE_SEARCHING);
      study.study.set_created_unix_ms(NowMs());
      *study.study.mutable_data_sha256() = std::move(*hashes);
      study.sampler = std::move(*sampler);
      study.pruner = std::move(*pruner);
      study_order_.push_back(id);
      study_by_name_[study.study.spec().name()] = id;
      HPSEARCH_RETURN_IF_ERROR(store_->PutStudy(study.study));
      HPSEARCH_RETURN_IF_ERROR(
          AddEvent(study, -1, 0, "", "study_submitted", study.study.spec().name()));
      EmitStudy(study);
      HPSEARCH_RETURN_IF_ERROR(MaybeFinishSearch(&study));  // n_trials 0 ends at once
      response.set_study_id(id);
      sequence = store_->Sequence();
    }
  }
  HPSEARCH_RETURN_IF_ERROR(Finish(sequence, !response.resumed() || extended));
  return response;
}

absl::Status Coordinator::ChangeBudget(StudyRecord* study, const v1::BudgetSpec& budget) {
  const v1::StudySpec& spec = study->study.spec();
  const int stored_n_trials = BudgetOf(spec).n_trials;
  const std::string name = spec.name();
  if (budget.n_trials() < study->search_created) {
    return absl::FailedPreconditionError(
        absl::StrCat("study '", name, "' has run ", study->search_created,
                     " search trials already: budget.n_trials ", budget.n_trials(),
                     " would take them back; give at least ", study->search_created));
  }
  if (study->study.state() == v1::STUDY_STATE_FINALIZING) {
    return absl::FailedPreconditionError(absl::StrCat(
        "study '", name, "' is running its final trial: change its budget after it ends"));
  }
  const bool reopen = !StudyActive(study->study.state()) && budget.n_trials() > stored_n_trials;
  if (!StudyActive(study->study.state()) && !reopen) {
    return absl::FailedPreconditionError(
        absl::StrCat("study '", name, "' ended ", db::StudyStateName(study->study.state()),
                     "; only a larger budget.n_trials (now ", stored_n_trials,
                     ") extends it: pass --n-trials N"));
  }
  *study->study.mutable_spec()->mutable_budget() = budget;
  HPSEARCH_RETURN_IF_ERROR(store_->PutStudy(study->study));
  const std::string what =
      absl::StrCat("budget changed (n_trials ", stored_n_trials, " -> ", budget.n_trials(), ")");
  if (!reopen) {
    HPSEARCH_RETURN_IF_ERROR(AddEvent(*study, -1, 0, "", "study_budget", what));
    EmitStudy(*study);
    return absl::OkStatus();
  }
  // Extended: its trials and their history stay; the search goes on, and when it ends the best is
  // chosen again and the final stage (if enabled) runs again on it.
  study->study.clear_best_trial_number();
  study->study.clear_best_objective_value();
  study->study.set_ended_unix_ms(0);
  HPSEARCH_RETURN_IF_ERROR(
      SetStudyState(study, v1::STUDY_STATE_SEARCHING,
                    absl::StrCat("extended after it ended ",
                                 db::StudyStateName(study->study.state()), ": ", what)));
  return MaybeFinishSearch(study);
}

absl::StatusOr<v1::Study> Coordinator::GetStudy(const std::string& id_or_name) {
  absl::MutexLock lock(&mu_);
  StudyRecord* study = FindStudy(id_or_name);
  if (study == nullptr) {
    return UnknownStudy(id_or_name);
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
    return UnknownStudy(id_or_name);
  }
  std::vector<v1::Trial> trials;
  for (const TrialRecord& record : study->trials) {
    trials.push_back(record.trial.Full());
    trials.back().clear_attempts();
  }
  return trials;
}

absl::StatusOr<v1::Trial> Coordinator::GetTrial(const std::string& id_or_name, int number) {
  absl::MutexLock lock(&mu_);
  StudyRecord* study = FindStudy(id_or_name);
  if (study == nullptr) {
    return UnknownStudy(id_or_name);
  }
  if (number < 0 || number >= static_cast<int>(study->trials.size())) {
    return absl::NotFoundError(absl::StrCat("study '", id_or_name, "' has no trial ", number,
                                            " (it has ", study->trials.size(), ")"));
  }
  return study->trials[number].trial.Full();
}

absl::StatusOr<v1::Study> Coordinator::CancelStudy(const std::string& id_or_name,
                                                   const std::string& reason) {
  uint64_t sequence;
  v1::Study snapshot;
  {
    absl::MutexLock lock(&mu_);
    StudyRecord* study = FindStudy(id_or_name);
    if (study == nullptr) {
      return UnknownStudy(id_or_name);
    }
    if (!StudyActive(study->study.state())) {
      return absl::FailedPreconditionError(
          absl::StrCat("study '", study->study.spec().name(), "' already ended ",
                       db::StudyStateName(study->study.state()), "; nothing to cancel"));
    }
    std::string why = absl::StrCat("study ", study->study.spec().name(), " was cancelled",
                                   reason.empty() ? "" : ": ", reason);
    HPSEARCH_RETURN_IF_ERROR(SetStudyState(study, v1::STUDY_STATE_CANCELLED, why));
    HPSEARCH_RETURN_IF_ERROR(StopActiveTrials(study, why));
    snapshot = StudySnapshot(*study);
    sequence = store_->Sequence();
  }
  HPSEARCH_RETURN_IF_ERROR(Finish(sequence, true));
  return snapshot;
}

absl::StatusOr<v1::TrialSpec> Coordinator::Ask(const v1::AskRequest& request) {
  if (request.client_name().empty()) {
    return absl::InvalidArgumentError(
        "client_name: is empty; name this client (e.g. host-pid): its leases are heartbeated "
        "(worker_id \"client:NAME\") and told under that name");
  }
  uint64_t sequence;
  std::optional<v1::TrialSpec> spec;
  {
    absl::MutexLock lock(&mu_);
    StudyRecord* study = FindStudy(request.study());
    if (study == nullptr) return UnknownStudy(request.study());
    HPSEARCH_RETURN_IF_ERROR(AskRefusal(*study, request.include_final(), /*before=*/true));
    std::string worker_id = AskClientId(request.client_name());
    workers_[worker_id].set_name(worker_id);
    absl::StatusOr<std::optional<v1::TrialSpec>> acquired = AcquireFrom(study, worker_id);
    if (!acquired.ok()) return acquired.status();
    if (!acquired->has_value()) {
      HPSEARCH_RETURN_IF_ERROR(AskRefusal(*study, request.include_final(), /*before=*/false));
      return absl::UnavailableError(absl::StrCat(
          "study '", study->study.spec().name(), "' has budget.parallelism ",
          BudgetOf(study->study.spec()).parallelism, " trials running: ask again later"));
    }
    spec = std::move(**acquired);
    sequence = store_->Sequence();
  }
  HPSEARCH_RETURN_IF_ERROR(Finish(sequence, false));
  return *spec;
}

absl::Status Coordinator::AskRefusal(const StudyRecord& study, bool include_final, bool before) {
  const std::string& name = study.study.spec().name();
  const v1::StudyState state = study.study.state();
  if (!StudyActive(state)) {
    return absl::FailedPreconditionError(
        absl::StrCat("study '", name, "' is ", db::StudyStateName(state),
                     state == v1::STUDY_STATE_CANCELLED ? "" : " (its search is over)",
                     study.study.state_reason().empty() ? "" : ": ", study.study.state_reason(),
                     "; no trial is left to ask for"));
  }
  if (state == v1::STUDY_STATE_FINALIZING && !include_final) {
    return absl::FailedPreconditionError(
        absl::StrCat("study '", name,
                     "' finished its search and is finalizing: only its final trial is left "
                     "(set include_final to ask for it)"));
  }
  if (before) return absl::OkStatus();
  if (state == v1::STUDY_STATE_SEARCHING && study.waiting.empty() && !SearchOpen(study)) {
    const StudyBudget budget = BudgetOf(study.study.spec());
    std::string why = study.search_created >= budget.n_trials
                          ? absl::StrCat("every trial of its budget (n_trials ", budget.n_trials,
                                         ") was handed out")
                      : PastTimeLimit(study)
                          ? std::string("its time limit (budget.time_limit_seconds) has passed")
                          : std::string("its sampler has no new point left");
    return absl::OutOfRangeError(absl::StrCat("study '", name, "' is exhausted: ", why, "; ",
                                              study.running,
                                              " still running, and the study ends when they are "
                                              "told"));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Trial> Coordinator::Tell(const v1::TellRequest& request) {
  // Everything is checked before anything is written: a refused Tell changes nothing.
  if (request.lease_id().empty()) {
    return absl::InvalidArgumentError("lease_id: is empty; send the lease_id Ask returned");
  }
  if (request.client_name().empty()) {
    return absl::InvalidArgumentError(
        "client_name: is empty; send the client_name of the Ask that returned the lease");
  }
  if (request.state() != v1::TRIAL_STATE_COMPLETE && request.state() != v1::TRIAL_STATE_PRUNED &&
      request.state() != v1::TRIAL_STATE_FAILED) {
    return absl::InvalidArgumentError(
        "state: Tell needs TRIAL_STATE_COMPLETE, TRIAL_STATE_PRUNED or TRIAL_STATE_FAILED");
  }
  if (request.has_value()) {
    if (!std::isfinite(request.value())) {
      return absl::InvalidArgumentError(
          absl::StrCat("value: is ", std::isnan(request.value()) ? "NaN" : "infinite",
                       "; tell a finite objective value, or state TRIAL_STATE_FAILED"));
    }
    if (request.state() == v1::TRIAL_STATE_FAILED) {
      return absl::InvalidArgumentError(
          "value: a FAILED trial has no objective value; leave value unset or tell COMPLETE");
    }
  }
  for (const v1::EpochMetrics& metrics : request.epochs()) {
    HPSEARCH_RETURN_IF_ERROR(ValidateEpochMetrics(metrics));
  }
  uint64_t sequence;
  v1::Trial trial;
  {
    absl::MutexLock lock(&mu_);
    absl::StatusOr<std::optional<db::EndedLease>> ended = FindEndedLease(request.lease_id());
    if (!ended.ok()) return ended.status();
    if (ended->has_value() && EndedByHolder(**ended)) {
      // A second Tell: a retry whose reply was lost gets the trial as it is now; a different
      // answer is refused, naming the first.
      const v1::Trial told =
          studies_[(*ended)->study_id].trials[(*ended)->trial_number].trial.Full();
      const bool same_state = told.state() == request.state();
      const bool same_value = !request.has_value() || (told.has_objective_value() &&
                                                       told.objective_value() == request.value());
      if (same_state && same_value) return told;
      return absl::FailedPreconditionError(absl::StrCat(
          "trial ", told.number(), " was already told ", db::TrialStateName(told.state()),
          told.has_objective_value() ? absl::StrCat(" with value ", told.objective_value()) : "",
          "; a trial is told once (this Tell said ", db::TrialStateName(request.state()),
          request.has_value() ? absl::StrCat(" with value ", request.value()) : "", ")"));
    }
    Lease* lease = nullptr;
    HPSEARCH_RETURN_IF_ERROR(
        LeaseStatus(request.lease_id(), AskClientId(request.client_name()), &lease));
    StudyRecord* study = &studies_[lease->study_id];
    TrialRecord* record = &study->trials[lease->trial_number];
    const v1::Trial& current = record->trial.Mutable();
    int last = current.epochs_size() == 0 ? 0 : current.epochs(current.epochs_size() - 1).epoch();
    google::protobuf::RepeatedPtrField<v1::EpochMetrics> all_epochs = current.epochs();
    for (const v1::EpochMetrics& metrics : request.epochs()) {
      if (metrics.epoch() <= last) continue;  // already reported: a duplicate
      if (metrics.epoch() != last + 1) {
        return absl::OutOfRangeError(absl::StrCat(
            "epochs: epoch ", metrics.epoch(), " follows epoch ", last,
            "; epochs must arrive in order (expected ", last + 1, "); nothing was recorded"));
      }
      last = metrics.epoch();
      *all_epochs.Add() = metrics;
    }
    if (request.state() == v1::TRIAL_STATE_COMPLETE && !request.has_value() &&
        current.kind() == v1::TRIAL_KIND_SEARCH &&
        !TrialObjective(study->study.spec(), all_epochs)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "value: trial ", current.number(),
          " told COMPLETE without an objective: set value, or report the objective metric '",
          ObjectiveMetric(study->study.spec()), "' in an epoch; nothing was recorded"));
    }
    for (const v1::EpochMetrics& metrics : request.epochs()) {
      bool duplicate = false;
      HPSEARCH_RETURN_IF_ERROR(RecordEpoch(study, record, metrics, &duplicate));
    }
    if (request.has_result()) {
      if (request.result().has_train()) {
        HPSEARCH_RETURN_IF_ERROR(
            store_->PutTrainSummary(record->trial_id, request.result().train()));
        *record->trial.Mutable().mutable_result()->mutable_train() = request.result().train();
      }
      if (request.result().has_test()) {
        HPSEARCH_RETURN_IF_ERROR(store_->PutTestMetrics(record->trial_id, request.result().test()));
        *record->trial.Mutable().mutable_result()->mutable_test() = request.result().test();
      }
    }
    if (request.has_value()) record->told_value = request.value();
    switch (request.state()) {
      case v1::TRIAL_STATE_COMPLETE:
      case v1::TRIAL_STATE_PRUNED: {
        HPSEARCH_RETURN_IF_ERROR(
            EndAttempt(study, record, request.state(), "", false, db::LeaseEnd::kWorker));
        break;
      }
      case v1::TRIAL_STATE_FAILED:
        HPSEARCH_RETURN_IF_ERROR(
            EndAttempt(study, record, v1::TRIAL_STATE_FAILED,
                       request.error().empty() ? "failed (told by the client)" : request.error(),
                       false, db::LeaseEnd::kWorker));
        break;
      default:
        return absl::InvalidArgumentError(
            "state: Tell needs TRIAL_STATE_COMPLETE, TRIAL_STATE_PRUNED or TRIAL_STATE_FAILED");
    }
    trial = record->trial.Full();
    sequence = store_->Sequence();
  }
  HPSEARCH_RETURN_IF_ERROR(Finish(sequence, true));
  return trial;
}

}  // namespace hpsearch::server
