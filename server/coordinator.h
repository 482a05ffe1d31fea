// Coordinator: the scheduling logic of `hpsearch serve`, without gRPC. It owns every study, trial
// and lease, is the single writer of the ResultsStore, and answers the StudyService and
// WorkerService calls as plain methods (the gRPC reactors in server/grpc_services.cc only
// translate).
//
// Trial life cycle: WAITING -> RUNNING (leased) -> COMPLETE | PRUNED | FAILED. A lease that
// expires, times out or fails retryably sends the trial back to WAITING with attempt + 1 (earlier
// attempts stay stored); after budget.max_retries re-leases it FAILS with the reason. Search trials
// are created on demand, enqueued ones first, and never beyond n_trials (created trials of every
// state count). When the search is over the best COMPLETE trial is retrained as one `final` trial
// with the same parameters and seed.
//
// Acknowledgement: every mutating method returns only after its writes are committed
// (ResultsStore::Sync), so whatever a caller was told survives a kill of the process. Reads
// (GetStudy, ListTrials, ...) come from memory and may show a change a moment before it is durable.
//
// Time: all deadlines come from the injected Clock; Tick() applies them (lease expiry, per-trial
// timeout, study time limit). A server calls Tick() periodically, tests after advancing a
// ManualClock. Tick() also writes the coordinator's alive mark (at most once a second); on restart
// the time since the last mark is coordinator downtime, which a searching study's time limit does
// not count (Study.downtime_ms). Per-trial timeouts and leases count real time: workers go on
// running while the coordinator is down.
//
// Thread-safety: thread-safe. Listeners and the work-available callback are invoked without the
// internal lock held, after the change is committed.
//
// Implementation files: coordinator.cc (construction, bookkeeping, commit-then-publish,
// subscriptions), coordinator_trials.cc (trial life cycle, final stage, Tick),
// coordinator_study_service.cc, coordinator_worker_service.cc, coordinator_restore.cc (Load).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "db/results_store.h"
#include "hpsearch/v1/service.pb.h"
#include "server/held_trial.h"
#include "server/sampling/pruner.h"
#include "server/sampling/sampler.h"
#include "server/sampling/trial_history.h"
#include "server/trial_spec_builder.h"

namespace hpsearch::server {

struct CoordinatorOptions {
  // How long a lease lives without a heartbeat or report. Longer tolerates slower networks; shorter
  // re-runs the trials of dead workers sooner.
  absl::Duration lease_ttl = absl::Seconds(30);
  // How often workers are told to heartbeat; well below lease_ttl so one lost heartbeat costs
  // nothing.
  absl::Duration heartbeat_interval = absl::Seconds(5);
  // After a restart, stored leases get at least this long before any expires, so workers that kept
  // running while the coordinator was down can reconnect and report.
  absl::Duration restart_grace = absl::Seconds(30);
  // How often a running trial's progress row (trial_progress) is rewritten from its heartbeats, and
  // its watchers told. The in-memory progress is always the latest; the row trades freshness for
  // database writes.
  absl::Duration progress_write_interval = absl::Seconds(3);
  // Where trial artifacts go when a spec leaves artifacts_root empty. Default: "artifacts" beside
  // the results database (set by Create when empty).
  std::string default_artifacts_root;
  // Validates and normalises a submitted spec (the one validator `hpsearch validate` uses). Returns
  // INVALID_ARGUMENT naming every bad field, and the validator's warnings in *warnings. Unset:
  // accept as is.
  std::function<absl::Status(v1::StudySpec* spec, std::vector<std::string>* warnings)> validate;
  // Reads a study file's text (SubmitStudyRequest.study_file_text) into a spec, resolving relative
  // paths against `base_dir`; INVALID_ARGUMENT listing the file's issues. Unset: such requests are
  // UNIMPLEMENTED.
  std::function<absl::StatusOr<v1::StudySpec>(const std::string& text, const std::string& base_dir)>
      read_study_file;
};

// The trial a live lease holds, as an artifact upload needs it.
struct ArtifactOwner {
  std::string study_id;
  std::string study_name;
  int64_t trial_id = 0;
  int trial_number = 0;
  int attempt = 0;
  v1::TrialKind kind = v1::TRIAL_KIND_UNSPECIFIED;
  std::string worker_id;
};

class Coordinator {
 public:
  using Listener = std::function<void(const v1::StudyEvent&)>;

  // Loads every study from `store` and re-arms stored leases with the restart grace.
  // REQUIRES: store and clock outlive the coordinator; nothing else writes to store.
  static absl::StatusOr<std::unique_ptr<Coordinator>> Create(db::ResultsStore* store, Clock* clock,
                                                             CoordinatorOptions options);
  ~Coordinator();

  // ---- StudyService
  absl::StatusOr<v1::SubmitStudyResponse> SubmitStudy(const v1::SubmitStudyRequest& request);
  absl::StatusOr<v1::Study> GetStudy(const std::string& id_or_name);
  std::vector<v1::Study> ListStudies();
  absl::StatusOr<std::vector<v1::Trial>> ListTrials(const std::string& id_or_name);
  absl::StatusOr<v1::Trial> GetTrial(const std::string& id_or_name, int number);
  absl::StatusOr<v1::Study> CancelStudy(const std::string& id_or_name, const std::string& reason);
  // Leases a trial of one study to an external client. FAILED_PRECONDITION when the study ended
  // (or only its final trial is left and request.include_final is not set), OUT_OF_RANGE when its
  // budget is spent, UNAVAILABLE only while budget.parallelism trials run. INVALID_ARGUMENT
  // naming the field for an empty study or client_name.
  absl::StatusOr<v1::TrialSpec> Ask(const v1::AskRequest& request);
  // Ends an asked trial. request.value, when set, is its objective. A second Tell of an ended trial
  // returns the trial when it repeats the first, else FAILED_PRECONDITION naming the first.
  absl::StatusOr<v1::Trial> Tell(const v1::TellRequest& request);

  // ---- WorkerService
  absl::StatusOr<v1::RegisterResponse> Register(const v1::RegisterRequest& request);
  // A trial leased to the worker, or nullopt when none can start now (the caller long-polls).
  // NOT_FOUND when the worker is unknown (e.g. after a coordinator restart): register again.
  absl::StatusOr<std::optional<v1::TrialSpec>> TryAcquire(const std::string& worker_id);
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request);
  absl::StatusOr<v1::ReportEpochResponse> ReportEpoch(const v1::ReportEpochRequest& request);
  absl::Status ReportResult(const v1::ReportResultRequest& request);
  // Ends the attempt COMPLETE (or PRUNED). With request.lease_next set, also leases the
  // worker its next trial under the same commit when one can start at once (response.next_trial).
  absl::StatusOr<v1::CompleteTrialResponse> CompleteTrial(const v1::CompleteTrialRequest& request);
  absl::StatusOr<v1::TrialState> FailTrial(const v1::FailTrialRequest& request);
  // A worker's note on its running attempt (resumed from a checkpoint, started over, an upload
  // that failed), recorded in the events table under the trial and attempt. `kind` is a
  // lower_snake_case word of at most 40 characters.
  absl::Status ReportEvent(const v1::ReportEventRequest& request);

  // ---- artifacts (server/coordinator_artifacts.cc; the files themselves are ArtifactService's)
  // The trial `lease_id` holds; `holder` must be the worker holding it (PERMISSION_DENIED
  // otherwise). FAILED_PRECONDITION for an ended lease, NOT_FOUND for an unknown one, as every
  // worker report.
  absl::StatusOr<ArtifactOwner> ArtifactOwnerOf(const std::string& lease_id,
                                                const std::string& holder);
  // The stored artifact of (trial, attempt); attempt 0: the latest one that has an artifact.
  absl::StatusOr<std::optional<db::ArtifactRecord>> LoadArtifact(int64_t trial_id, int attempt);
  // Records an artifact stored for the trial `lease_id` holds; the lease must still be live.
  // Durable when this returns.
  absl::Status RecordArtifact(const std::string& lease_id, const std::string& holder,
                              const db::ArtifactRecord& record);
  // The stored artifact of a study's trial; trial_number -1 means the study's final trial.
  // NOT_FOUND says which part is missing (study, trial, final trial, artifact) and what to do.
  absl::StatusOr<db::ArtifactRecord> FindArtifact(const std::string& study, int trial_number);

  // ReportEpoch and CompleteTrial without blocking the calling thread on the commit: `done` gets
  // the reply once it is durable (on the store's commit thread), or the error at once. The gRPC
  // services use these, so the reports of many workers share one commit.
  template <typename T>
  using Done = std::function<void(absl::StatusOr<T>)>;
  void ReportEpochAsync(const v1::ReportEpochRequest& request, Done<v1::ReportEpochResponse> done);
  void CompleteTrialAsync(const v1::CompleteTrialRequest& request,
                          Done<v1::CompleteTrialResponse> done);

  // ---- time and notifications
  // Expires leases past their deadline, fails trials past their timeout, ends searches past their
  // time limit, and starts final stages that became due.
  absl::Status Tick();
  // Called (without locks) after any change that may let a waiting worker acquire a trial.
  void SetWorkAvailableCallback(std::function<void()> callback);
  // Events of one study (trial state changes, epochs, study state changes), invoked in commit order
  // without the coordinator's lock; a listener must not call back into the coordinator. Returns a
  // token.
  absl::StatusOr<int64_t> Subscribe(const std::string& id_or_name, Listener listener,
                                    v1::Study* snapshot, std::vector<v1::Trial>* trials);
  void Unsubscribe(int64_t token);

  const CoordinatorOptions& options() const { return options_; }
  // The results database's file (artifact records are relative to its folder).
  const std::string& database_path() const { return store_->path(); }
  // Leases held now. Only live leases are kept in memory; an ended one is answered from the store
  // (trial_attempts), so memory does not grow with finished attempts.
  size_t LiveLeaseCount() {
    absl::MutexLock lock(&mu_);
    return leases_.size();
  }

 private:
  struct TrialRecord {
    int64_t trial_id = 0;
    // Packed (serialised) once the trial has ended: PersistTrial and Load pack ended trials. Read
    // scalar fields through trial.head(), the whole trial through trial.Full(), and change it only
    // through trial.Mutable().
    HeldTrial trial;
    std::string lease_id;  // set while RUNNING
    absl::Time attempt_started;
    bool prune_requested = false;
    absl::Time progress_written = absl::InfinitePast();  // its trial_progress row's last write
    // The objective value a Tell carried, used instead of the epochs' objective metric.
    std::optional<double> told_value;
  };
  struct StudyRecord {
    v1::Study study;
    std::deque<TrialRecord> trials;  // index = trial number; deque: records never move
    std::unique_ptr<Sampler> sampler;
    std::unique_ptr<Pruner> pruner;
    TrialHistory history;   // search trials, index = number
    std::set<int> waiting;  // numbers of WAITING trials
    int running = 0;
    int search_created = 0;
    int listeners = 0;  // subscriptions: events are built only for watched studies
  };
  struct Lease {
    std::string study_id;
    int trial_number = 0;
    std::string worker_id;
    absl::Time deadline;
    // The lease whose CompleteTrial handed this one out (lease_next), so a retry of that
    // completion whose reply was lost gets this trial again instead of leaving it to expire.
    std::string granted_with;
  };
  struct PendingEvent {
    std::string study_id;
    v1::StudyEvent event;
  };

  Coordinator(db::ResultsStore* store, Clock* clock, CoordinatorOptions options);
  absl::Status Load();

  // All helpers below run under mu_.
  StudyRecord* FindStudy(const std::string& id_or_name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // What a call naming a study that FindStudy does not know is told (the known names with it).
  absl::Status UnknownStudy(const std::string& id_or_name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The live lease `lease_id` held by `holder` (a worker id, or "client:NAME" for Ask) in *lease.
  // A lease held by someone else is PERMISSION_DENIED: callers act only on the leases they
  // acquired. FAILED_PRECONDITION for one that ended (with how), NOT_FOUND for one that never
  // existed. Ended leases are looked up in the store, so the answer is the same after a restart and
  // memory does not grow with finished attempts.
  absl::Status LeaseStatus(const std::string& lease_id, const std::string& holder, Lease** lease)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The stored record of a lease that is no longer live; nullopt when it never existed.
  absl::StatusOr<std::optional<db::EndedLease>> FindEndedLease(const std::string& lease_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Leases `worker_id` a trial of the first study (by submission) that has one to start now and
  // whose runner type the worker registered as one it can run.
  absl::StatusOr<std::optional<v1::TrialSpec>> AcquireAny(const std::string& worker_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::optional<v1::TrialSpec>> AcquireFrom(StudyRecord* study,
                                                           const std::string& worker_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<TrialRecord*> CreateSearchTrial(StudyRecord* study)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<TrialRecord*> CreateTrial(StudyRecord* study, v1::TrialKind kind,
                                           std::vector<v1::ParamAssignment> params, uint64_t seed,
                                           int source_number) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<v1::TrialSpec> StartAttempt(StudyRecord* study, TrialRecord* trial,
                                             const std::string& worker_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends the running attempt of `trial`. COMPLETE/PRUNED end the trial; FAILED retries (retryable
  // and attempts left) or fails it. The lease ends as `ended_by` says, which later heartbeats and
  // reports on it are told (kTimeout and kCancelled are cancel orders). `stopped_by_user`: its
  // worker was stopped and handed the trial back; it waits again at no cost to its retries.
  absl::Status EndAttempt(StudyRecord* study, TrialRecord* trial, v1::TrialState state,
                          const std::string& error, bool retryable, db::LeaseEnd ended_by,
                          bool stopped_by_user = false)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status MaybeFinishSearch(StudyRecord* study) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the results database holds a stored model (artifact) of search trial `number`.
  absl::StatusOr<bool> ModelStored(const StudyRecord& study, int number)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The spec of `trial`'s attempt under `grant` (BuildTrialSpec), a final trial's retrain_on as
  // FinalRetrainOn decides: `train` runs as `reuse` when its source trial's model is stored.
  absl::StatusOr<v1::TrialSpec> LeasedSpec(const StudyRecord& study, const v1::Trial& trial,
                                           const LeaseGrant& grant)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adopts a resubmission's different budget: a running study takes it as it is; an ended one is
  // extended (back to SEARCHING, its history kept) when n_trials grows. FAILED_PRECONDITION when
  // n_trials falls below the trials already created, or the final trial is running.
  absl::Status ChangeBudget(StudyRecord* study, const v1::BudgetSpec& budget)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Keeps a heartbeat's step progress with the lease's trial; rewrites its trial_progress row and
  // tells watchers at most every progress_write_interval.
  absl::Status RecordProgress(const Lease& lease, const v1::TrialProgress& progress, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Fails a searching study whose last budget.max_failures search trials all failed.
  absl::Status MaybeFailDoomedStudy(StudyRecord* study) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends every running trial of an ended study (failed, with `why`) and fails its waiting ones.
  absl::Status StopActiveTrials(StudyRecord* study, const std::string& why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status SetStudyState(StudyRecord* study, v1::StudyState state, const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status RecordEpoch(StudyRecord* study, TrialRecord* trial, const v1::EpochMetrics& metrics,
                           bool* duplicate) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status PersistTrial(StudyRecord* study, TrialRecord* trial)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status AddEvent(const StudyRecord& study, int trial_number, int attempt,
                        const std::string& worker_id, const std::string& kind,
                        const std::string& message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool SearchOpen(const StudyRecord& study) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Why Ask hands out no trial of `study`: FAILED_PRECONDITION when it ended (or only its final
  // trial is left and include_final is not set); with before = false, also OUT_OF_RANGE when its
  // budget is spent. OK otherwise.
  absl::Status AskRefusal(const StudyRecord& study, bool include_final, bool before)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // True once the study's time limit has passed (coordinator downtime excluded); false without one.
  bool PastTimeLimit(const StudyRecord& study) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::Study StudySnapshot(const StudyRecord& study) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Both take the whole trial (a record's trial.Mutable() after a change), never a packed head.
  void EmitTrial(const StudyRecord& study, const v1::Trial& trial)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EmitStudy(const StudyRecord& study) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UpdateHistory(StudyRecord* study, const v1::Trial& trial) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string NewId(const char* prefix) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t NowMs() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status TickLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The writing halves of ReportEpoch and CompleteTrial: *sequence is what to commit.
  absl::StatusOr<v1::ReportEpochResponse> ApplyReportEpoch(const v1::ReportEpochRequest& request,
                                                           uint64_t* sequence);
  absl::StatusOr<v1::CompleteTrialResponse> ApplyCompleteTrial(
      const v1::CompleteTrialRequest& request, uint64_t* sequence);

  // Commits what the call wrote, then publishes its events and the work-available signal.
  absl::Status Finish(uint64_t sequence, bool work_changed);
  // The same without blocking: `done` runs on the store's commit thread after the commit.
  void FinishAsync(uint64_t sequence, bool work_changed, std::function<void(absl::Status)> done);
  void Publish(bool work_changed);

  db::ResultsStore* const store_;
  Clock* const clock_;
  const CoordinatorOptions options_;

  absl::Mutex mu_;
  std::map<std::string, StudyRecord> studies_ ABSL_GUARDED_BY(mu_);  // by id
  std::vector<std::string> study_order_ ABSL_GUARDED_BY(mu_);        // by creation
  std::map<std::string, std::string> study_by_name_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Lease> leases_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::WorkerInfo> workers_ ABSL_GUARDED_BY(mu_);
  // What each worker said it can run (RegisterRequest.runner_types); empty: every type.
  std::map<std::string, std::set<v1::RunnerType>> worker_runner_types_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Time> worker_last_write_ ABSL_GUARDED_BY(mu_);
  std::vector<PendingEvent> pending_events_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> events_pending_{false};  // pending_events_ is not empty (set under mu_)
  absl::Time alive_written_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::BitGen bitgen_ ABSL_GUARDED_BY(mu_);

  // Listeners are kept apart from mu_ so publishing never holds the scheduling lock.
  absl::Mutex listeners_mu_;
  std::map<int64_t, std::pair<std::string, Listener>> listeners_ ABSL_GUARDED_BY(listeners_mu_);
  int64_t next_token_ ABSL_GUARDED_BY(listeners_mu_) = 1;
  std::function<void()> work_available_ ABSL_GUARDED_BY(listeners_mu_);
  // Serialises publication so listeners see events in commit order.
  absl::Mutex publish_mu_;
};

}  // namespace hpsearch::server
