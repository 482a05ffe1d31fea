#include "core/zip_archive.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "core/error.h"

namespace hpsearch::core {
namespace {

constexpr uint32_t kEndOfCentralDirectory = 0x06054b50;
constexpr uint32_t kZip64EndLocator = 0x07064b50;
constexpr uint32_t kZip64EndOfCentralDirectory = 0x06064b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr uint64_t kEndRecordSize = 22;
constexpr uint64_t kMaxCommentSize = 0xFFFF;

// Little-endian fields out of a byte buffer whose bounds the caller has checked.
uint64_t Le(const unsigned char* p, int bytes) {
  uint64_t value = 0;
  for (int i = bytes - 1; i >= 0; --i) value = (value << 8) | p[i];
  return value;
}

// Compilers turn this into one load on little-endian hosts; Le's variable-length loop they do not.
inline uint32_t Le32(const unsigned char* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

// A bounds-checked cursor over a record held in memory.
class Cursor {
 public:
  Cursor(const std::string& bytes, size_t pos, std::string where)
      : bytes_(bytes), pos_(pos), where_(std::move(where)) {}
  uint64_t Take(int n) {
    Need(n);
    uint64_t v = Le(reinterpret_cast<const unsigned char*>(bytes_.data()) + pos_, n);
    pos_ += n;
    return v;
  }
  std::string TakeString(size_t n) {
    Need(n);
    std::string s = bytes_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  size_t pos() const { return pos_; }

 private:
  void Need(size_t n) const {
    if (n > bytes_.size() - pos_) {
      Fail(ErrorCode::kDataLoss, where_ + ": zip central directory is truncated");
    }
  }
  const std::string& bytes_;
  size_t pos_;
  std::string where_;
};

// Slicing-by-8 tables: table[k][b] is the CRC of byte b followed by k zero bytes, so eight input
// bytes fold into the CRC with eight lookups (about 10x the byte-at-a-time speed; a 1.4 GB
// checkpoint is checked in about a second rather than ten).
using CrcTables = std::array<std::array<uint32_t, 256>, 8>;

const CrcTables& Crc32Tables() {
  static const CrcTables tables = [] {
    CrcTables t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[0][i] = c;
    }
    for (size_t k = 1; k < 8; ++k) {
      for (uint32_t i = 0; i < 256; ++i) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xFF];
    }
    return t;
  }();
  return tables;
}

}  // namespace

uint32_t Crc32(const void* data, size_t size, uint32_t crc) {
  const CrcTables& t = Crc32Tables();
  const unsigned char* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (; size >= 8; size -= 8, p += 8) {
    const uint32_t one = crc ^ Le32(p);
    const uint32_t two = Le32(p + 4);
    crc = t[7][one & 0xFF] ^ t[6][(one >> 8) & 0xFF] ^ t[5][(one >> 16) & 0xFF] ^ t[4][one >> 24] ^
          t[3][two & 0xFF] ^ t[2][(two >> 8) & 0xFF] ^ t[1][(two >> 16) & 0xFF] ^ t[0][two >> 24];
  }
  for (; size > 0; --size, ++p) crc = t[0][(crc ^ *p) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

void ZipArchive::ReadAt(uint64_t offset, void* dst, uint64_t size, const std::string& what) {
  if (offset > file_size_ || size > file_size_ - offset) {
    Fail(ErrorCode::kDataLoss, path_.string() + ": " + what + " lies outside the " +
                                   std::to_string(file_size_) + "-byte file (truncated?)");
  }
  in_.clear();
  in_.seekg(static_cast<std::streamoff>(offset));
  in_.read(static_cast<char*>(dst), static_cast<std::streamsize>(size));
  if (static_cast<uint64_t>(in_.gcount()) != size) {
    Fail(ErrorCode::kIo, path_.string() + ": short read of " + what);
  }
}

ZipArchive::ZipArchive(const std::filesystem::path& path) : path_(path) {
  const std::string where = path.string();
  std::error_code ec;
  file_size_ = std::filesystem::file_size(path, ec);
  if (ec) Fail(ErrorCode::kNotFound, where + ": cannot stat: " + ec.message());
  in_.open(path, std::ios::binary);
  if (!in_) Fail(ErrorCode::kIo, where + ": cannot open for reading");
  if (file_size_ < kEndRecordSize) {
    Fail(ErrorCode::kDataLoss, where + ": too short to be a zip archive (truncated?)");
  }

  // The end record sits in the last 22 + 65535 bytes; search backwards for one whose comment ends
  // the file.
  const uint64_t tail_size = std::min(file_size_, kEndRecordSize + kMaxCommentSize);
  std::string tail(tail_size, '\0');
  ReadAt(file_size_ - tail_size, tail.data(), tail_size, "end of archive");
  const auto* t = reinterpret_cast<const unsigned char*>(tail.data());
  int64_t end_pos = -1;
  for (int64_t i = static_cast<int64_t>(tail_size - kEndRecordSize); i >= 0; --i) {
    if (Le(t + i, 4) == kEndOfCentralDirectory &&
        i + kEndRecordSize + Le(t + i + 20, 2) == tail_size) {
      end_pos = i;
      break;
    }
  }
  if (end_pos < 0) {
    Fail(ErrorCode::kDataLoss, where +
                                   ": no zip end-of-central-directory record; the file is "
                                   "truncated or not a zip archive");
  }
  const unsigned char* e = t + end_pos;
  uint64_t disk = Le(e + 4, 2), cd_disk = Le(e + 6, 2);
  uint64_t count = Le(e + 10, 2), cd_size = Le(e + 12, 4), cd_offset = Le(e + 16, 4);
  const uint64_t end_offset = file_size_ - tail_size + end_pos;
  if (count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
    if (end_offset < 20) Fail(ErrorCode::kDataLoss, where + ": ZIP64 locator missing");
    unsigned char locator[20];
    ReadAt(end_offset - 20, locator, 20, "ZIP64 end locator");
    if (Le(locator, 4) != kZip64EndLocator) {
      Fail(ErrorCode::kDataLoss, where + ": ZIP64 end locator missing (truncated archive?)");
    }
    unsigned char end64[56];
    ReadAt(Le(locator + 8, 8), end64, 56, "ZIP64 end-of-central-directory record");
    if (Le(end64, 4) != kZip64EndOfCentralDirectory) {
      Fail(ErrorCode::kDataLoss, where + ": ZIP64 end-of-central-directory record is corrupt");
    }
    disk = Le(end64 + 16, 4);
    cd_disk = Le(end64 + 20, 4);
    count = Le(end64 + 32, 8);
    cd_size = Le(end64 + 40, 8);
    cd_offset = Le(end64 + 48, 8);
  }
  if (disk != 0 || cd_disk != 0) {
    Fail(ErrorCode::kUnsupported, where + ": multi-disk zip archives are not supported");
  }
  // Every central header takes at least 46 bytes, which bounds `count` before anything is reserved.
  if (count > cd_size / 46 + 1 || cd_size > file_size_) {
    Fail(ErrorCode::kDataLoss, where + ": zip central directory claims " + std::to_string(count) +
                                   " entries in " + std::to_string(cd_size) + " bytes");
  }
  std::string cd(cd_size, '\0');
  ReadAt(cd_offset, cd.data(), cd_size, "zip central directory");

  Cursor c(cd, 0, where);
  entries_.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    if (c.Take(4) != kCentralHeader) {
      Fail(ErrorCode::kDataLoss,
           where + ": zip central directory entry " + std::to_string(i) + " has a bad signature");
    }
    Entry entry;
    c.Take(4);  // versions made by / needed
    entry.flags = static_cast<uint16_t>(c.Take(2));
    entry.method = static_cast<uint16_t>(c.Take(2));
    c.Take(4);  // time, date
    entry.crc32 = static_cast<uint32_t>(c.Take(4));
    entry.compressed_size = c.Take(4);
    entry.size = c.Take(4);
    const size_t name_len = c.Take(2), extra_len = c.Take(2), comment_len = c.Take(2);
    c.Take(8);  // disk start, internal and external attributes
    entry.local_header_offset = c.Take(4);
    entry.name = c.TakeString(name_len);
    const std::string extra = c.TakeString(extra_len);
    c.TakeString(comment_len);
    // ZIP64 keeps the true values of fields saturated at 0xFFFFFFFF in an extra field, in this
    // order.
    Cursor x(extra, 0, where + ": entry " + entry.name);
    while (x.pos() + 4 <= extra.size()) {
      const uint64_t id = x.Take(2), len = x.Take(2);
      const size_t field_end = x.pos() + len;
      if (id == kZip64ExtraId) {
        if (entry.size == 0xFFFFFFFF) entry.size = x.Take(8);
        if (entry.compressed_size == 0xFFFFFFFF) entry.compressed_size = x.Take(8);
        if (entry.local_header_offset == 0xFFFFFFFF) entry.local_header_offset = x.Take(8);
      }
      if (field_end < x.pos() || field_end > extra.size()) {
        Fail(ErrorCode::kDataLoss, where + ": entry " + entry.name + " has a corrupt extra field");
      }
      x.TakeString(field_end - x.pos());
    }
    entries_.push_back(std::move(entry));
  }
}

const ZipArchive::Entry* ZipArchive::Find(const std::string& name) const {
  for (const Entry& e : entries_) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

void ZipArchive::Read(const Entry& entry, void* dst) {
  const std::string what = path_.string() + ": zip entry \"" + entry.name + "\"";
  if (entry.flags & 1) Fail(ErrorCode::kUnsupported, what + " is encrypted");
  if (entry.method != 0) {
    Fail(
        ErrorCode::kUnsupported,
        what + " is compressed (method " + std::to_string(entry.method) +
            (entry.method == 8 ? ", deflate" : "") +
            "); torch.save stores entries uncompressed, so this file was repacked by another tool: "
            "re-save it with torch.save or convert it to safetensors");
  }
  if (entry.compressed_size != entry.size) {
    Fail(ErrorCode::kDataLoss,
         what + " is stored but its compressed and uncompressed sizes differ");
  }
  unsigned char local[30];
  ReadAt(entry.local_header_offset, local, 30, "local header of entry \"" + entry.name + "\"");
  if (Le(local, 4) != kLocalHeader) {
    Fail(ErrorCode::kDataLoss, what + ": local header has a bad signature");
  }
  const uint64_t name_len = Le(local + 26, 2), extra_len = Le(local + 28, 2);
  std::string local_name(name_len, '\0');
  ReadAt(entry.local_header_offset + 30, local_name.data(), name_len,
         "name of entry " + entry.name);
  if (local_name != entry.name) {
    Fail(ErrorCode::kDataLoss, what + ": local header names \"" + local_name + "\" instead");
  }
  ReadAt(entry.local_header_offset + 30 + name_len + extra_len, dst, entry.size,
         "data of entry \"" + entry.name + "\"");
  const uint32_t crc = Crc32(dst, entry.size);
  if (crc != entry.crc32) {
    Fail(ErrorCode::kDataLoss, what + " fails its CRC-32 check (the file is corrupt)");
  }
}

std::string ZipArchive::ReadString(const Entry& entry) {
  if (entry.size > file_size_) {
    Fail(ErrorCode::kDataLoss, path_.string() + ": zip entry \"" + entry.name + "\" claims " +
                                   std::to_string(entry.size) + " bytes, more than the whole file");
  }
  std::string s(entry.size, '\0');
  Read(entry, s.data());
  return s;
}

}  // namespace hpsearch::core
