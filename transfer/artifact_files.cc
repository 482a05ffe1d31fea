#include "transfer/artifact_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace hpsearch::transfer {
namespace {

namespace fs = std::filesystem;

std::string Errno() { return std::strerror(errno); }

}  // namespace

absl::Status CheckArtifactFileName(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("file_name is empty");
  if (name.size() > 512) {
    return absl::InvalidArgumentError(
        absl::StrCat("file_name '", name.substr(0, 64), "...' is longer than 512 bytes"));
  }
  if (name.find('\0') != std::string::npos || name.find('\\') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("file_name '", name, "' holds a NUL or a backslash"));
  }
  if (name.front() == '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("file_name '", name, "' is absolute: names are relative to the artifact"));
  }
  for (absl::string_view part : absl::StrSplit(name, '/')) {
    if (part.empty() || part == "." || part == "..") {
      return absl::InvalidArgumentError(absl::StrCat(
          "file_name '", name, "' has an empty, '.' or '..' part: names stay inside the artifact"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ArtifactFile>> ListArtifactFiles(const std::string& dir) {
  std::error_code error;
  if (!fs::is_directory(dir, error)) {
    return absl::NotFoundError(absl::StrCat("artifact folder ", dir, " does not exist"));
  }
  std::vector<ArtifactFile> files;
  fs::recursive_directory_iterator it(dir, error), end;
  if (error) return absl::InternalError(absl::StrCat("cannot list ", dir, ": ", error.message()));
  for (; it != end; it.increment(error)) {
    if (error) return absl::InternalError(absl::StrCat("cannot list ", dir, ": ", error.message()));
    const fs::file_status status = it->symlink_status(error);
    if (fs::is_directory(status)) continue;
    const std::string name = it->path().lexically_relative(dir).generic_string();
    if (!fs::is_regular_file(status)) {
      return absl::InvalidArgumentError(absl::StrCat(
          dir, "/", name, " is not a regular file: an artifact holds plain files only"));
    }
    files.push_back({name, static_cast<int64_t>(it->file_size(error)), ""});
  }
  std::sort(files.begin(), files.end(),
            [](const ArtifactFile& a, const ArtifactFile& b) { return a.name < b.name; });
  return files;
}

// ------------------------------------------------------------------------------------ reader

ArtifactChunkReader::ArtifactChunkReader(std::string dir, std::vector<ArtifactFile> files,
                                         int64_t chunk_bytes)
    : dir_(std::move(dir)),
      files_(std::move(files)),
      chunk_bytes_(std::max<int64_t>(1, chunk_bytes)) {}

ArtifactChunkReader::~ArtifactChunkReader() = default;

absl::StatusOr<std::optional<v1::ArtifactChunk>> ArtifactChunkReader::Next() {
  if (index_ >= files_.size()) {
    if (end_sent_) return std::nullopt;
    end_sent_ = true;
    v1::ArtifactChunk end;
    end.set_end_of_artifact(true);
    end.set_files(static_cast<int32_t>(sent_.size()));
    return end;
  }
  const ArtifactFile& file = files_[index_];
  const std::string path = (fs::path(dir_) / file.name).string();
  if (in_ == nullptr) {
    in_ = std::make_unique<std::ifstream>(path, std::ios::binary);
    if (!*in_) return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", Errno()));
    hash_ = std::make_unique<Sha256>();
    offset_ = 0;
  }
  v1::ArtifactChunk chunk;
  chunk.set_file_name(file.name);
  chunk.set_offset(offset_);
  std::string* data = chunk.mutable_data();
  data->resize(static_cast<size_t>(chunk_bytes_));
  in_->read(data->data(), static_cast<std::streamsize>(chunk_bytes_));
  if (in_->bad()) return absl::DataLossError(absl::StrCat("cannot read ", path));
  data->resize(static_cast<size_t>(in_->gcount()));
  hash_->Update(*data);
  offset_ += static_cast<int64_t>(data->size());
  // A short read means the end of the file; peek so a file of exactly N chunks ends on its Nth.
  const bool at_end = in_->eof() || in_->peek() == std::char_traits<char>::eof();
  if (at_end) {
    const std::string digest = hash_->HexDigest();
    if (!file.sha256.empty() && digest != file.sha256) {
      return absl::DataLossError(absl::StrCat(path, " does not match its recorded sha256 (",
                                              file.sha256, " recorded, ", digest,
                                              " on disk): the stored copy is damaged"));
    }
    if (file.bytes > 0 && offset_ != file.bytes && !file.sha256.empty()) {
      return absl::DataLossError(absl::StrCat(path, " has ", offset_, " bytes, ", file.bytes,
                                              " recorded: the stored copy is damaged"));
    }
    chunk.set_last(true);
    chunk.set_sha256(digest);
    sent_.push_back({file.name, offset_, digest});
    in_.reset();
    hash_.reset();
    ++index_;
  }
  return chunk;
}

// --------------------------------------------------------------------------------- assembler

ArtifactAssembler::ArtifactAssembler(std::string dir, ArtifactLimits limits)
    : dir_(std::move(dir)), limits_(limits) {}

ArtifactAssembler::~ArtifactAssembler() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status ArtifactAssembler::Add(const v1::ArtifactChunk& chunk) {
  if (!error_.ok()) return error_;
  error_ = AddChecked(chunk);
  return error_;
}

absl::Status ArtifactAssembler::AddChecked(const v1::ArtifactChunk& chunk) {
  if (!started_) {
    started_ = true;
    lease_id_ = chunk.lease_id();
  } else if (!chunk.lease_id().empty() && chunk.lease_id() != lease_id_) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunk of ", chunk.file_name(), " carries lease ", chunk.lease_id(),
                     " but the stream began with ", lease_id_, ": one upload is one lease"));
  }
  if (ended_) {
    return absl::InvalidArgumentError("a chunk arrived after the end mark of the artifact");
  }
  if (chunk.end_of_artifact()) {
    if (open_) {
      return absl::InvalidArgumentError(absl::StrCat("the end mark arrived while file ", current_,
                                                     " lacked its last chunk (at byte ",
                                                     current_bytes_, ")"));
    }
    if (chunk.files() != static_cast<int>(files_.size())) {
      return absl::DataLossError(absl::StrCat("the end mark counts ", chunk.files(), " files but ",
                                              files_.size(), " arrived"));
    }
    ended_ = true;
    return absl::OkStatus();
  }
  const std::string name = chunk.file_name().empty() && open_ ? current_ : chunk.file_name();
  if (!open_ || name != current_) {
    if (open_) {
      return absl::InvalidArgumentError(
          absl::StrCat("file ", current_, " ended at byte ", current_bytes_,
                       " without its last chunk before ", name, " began"));
    }
    if (absl::Status status = CheckArtifactFileName(name); !status.ok()) return status;
    for (const ArtifactFile& done : files_) {
      if (done.name == name) {
        return absl::InvalidArgumentError(absl::StrCat("file ", name, " was sent twice"));
      }
    }
    if (static_cast<int>(files_.size()) >= limits_.max_files) {
      return absl::ResourceExhaustedError(
          absl::StrCat("more than ", limits_.max_files, " files in one artifact"));
    }
    const fs::path path = fs::path(dir_) / name;
    std::error_code error;
    fs::create_directories(path.parent_path(), error);
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      return errno == EEXIST || errno == EISDIR || errno == ENOTDIR
                 ? absl::InvalidArgumentError(
                       absl::StrCat("file ", name, " collides with another file of the artifact"))
                 : absl::InternalError(
                       absl::StrCat("cannot create ", path.string(), ": ", Errno()));
    }
    open_ = true;
    current_ = name;
    current_bytes_ = 0;
    hash_ = std::make_unique<Sha256>();
  }
  if (chunk.offset() != current_bytes_) {
    return absl::InvalidArgumentError(absl::StrCat("file ", name, ": chunk at offset ",
                                                   chunk.offset(), " but ", current_bytes_,
                                                   " bytes arrived so far (a chunk is missing)"));
  }
  if (static_cast<int64_t>(chunk.data().size()) > limits_.max_chunk_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("file ", name, ": a chunk of ",
                                                   chunk.data().size(), " bytes exceeds ",
                                                   limits_.max_chunk_bytes));
  }
  total_bytes_ += static_cast<int64_t>(chunk.data().size());
  if (total_bytes_ > limits_.max_total_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the artifact exceeds ", limits_.max_total_bytes, " bytes (at file ", name, ")"));
  }
  const char* data = chunk.data().data();
  size_t left = chunk.data().size();
  while (left > 0) {
    ssize_t written = ::write(fd_, data, left);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) {
      return absl::InternalError(absl::StrCat("cannot write ", dir_, "/", name, ": ", Errno()));
    }
    data += written;
    left -= static_cast<size_t>(written);
  }
  hash_->Update(chunk.data());
  current_bytes_ += static_cast<int64_t>(chunk.data().size());
  if (chunk.last()) return CloseCurrent(chunk.sha256());
  return absl::OkStatus();
}

absl::Status ArtifactAssembler::CloseCurrent(const std::string& sent_sha256) {
  const std::string digest = hash_->HexDigest();
  hash_.reset();
  open_ = false;
  const bool synced = ::fsync(fd_) == 0;
  ::close(fd_);
  fd_ = -1;
  if (!synced) return absl::InternalError(absl::StrCat("cannot sync ", dir_, "/", current_));
  if (sent_sha256 != digest) {
    return absl::DataLossError(absl::StrCat(
        "file ", current_, ": sha256 mismatch (", current_bytes_, " bytes hash to ", digest,
        ", the sender said '", sent_sha256, "'): the transfer was damaged; retry it"));
  }
  files_.push_back({current_, current_bytes_, digest});
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ArtifactFile>> ArtifactAssembler::Finish() {
  if (!error_.ok()) return error_;
  if (open_) {
    error_ = absl::DataLossError(absl::StrCat("the stream ended inside file ", current_, " after ",
                                              current_bytes_,
                                              " bytes, without its last chunk (truncated)"));
    return error_;
  }
  if (files_.empty()) {
    error_ = absl::InvalidArgumentError("the stream carried no file");
    return error_;
  }
  if (!ended_) {
    error_ = absl::DataLossError(absl::StrCat("the stream ended after ", files_.size(),
                                              " whole files without its end mark (truncated)"));
    return error_;
  }
  // Every file is synced as it closes; the folders hold the names.
  std::set<std::string> dirs = {dir_};
  for (const ArtifactFile& file : files_) {
    for (fs::path parent = fs::path(file.name).parent_path(); !parent.empty();
         parent = parent.parent_path()) {
      dirs.insert((fs::path(dir_) / parent).string());
    }
  }
  for (const std::string& dir : dirs) {
    if (absl::Status status = SyncPath(dir); !status.ok()) return error_ = status;
  }
  return files_;
}

absl::Status SyncPath(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return absl::InternalError(absl::StrCat("cannot open ", path, " to sync it: ", Errno()));
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return absl::InternalError(absl::StrCat("cannot sync ", path, ": ", Errno()));
  return absl::OkStatus();
}

}  // namespace hpsearch::transfer
