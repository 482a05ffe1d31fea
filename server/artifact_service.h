// ArtifactService: the coordinator's artifact files. Uploads arrive as chunk streams into a
// staging folder under the artifacts root; when a stream ends complete and every file matched its
// sha256, the folder is renamed into place and only then recorded in the results database (under
// the still-live lease), so a half-uploaded artifact is never visible: GetArtifact and
// `hpsearch export` read the database's record. A retried upload of the same attempt with the
// same files is acknowledged as a duplicate; one with other files replaces the record.
//
// Layout under `root` (by default `artifacts/stored/` beside the results database):
//   STUDY_ID/trial-0003/attempt-2-UPLOAD/   one stored upload (the UPLOAD suffix keeps a
//                                           replacement from ever overwriting a recorded folder)
//   .staging/UPLOAD/                        uploads in progress; removed when they end
//
// Ownership: borrows the Coordinator (which must outlive it). Thread-safety: thread-safe; commits
// are serialised.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/coordinator.h"
#include "transfer/artifact_files.h"

namespace hpsearch::server {

struct ArtifactServiceOptions {
  // Where stored artifacts go. Empty: "stored" under the coordinator's default artifacts root
  // (artifacts/stored beside the database).
  std::string root;
  transfer::ArtifactLimits limits;
};

// A stored artifact resolved for reading: the folder and its recorded files.
struct ArtifactSource {
  std::string dir;  // absolute
  int attempt = 0;
  std::vector<transfer::ArtifactFile> files;
};

// The absolute folder of a stored record: its `dir` is relative to the database's folder when it
// lies inside it (so the database and its artifacts can move together).
std::string ResolveArtifactDir(const std::string& db_path, const std::string& dir);

class ArtifactService {
 public:
  // One upload in progress: its staging folder and the assembler writing into it. Destroying an
  // uncommitted upload removes its folder.
  class Upload {
   public:
    ~Upload();
    // Adds a chunk. The first chunk's lease and holder (worker_id) are checked at once, so a
    // stale lease or another worker's fails before any byte is written.
    absl::Status Add(const v1::ArtifactChunk& chunk);

   private:
    friend class ArtifactService;
    Upload(ArtifactService* service, std::string id, std::string staging,
           transfer::ArtifactLimits limits);
    ArtifactService* service_;
    std::string id_;
    std::string staging_;
    transfer::ArtifactAssembler assembler_;
    bool checked_lease_ = false;
    std::string holder_;  // the first chunk's worker_id
  };

  ArtifactService(Coordinator* coordinator, const std::string& db_path,
                  ArtifactServiceOptions options);

  // A new upload with an empty staging folder.
  absl::StatusOr<std::unique_ptr<Upload>> BeginUpload();
  // Ends the stream: checks completeness, moves the files into place and records them under the
  // lease. FAILED_PRECONDITION / NOT_FOUND for a lease that is no longer live (nothing is kept),
  // DATA_LOSS for a truncated stream.
  absl::StatusOr<v1::UploadArtifactResponse> Commit(Upload* upload);

  // The stored artifact of a study's trial (-1: the final trial), for GetArtifact.
  absl::StatusOr<ArtifactSource> Find(const std::string& study, int trial_number);

  const std::string& root() const { return root_; }

 private:
  Coordinator* const coordinator_;
  const std::string db_path_;
  const ArtifactServiceOptions options_;
  std::string root_;
  absl::Mutex commit_mu_;
};

}  // namespace hpsearch::server
