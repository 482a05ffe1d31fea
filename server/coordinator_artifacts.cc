// Coordinator: what it knows about artifacts (which trial a lease uploads for, the stored records)
// and the workers' notes on their attempts. The files themselves are ArtifactService's.
#include <cctype>

#include "absl/strings/str_cat.h"
#include "server/coordinator.h"
#include "server/coordinator_internal.h"

namespace hpsearch::server {
namespace {

absl::Status CheckEventKind(const std::string& kind) {
  bool ok = !kind.empty() && kind.size() <= 40;
  for (char c : kind) ok = ok && (std::islower(static_cast<unsigned char>(c)) || c == '_');
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("event kind '", kind, "' is not a lower_snake_case word of at most 40 letters"));
}

}  // namespace

absl::Status Coordinator::ReportEvent(const v1::ReportEventRequest& request) {
  HPSEARCH_RETURN_IF_ERROR(CheckEventKind(request.kind()));
  uint64_t sequence;
  {
    absl::MutexLock lock(&mu_);
    Lease* lease = nullptr;
    HPSEARCH_RETURN_IF_ERROR(LeaseStatus(request.lease_id(), request.worker_id(), &lease));
    const StudyRecord& study = studies_[lease->study_id];
    const TrialRecord& record = study.trials[lease->trial_number];
    HPSEARCH_RETURN_IF_ERROR(AddEvent(study, record.trial.head().number(),
                                      record.trial.head().attempt(), lease->worker_id,
                                      request.kind(), request.message()));
    sequence = store_->Sequence();
  }
  return Finish(sequence, false);
}

absl::StatusOr<ArtifactOwner> Coordinator::ArtifactOwnerOf(const std::string& lease_id,
                                                           const std::string& holder) {
  absl::MutexLock lock(&mu_);
  Lease* lease = nullptr;
  HPSEARCH_RETURN_IF_ERROR(LeaseStatus(lease_id, holder, &lease));
  const StudyRecord& study = studies_[lease->study_id];
  const TrialRecord& record = study.trials[lease->trial_number];
  ArtifactOwner owner;
  owner.study_id = study.study.id();
  owner.study_name = study.study.spec().name();
  owner.trial_id = record.trial_id;
  owner.trial_number = record.trial.head().number();
  owner.attempt = record.trial.head().attempt();
  owner.kind = record.trial.head().kind();
  owner.worker_id = lease->worker_id;
  return owner;
}

absl::StatusOr<std::optional<db::ArtifactRecord>> Coordinator::LoadArtifact(int64_t trial_id,
                                                                            int attempt) {
  absl::MutexLock lock(&mu_);
  return store_->LoadArtifact(trial_id, attempt);
}

absl::Status Coordinator::RecordArtifact(const std::string& lease_id, const std::string& holder,
                                         const db::ArtifactRecord& record) {
  uint64_t sequence;
  {
    absl::MutexLock lock(&mu_);
    Lease* lease = nullptr;
    HPSEARCH_RETURN_IF_ERROR(LeaseStatus(lease_id, holder, &lease));
    const StudyRecord& study = studies_[lease->study_id];
    const TrialRecord& trial = study.trials[lease->trial_number];
    if (trial.trial_id != record.trial_id || trial.trial.head().attempt() != record.attempt) {
      return absl::FailedPreconditionError(absl::StrCat(
          "lease ", lease_id, " now holds trial ", trial.trial.head().number(), " attempt ",
          trial.trial.head().attempt(), ", not the upload's attempt ", record.attempt));
    }
    HPSEARCH_RETURN_IF_ERROR(store_->PutArtifact(record));
    int64_t bytes = 0;
    for (const db::ArtifactFileRecord& file : record.files) bytes += file.bytes;
    HPSEARCH_RETURN_IF_ERROR(
        AddEvent(study, trial.trial.head().number(), trial.trial.head().attempt(), lease->worker_id,
                 "artifact_stored",
                 absl::StrCat(record.files.size(), " files, ", bytes, " bytes in ", record.dir)));
    sequence = store_->Sequence();
  }
  return Finish(sequence, false);
}

absl::StatusOr<db::ArtifactRecord> Coordinator::FindArtifact(const std::string& study_name,
                                                             int trial_number) {
  absl::MutexLock lock(&mu_);
  StudyRecord* study = FindStudy(study_name);
  if (study == nullptr) {
    return UnknownStudy(study_name);
  }
  const std::string name = study->study.spec().name();
  int number = trial_number;
  if (number < 0) {
    if (!study->study.has_final_trial_number()) {
      return absl::NotFoundError(absl::StrCat("study '", name, "' has no final trial yet (it is ",
                                              db::StudyStateName(study->study.state()),
                                              "): wait for it, or name a trial"));
    }
    number = study->study.final_trial_number();
  }
  if (number >= static_cast<int>(study->trials.size())) {
    return absl::NotFoundError(absl::StrCat("study '", name, "' has no trial ", number, " (it has ",
                                            study->trials.size(), ")"));
  }
  const TrialRecord& record = study->trials[number];
  absl::StatusOr<std::optional<db::ArtifactRecord>> artifact =
      store_->LoadArtifact(record.trial_id, 0);
  if (!artifact.ok()) return artifact.status();
  if (!artifact->has_value()) {
    return absl::NotFoundError(
        absl::StrCat("trial ", number, " of study '", name, "' has no stored artifact (it is ",
                     db::TrialStateName(record.trial.head().state()),
                     "; artifacts are uploaded when a trial completes, see the events table)"));
  }
  return std::move(**artifact);
}

}  // namespace hpsearch::server
