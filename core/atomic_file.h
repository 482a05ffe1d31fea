// AtomicFileWriter: writes a file so that readers see either the old file or the complete new one,
// never a prefix. Bytes go to "<path>.tmp.<pid>" in the same directory; Commit() fsyncs it, renames
// it over `path` and fsyncs the directory so the rename survives a crash. Destroying an uncommitted
// writer removes the temporary file. Owns its file descriptor; not thread-safe (one writer per
// file).
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>

namespace hpsearch::core {

class AtomicFileWriter {
 public:
  // Creates the temporary file. Throws core::Error (kIo, naming the path and the OS reason) when it
  // cannot.
  explicit AtomicFileWriter(const std::filesystem::path& path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  // Appends `size` bytes. Throws core::Error (kIo) on a short or failed write.
  // REQUIRES: Commit() has not been called.
  void Write(const void* data, size_t size);

  // Makes the file durable and visible under its final name. Throws core::Error (kIo) on failure,
  // in which case the old file (if any) is untouched. REQUIRES: Commit() has not been called.
  void Commit();

 private:
  std::filesystem::path path_;
  std::filesystem::path temp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace hpsearch::core
