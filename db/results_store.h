// ResultsStore: the coordinator's results database (one SQLite file, see docs/results-db.md). It
// writes studies, trials, attempts, epochs, final results, workers and events, and loads them back
// on restart or for a report.
//
// Writes and group commit: every write joins the one open transaction and returns a sequence number
// (Sequence()); Sync(seq) returns once a commit covering that write is on disk. Concurrent callers
// of Sync share one commit (the first becomes the committer, the others wait for it), so with
// Durability::kFull one fsync acknowledges many writes. Callers acknowledge a request only after
// Sync. SyncAsync(seq, done) is the same without a blocked thread: a commit thread commits whatever
// was written while the previous commit ran and then calls every `done` it covers, so a server
// that acknowledges from `done` batches commits however many requests are in flight.
//
// Operations: a caller that writes one logical operation as several writes (a completion, then the
// next trial's lease) under a lock of its own gives that lock to SetOperationLock; every commit
// then takes it first, so no commit lands between two writes of one operation, and a crash leaves
// all of them on disk or none. (Without it a commit from another thread could split them: the soak
// caught an attempt row written as leased while its trial row, written after the commit, still said
// waiting.)
//
// Ownership: owns its Database. Thread-safety: thread-safe; writes are serialised by an internal
// mutex, and the caller is expected to keep its own logical order (the coordinator writes under its
// own lock, which it gives to SetOperationLock).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "db/database.h"
#include "hpsearch/v1/service.pb.h"
#include "hpsearch/v1/study.pb.h"
#include "hpsearch/v1/trial.pb.h"

namespace hpsearch::db {

// Lower-case words stored in the state and kind columns ("waiting", "search", ...).
std::string TrialStateName(v1::TrialState state);
v1::TrialState ParseTrialState(const std::string& name);
std::string StudyStateName(v1::StudyState state);
v1::StudyState ParseStudyState(const std::string& name);
std::string TrialKindName(v1::TrialKind kind);
v1::TrialKind ParseTrialKind(const std::string& name);

// A trial as stored: the proto (params, current attempt's epochs, earlier attempts with their
// epochs, result) plus what only the coordinator needs.
struct StoredTrial {
  int64_t trial_id = 0;
  v1::Trial trial;
  std::string lease_id;           // empty unless RUNNING
  int64_t lease_deadline_ms = 0;  // the stored deadline of that lease
  std::string lease_worker_id;
};

// How an attempt's lease ended (trial_attempts.ended_by): its holder reported the end
// (CompleteTrial, FailTrial, Tell), or the coordinator ended it.
enum class LeaseEnd { kWorker, kExpired, kTimeout, kCancelled };
std::string LeaseEndName(LeaseEnd end);

// An ended lease as stored: enough to answer a late or retried call on it exactly as the
// coordinator did before (after a restart too).
struct EndedLease {
  std::string study_id;
  int trial_number = 0;
  int attempt = 0;
  v1::TrialState attempt_state = v1::TRIAL_STATE_UNSPECIFIED;  // complete, pruned or failed
  std::optional<LeaseEnd> ended_by;  // unset for attempts ended before schema version 2
  std::string error;
  int trial_attempt = 0;  // the trial's current attempt (greater: this one was retried)
};

// One stored upload of a trial's artifact (table `artifacts` and its `artifact_files`).
struct ArtifactFileRecord {
  std::string name;  // relative, '/'-separated
  int64_t bytes = 0;
  std::string sha256;  // hex
};
struct ArtifactRecord {
  int64_t trial_id = 0;
  int attempt = 0;
  std::string lease_id;
  // Where the files are: relative to the database's folder when inside it, else absolute.
  std::string dir;
  int64_t uploaded_ms = 0;
  std::vector<ArtifactFileRecord> files;
};

struct StoredStudy {
  v1::Study study;
  std::vector<StoredTrial> trials;  // by number
};

class ResultsStore {
 public:
  // Opens or creates the file and migrates it to the current schema. A coordinator passes
  // exclusive_lock = true; a report passes read_only = true. Read-only, a file of an older schema
  // version is not migrated: the store reads a copy of it taken into memory at Open and migrated
  // there (see copied_from_version()); a file of a newer version is refused.
  static absl::StatusOr<std::unique_ptr<ResultsStore>> Open(const std::string& path,
                                                            const DatabaseOptions& options);
  ~ResultsStore();

  // ---- writes: each joins the open transaction; call Sync(Sequence()) before acknowledging.
  absl::Status PutStudy(const v1::Study& study);
  // Inserts a new trial with its parameters and returns its trial_id.
  absl::StatusOr<int64_t> InsertTrial(const v1::Trial& trial);
  // Updates the mutable columns of a trial (state, attempt, worker, lease, objective, error,
  // times).
  absl::Status UpdateTrial(int64_t trial_id, const v1::Trial& trial, const std::string& lease_id,
                           int64_t lease_deadline_ms);
  // `ended_by` is set once the attempt has ended (unset: running, or not known).
  absl::Status PutAttempt(int64_t trial_id, const v1::TrialAttempt& attempt,
                          const std::string& lease_id,
                          std::optional<LeaseEnd> ended_by = std::nullopt);
  // Records an epoch once: returns false (and changes nothing) when (trial, attempt, epoch) exists.
  absl::StatusOr<bool> InsertEpoch(int64_t trial_id, int attempt, const std::string& lease_id,
                                   const v1::EpochMetrics& metrics, int64_t now_ms);
  absl::Status PutTrainSummary(int64_t trial_id, const v1::TrainSummary& train);
  absl::Status PutTestMetrics(int64_t trial_id, const v1::TestMetrics& test);
  absl::Status PutResultExtra(int64_t trial_id, const v1::TrialResult& result);
  absl::Status PutWorker(const std::string& worker_id, const v1::WorkerInfo& info, int64_t now_ms);
  absl::Status TouchWorker(const std::string& worker_id, int64_t now_ms);
  // The running trial's progress row: one per trial, overwritten; deleted when its attempt ends.
  absl::Status PutProgress(int64_t trial_id, int attempt, const v1::TrialProgress& progress);
  absl::Status DeleteProgress(int64_t trial_id);
  // Records a stored artifact, replacing the record of the same (trial, attempt).
  absl::Status PutArtifact(const ArtifactRecord& record);
  absl::Status AddEvent(int64_t now_ms, const std::string& study_id, int trial_number, int attempt,
                        const std::string& worker_id, const std::string& kind,
                        const std::string& message);
  // The coordinator's alive mark: the last time it was known to be serving (see LoadAlive).
  absl::Status PutAlive(int64_t now_ms);

  // The sequence number of the latest write.
  uint64_t Sequence();
  // Returns once every write up to `sequence` is committed (fsynced under kFull). A failed commit
  // is sticky: the store then refuses further writes, and the coordinator must restart from the
  // file.
  absl::Status Sync(uint64_t sequence);
  absl::Status SyncAll() { return Sync(Sequence()); }
  // Calls `done` with the commit's status once every write up to `sequence` is committed; from the
  // store's commit thread (started on first use), or at once on the caller's thread when that is
  // already so. `done` must not block on this store's commits.
  void SyncAsync(uint64_t sequence, std::function<void(absl::Status)> done);
  // Commits take `operation_lock` (not owned; nullptr: none) before the store's own lock, so they
  // wait for the operation that holds it to finish its writes. Whoever holds it must not call Sync
  // or wait for a commit meanwhile (that would wait for itself). Returns once no commit uses the
  // previous lock, so its owner may then be destroyed: call with nullptr before destroying it.
  void SetOperationLock(absl::Mutex* operation_lock);

  // ---- reads (committed and uncommitted writes of this connection alike).
  absl::StatusOr<std::vector<StoredStudy>> LoadAll();
  // One study by id or name.
  absl::StatusOr<StoredStudy> LoadStudy(const std::string& id_or_name);
  // The artifact of a trial's given attempt, or (attempt 0) of its latest attempt that has one;
  // nullopt when there is none.
  absl::StatusOr<std::optional<ArtifactRecord>> LoadArtifact(int64_t trial_id, int attempt = 0);
  // The attempt that held `lease_id`, or nullopt when no attempt ever did.
  absl::StatusOr<std::optional<EndedLease>> FindLease(const std::string& lease_id);
  // The last alive mark, or nullopt when no coordinator has written one yet.
  absl::StatusOr<std::optional<int64_t>> LoadAlive();

  Durability durability() const { return durability_; }
  const std::string& path() const { return path_; }
  // The file's schema version when this store reads an in-memory migrated copy of it (a read-only
  // open of an older file); 0 when it reads the file itself. A copy does not see later writes.
  int copied_from_version() const { return copied_from_version_; }

 private:
  ResultsStore(std::unique_ptr<Database> db, Durability durability, std::string path,
               int copied_from_version = 0)
      : db_(std::move(db)),
        durability_(durability),
        path_(std::move(path)),
        copied_from_version_(copied_from_version) {}
  absl::Status BeginWrite() ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_);
  absl::StatusOr<StoredStudy> LoadStudyLocked(const std::string& study_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_);

  absl::Mutex db_mu_;
  std::unique_ptr<Database> db_ ABSL_GUARDED_BY(db_mu_);
  uint64_t write_sequence_ ABSL_GUARDED_BY(db_mu_) = 0;
  absl::Status broken_ ABSL_GUARDED_BY(db_mu_);

  absl::Mutex commit_mu_;
  absl::CondVar commit_cv_;
  uint64_t committed_sequence_ ABSL_GUARDED_BY(commit_mu_) = 0;
  bool committing_ ABSL_GUARDED_BY(commit_mu_) = false;
  absl::Mutex* operation_lock_ ABSL_GUARDED_BY(commit_mu_) = nullptr;
  absl::Status commit_error_ ABSL_GUARDED_BY(commit_mu_);

  // SyncAsync's waiters and the thread that commits for them.
  void CommitLoop();
  struct AsyncWaiter {
    uint64_t sequence;
    std::function<void(absl::Status)> done;
  };
  std::vector<AsyncWaiter> async_waiters_ ABSL_GUARDED_BY(commit_mu_);
  bool stop_committer_ ABSL_GUARDED_BY(commit_mu_) = false;
  std::thread committer_;  // started by the first SyncAsync that has to wait

  const Durability durability_;
  const std::string path_;
  const int copied_from_version_;
};

}  // namespace hpsearch::db
