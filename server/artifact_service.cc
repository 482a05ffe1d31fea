#include "server/artifact_service.h"

#include <filesystem>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace hpsearch::server {
namespace {

namespace fs = std::filesystem;

std::string NewUploadId() {
  static absl::Mutex mu(absl::kConstInit);
  static absl::BitGen* bitgen = new absl::BitGen();
  absl::MutexLock lock(&mu);
  return absl::StrFormat("%016x", absl::Uniform<uint64_t>(*bitgen));
}

bool SameFiles(const std::vector<db::ArtifactFileRecord>& a,
               const std::vector<transfer::ArtifactFile>& b) {
  if (a.size() != b.size()) return false;
  std::map<std::string, std::string> hashes;
  for (const auto& file : a) hashes[file.name] = file.sha256;
  for (const auto& file : b) {
    auto it = hashes.find(file.name);
    if (it == hashes.end() || it->second != file.sha256) return false;
  }
  return true;
}

// The record's dir: relative to the database's folder when inside it.
std::string RecordedDir(const std::string& db_path, const fs::path& dir) {
  const fs::path base = fs::absolute(db_path).parent_path().lexically_normal();
  const fs::path relative = dir.lexically_normal().lexically_relative(base);
  if (!relative.empty() && *relative.begin() != "..") return relative.generic_string();
  return dir.lexically_normal().string();
}

}  // namespace

std::string ResolveArtifactDir(const std::string& db_path, const std::string& dir) {
  const fs::path path(dir);
  if (path.is_absolute()) return path.string();
  return (fs::absolute(db_path).parent_path() / path).lexically_normal().string();
}

ArtifactService::Upload::Upload(ArtifactService* service, std::string id, std::string staging,
                                transfer::ArtifactLimits limits)
    : service_(service), id_(std::move(id)), staging_(staging), assembler_(staging, limits) {}

ArtifactService::Upload::~Upload() {
  std::error_code ignored;
  if (!staging_.empty()) fs::remove_all(staging_, ignored);
}

absl::Status ArtifactService::Upload::Add(const v1::ArtifactChunk& chunk) {
  if (!checked_lease_) {
    checked_lease_ = true;
    if (chunk.lease_id().empty()) {
      return absl::InvalidArgumentError(
          "the first chunk of an upload carries no lease_id: uploads belong to a live lease");
    }
    holder_ = chunk.worker_id();
    absl::StatusOr<ArtifactOwner> owner =
        service_->coordinator_->ArtifactOwnerOf(chunk.lease_id(), holder_);
    if (!owner.ok()) return owner.status();
  }
  return assembler_.Add(chunk);
}

ArtifactService::ArtifactService(Coordinator* coordinator, const std::string& db_path,
                                 ArtifactServiceOptions options)
    : coordinator_(coordinator), db_path_(db_path), options_(std::move(options)) {
  root_ = options_.root.empty()
              ? (fs::path(coordinator_->options().default_artifacts_root) / "stored").string()
              : fs::absolute(options_.root).string();
}

absl::StatusOr<std::unique_ptr<ArtifactService::Upload>> ArtifactService::BeginUpload() {
  const std::string id = NewUploadId();
  const fs::path staging = fs::path(root_) / ".staging" / id;
  std::error_code error;
  fs::create_directories(staging, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot create the staging folder ", staging.string(), ": ", error.message()));
  }
  return std::unique_ptr<Upload>(new Upload(this, id, staging.string(), options_.limits));
}

absl::StatusOr<v1::UploadArtifactResponse> ArtifactService::Commit(Upload* upload) {
  absl::StatusOr<std::vector<transfer::ArtifactFile>> files = upload->assembler_.Finish();
  if (!files.ok()) return files.status();
  v1::UploadArtifactResponse response;
  response.set_files(static_cast<int32_t>(files->size()));
  response.set_bytes(upload->assembler_.total_bytes());
  const std::string& lease_id = upload->assembler_.lease_id();

  absl::MutexLock lock(&commit_mu_);
  absl::StatusOr<ArtifactOwner> owner = coordinator_->ArtifactOwnerOf(lease_id, upload->holder_);
  if (!owner.ok()) return owner.status();
  absl::StatusOr<std::optional<db::ArtifactRecord>> existing =
      coordinator_->LoadArtifact(owner->trial_id, owner->attempt);
  if (!existing.ok()) return existing.status();
  if (existing->has_value() && SameFiles((*existing)->files, *files)) {
    response.set_duplicate(true);  // a retry whose first reply was lost
    return response;
  }

  const fs::path trial_dir =
      fs::path(root_) / owner->study_id /
      absl::StrFormat("%s-%04d", owner->kind == v1::TRIAL_KIND_FINAL ? "final" : "trial",
                      owner->trial_number);
  const fs::path dest = trial_dir / absl::StrCat("attempt-", owner->attempt, "-", upload->id_);
  std::error_code error;
  fs::create_directories(trial_dir, error);
  if (!error) fs::rename(upload->staging_, dest, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot move the upload into ", dest.string(), ": ", error.message()));
  }
  upload->staging_.clear();  // the folder is dest now
  for (const fs::path& dir :
       {trial_dir, trial_dir.parent_path(), fs::path(root_), fs::path(root_) / ".staging"}) {
    if (absl::Status status = transfer::SyncPath(dir.string()); !status.ok()) {
      fs::remove_all(dest, error);
      return status;
    }
  }

  db::ArtifactRecord record;
  record.trial_id = owner->trial_id;
  record.attempt = owner->attempt;
  record.lease_id = lease_id;
  record.dir = RecordedDir(db_path_, dest);
  record.uploaded_ms = absl::ToUnixMillis(absl::Now());
  for (const transfer::ArtifactFile& file : *files) {
    record.files.push_back({file.name, file.bytes, file.sha256});
  }
  if (absl::Status status = coordinator_->RecordArtifact(lease_id, upload->holder_, record);
      !status.ok()) {
    fs::remove_all(dest, error);  // not recorded: never visible
    return status;
  }
  if (existing->has_value()) {
    fs::remove_all(ResolveArtifactDir(db_path_, (*existing)->dir), error);  // the replaced upload
  }
  return response;
}

absl::StatusOr<ArtifactSource> ArtifactService::Find(const std::string& study, int trial_number) {
  absl::StatusOr<db::ArtifactRecord> record = coordinator_->FindArtifact(study, trial_number);
  if (!record.ok()) return record.status();
  ArtifactSource source;
  source.dir = ResolveArtifactDir(db_path_, record->dir);
  source.attempt = record->attempt;
  for (const db::ArtifactFileRecord& file : record->files) {
    source.files.push_back({file.name, file.bytes, file.sha256});
  }
  return source;
}

}  // namespace hpsearch::server
