// Artifact transfer: a folder of files (a trial's adapter, a command trial's outputs) sent as a
// stream of v1::ArtifactChunk and checked on arrival. Both directions use it: a worker uploads
// (UploadArtifact), the coordinator and `hpsearch export` download (GetArtifact).
//
// The stream: files one after another, never interleaved. Every chunk names its file
// (`file_name`, relative, '/'-separated) and its `offset` (the file's bytes before this chunk);
// a file's last chunk has `last` = true and `sha256` = the whole file's SHA-256 in hex. An empty
// file is one last chunk without data. After the last file comes the end mark: a chunk with no
// file, `end_of_artifact` = true and `files` = the number of files; a stream without it was cut
// short and is refused however many whole files it carried. An upload carries the lease in its
// first chunk's `lease_id` (later chunks leave it empty or repeat it).
//
// Thread-safety: each object is used by one thread at a time.
#pragma once

#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "hpsearch/v1/service.pb.h"
#include "transfer/sha256.h"

namespace hpsearch::transfer {

struct ArtifactFile {
  std::string name;  // relative, '/'-separated
  int64_t bytes = 0;
  std::string sha256;  // hex; empty where not computed yet
};

struct ArtifactLimits {
  // The most bytes one artifact may hold. A DialoGPT-medium full fine-tune is ~1.4 GB; adapters
  // are a few MB.
  int64_t max_total_bytes = int64_t{16} << 30;
  // The most files one artifact may hold.
  int max_files = 10000;
  // The largest `data` one chunk may carry (gRPC's default message limit is 4 MiB).
  int64_t max_chunk_bytes = int64_t{3} << 20;
};

// Chunk size senders use: well under gRPC's 4 MiB message limit, large enough that the per-message
// cost does not matter.
inline constexpr int64_t kDefaultChunkBytes = int64_t{1} << 20;

// OK when `name` may name a file in a stream: relative, '/'-separated, no empty, "." or ".."
// part, no backslash or NUL, at most 512 bytes. INVALID_ARGUMENT naming the problem otherwise.
absl::Status CheckArtifactFileName(const std::string& name);

// The regular files under `dir`, recursively, sorted by name, with their sizes (sha256 left
// empty). INVALID_ARGUMENT for a symbolic link or special file (an artifact is plain files),
// NOT_FOUND when `dir` is missing.
absl::StatusOr<std::vector<ArtifactFile>> ListArtifactFiles(const std::string& dir);

// Produces the chunks of `files` read from `dir`, hashing as it reads. Where a file's sha256 is
// given (a stored manifest), the bytes read must hash to it, else DATA_LOSS: a damaged copy is
// never sent as good.
class ArtifactChunkReader {
 public:
  ArtifactChunkReader(std::string dir, std::vector<ArtifactFile> files,
                      int64_t chunk_bytes = kDefaultChunkBytes);
  ~ArtifactChunkReader();

  // The next chunk (the end mark after the last file), or nullopt after the end mark. Errors name
  // the file.
  absl::StatusOr<std::optional<v1::ArtifactChunk>> Next();
  // The files sent so far, with their sizes and hashes as read.
  const std::vector<ArtifactFile>& sent() const { return sent_; }

 private:
  std::string dir_;
  std::vector<ArtifactFile> files_;
  int64_t chunk_bytes_;
  size_t index_ = 0;
  std::unique_ptr<std::ifstream> in_;
  std::unique_ptr<Sha256> hash_;
  int64_t offset_ = 0;
  bool end_sent_ = false;
  std::vector<ArtifactFile> sent_;
};

// Receives a chunk stream into a folder, checking the order, offsets, names, limits and every
// file's sha256 as it goes. Nothing is trusted until Finish() returns OK; the caller owns the
// folder and removes it on failure.
class ArtifactAssembler {
 public:
  // REQUIRES: `dir` exists and is empty (a staging folder the caller made).
  ArtifactAssembler(std::string dir, ArtifactLimits limits = {});
  ~ArtifactAssembler();

  // INVALID_ARGUMENT for a malformed stream (bad name, offset gap, a file left unfinished before
  // the next, a repeated name), DATA_LOSS for a checksum mismatch, RESOURCE_EXHAUSTED past a
  // limit, INTERNAL for a local write failure. After an error every later call returns it again.
  absl::Status Add(const v1::ArtifactChunk& chunk);
  // Ends the stream: every file complete and synced to disk, then the manifest in stream order.
  // DATA_LOSS when the stream stopped before its end mark (truncated), INVALID_ARGUMENT when it
  // carried no file at all.
  absl::StatusOr<std::vector<ArtifactFile>> Finish();

  // The first chunk's lease_id ("" until a chunk arrived).
  const std::string& lease_id() const { return lease_id_; }
  int64_t total_bytes() const { return total_bytes_; }

 private:
  absl::Status AddChecked(const v1::ArtifactChunk& chunk);
  absl::Status CloseCurrent(const std::string& sent_sha256);

  std::string dir_;
  ArtifactLimits limits_;
  absl::Status error_;
  bool started_ = false;
  bool ended_ = false;
  std::string lease_id_;
  std::vector<ArtifactFile> files_;  // finished ones
  // The file being written.
  bool open_ = false;
  std::string current_;
  int fd_ = -1;
  int64_t current_bytes_ = 0;
  std::unique_ptr<Sha256> hash_;
  int64_t total_bytes_ = 0;
};

// Fsyncs `path` (a file or a folder) so a rename into place is durable. INTERNAL on failure.
absl::Status SyncPath(const std::string& path);

}  // namespace hpsearch::transfer
