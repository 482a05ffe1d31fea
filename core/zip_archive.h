// ZipArchive: a minimal reader of the zip container torch.save writes since PyTorch 1.6 (every
// entry STORED, i.e. uncompressed, data 64-byte aligned). It reads the end-of-central-directory
// record (ZIP64 too), the central directory and, per entry read, the local header, checking every
// offset and size against the file size. Compressed or encrypted entries are refused: PyTorch never
// writes them, and reading one would need an inflater this project does not carry. Entry data is
// checked against its CRC-32.
//
// Owns an open file; not thread-safe (reads seek a shared stream). Movable, not copyable.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace hpsearch::core {

class ZipArchive {
 public:
  struct Entry {
    std::string name;
    uint16_t method = 0;  // 0 = stored; anything else is refused when read
    uint16_t flags = 0;
    uint32_t crc32 = 0;
    uint64_t compressed_size = 0;
    uint64_t size = 0;  // uncompressed
    uint64_t local_header_offset = 0;
  };

  // Opens `path` and reads its central directory. Throws core::Error naming the file: kNotFound if
  // it is missing, kDataLoss if it is not a zip or its directory is truncated or points outside the
  // file, kUnsupported for multi-disk archives.
  explicit ZipArchive(const std::filesystem::path& path);
  ZipArchive(ZipArchive&&) = default;
  ZipArchive& operator=(ZipArchive&&) = default;

  const std::filesystem::path& path() const { return path_; }
  const std::vector<Entry>& entries() const { return entries_; }
  // The entry called `name`, or nullptr.
  const Entry* Find(const std::string& name) const;

  // Reads the whole of `entry` into `dst`. Throws core::Error naming the file and entry:
  // kUnsupported when it is compressed or encrypted, kDataLoss when its data lies outside the file
  // or fails its CRC. REQUIRES: `dst` has room for entry.size bytes; `entry` is one of entries().
  void Read(const Entry& entry, void* dst);
  std::string ReadString(const Entry& entry);

 private:
  void ReadAt(uint64_t offset, void* dst, uint64_t size, const std::string& what);

  std::filesystem::path path_;
  std::ifstream in_;
  uint64_t file_size_ = 0;
  std::vector<Entry> entries_;
};

// CRC-32 (IEEE 802.3, as zip uses) of `size` bytes, continuing from `crc` (0 to start).
uint32_t Crc32(const void* data, size_t size, uint32_t crc = 0);

}  // namespace hpsearch::core
