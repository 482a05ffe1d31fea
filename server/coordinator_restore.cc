// Coordinator: restart. Rebuilds the in-memory state from the results store and re-arms stored
// leases with the restart grace.
#include "server/coordinator.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "server/coordinator_internal.h"
#include "server/sampling/sampler_kinds.h"

namespace hpsearch::server {

absl::Status Coordinator::Load() {
  absl::StatusOr<std::vector<db::StoredStudy>> stored = store_->LoadAll();
  if (!stored.ok()) return stored.status();
  absl::StatusOr<std::optional<int64_t>> alive_ms = store_->LoadAlive();
  if (!alive_ms.ok()) return alive_ms.status();
  absl::MutexLock lock(&mu_);
  absl::Time now = clock_->Now();
  // The time since the last alive mark is downtime: searching studies' time limits skip it.
  absl::Duration downtime = absl::ZeroDuration();
  if (alive_ms->has_value()) {
    downtime = std::max(absl::ZeroDuration(), now - absl::FromUnixMillis(**alive_ms));
  }
  for (db::StoredStudy& s : *stored) {
    std::string id = s.study.id();
    StudyRecord& study = studies_[id];
    study.study = std::move(s.study);
    if (study.study.state() == v1::STUDY_STATE_SEARCHING && downtime > absl::ZeroDuration()) {
      study.study.set_downtime_ms(study.study.downtime_ms() + absl::ToInt64Milliseconds(downtime));
      HPSEARCH_RETURN_IF_ERROR(store_->PutStudy(study.study));
    }
    // A stored study keeps the sampler it ran with: every spec stored since an option existed
    // names it, and TPE ran with Optuna's clip and weights before (a spec stored before
    // late_bandwidth_floor existed keeps its floor throughout; FillTpeRunOptions).
    FillRunOptions(study.study.mutable_spec()->mutable_sampler(), /*stored=*/true);
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
      const v1::Trial& trial = st.trial;
      if (trial.kind() == v1::TRIAL_KIND_SEARCH) ++study.search_created;
      if (trial.state() == v1::TRIAL_STATE_WAITING) study.waiting.insert(number);
      if (trial.state() == v1::TRIAL_STATE_RUNNING) {
        ++study.running;
        record.lease_id = st.lease_id;
        record.attempt_started = absl::FromUnixMillis(trial.started_unix_ms());
        // A stored lease keeps its deadline but never expires before the grace period ends.
        absl::Time deadline =
            std::max(absl::FromUnixMillis(st.lease_deadline_ms), now + options_.restart_grace);
        leases_[st.lease_id] = Lease{id, number, trial.worker_id(), deadline, ""};
      }
      UpdateHistory(&study, trial);
      record.trial = HeldTrial(std::move(st.trial));
      record.trial.PackIfEnded();
      study.trials.push_back(std::move(record));
    }
  }
  for (const std::string& id : study_order_) {
    HPSEARCH_RETURN_IF_ERROR(MaybeFinishSearch(&studies_[id]));
  }
  HPSEARCH_RETURN_IF_ERROR(store_->PutAlive(absl::ToUnixMillis(now)));
  alive_written_ = now;
  return absl::OkStatus();
}

}  // namespace hpsearch::server
