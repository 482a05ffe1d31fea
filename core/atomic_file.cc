#include "core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace hpsearch::core {
namespace {

[[noreturn]] void FailIo(const std::filesystem::path& path, const std::string& what, int err) {
  Fail(ErrorCode::kIo, path.string() + ": " + what + ": " + std::strerror(err) +
                           "; check that the directory exists, is writable and has space");
}

}  // namespace

AtomicFileWriter::AtomicFileWriter(const std::filesystem::path& path)
    : path_(path), temp_path_(path.string() + ".tmp." + std::to_string(::getpid())) {
  fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) FailIo(temp_path_, "cannot create temporary file", errno);
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_path_.c_str());
}

void AtomicFileWriter::Write(const void* data, size_t size) {
  const char* bytes = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t written = ::write(fd_, bytes, size);
    if (written < 0) {
      if (errno == EINTR) continue;
      FailIo(temp_path_, "write failed", errno);
    }
    bytes += written;
    size -= static_cast<size_t>(written);
  }
}

void AtomicFileWriter::Commit() {
  if (::fsync(fd_) != 0) FailIo(temp_path_, "fsync failed", errno);
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) FailIo(temp_path_, "close failed", errno);
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) FailIo(path_, "rename failed", errno);
  committed_ = true;
  // The rename is only durable once the directory entry is on disk.
  std::filesystem::path dir = path_.has_parent_path() ? path_.parent_path() : ".";
  int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) FailIo(dir, "cannot open directory to fsync it", errno);
  int rc = ::fsync(dir_fd);
  int err = errno;
  ::close(dir_fd);
  if (rc != 0) FailIo(dir, "fsync of directory failed", err);
}

}  // namespace hpsearch::core
