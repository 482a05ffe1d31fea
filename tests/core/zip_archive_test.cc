#include "core/zip_archive.h"

#include "core/catch_torch.h"

#include <fstream>

#include "core/error_matchers.h"
#include "testing/testing.h"

namespace hpsearch::core {
namespace {

void Put(std::string* out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>(value >> (8 * i)));
}

// One stored entry in an archive that uses ZIP64 records for every size and offset, as zip writers
// do for files over 4 GiB.
std::string Zip64Archive(const std::string& name, const std::string& data) {
  const uint32_t crc = Crc32(data.data(), data.size());
  std::string zip;
  Put(&zip, 0x04034b50, 4);
  Put(&zip, 45, 2);  // version needed
  Put(&zip, 0, 2);   // flags
  Put(&zip, 0, 2);   // stored
  Put(&zip, 0, 4);   // time, date
  Put(&zip, crc, 4);
  Put(&zip, 0xFFFFFFFF, 4);
  Put(&zip, 0xFFFFFFFF, 4);
  Put(&zip, name.size(), 2);
  Put(&zip, 20, 2);
  zip += name;
  Put(&zip, 0x0001, 2);
  Put(&zip, 16, 2);
  Put(&zip, data.size(), 8);
  Put(&zip, data.size(), 8);
  zip += data;
  const uint64_t cd_offset = zip.size();
  Put(&zip, 0x02014b50, 4);
  Put(&zip, 45, 2);
  Put(&zip, 45, 2);
  Put(&zip, 0, 2);
  Put(&zip, 0, 2);
  Put(&zip, 0, 4);
  Put(&zip, crc, 4);
  Put(&zip, 0xFFFFFFFF, 4);
  Put(&zip, 0xFFFFFFFF, 4);
  Put(&zip, name.size(), 2);
  Put(&zip, 28, 2);  // extra
  Put(&zip, 0, 2);   // comment
  Put(&zip, 0, 8);   // disk, attributes
  Put(&zip, 0xFFFFFFFF, 4);
  zip += name;
  Put(&zip, 0x0001, 2);
  Put(&zip, 24, 2);
  Put(&zip, data.size(), 8);  // uncompressed
  Put(&zip, data.size(), 8);  // compressed
  Put(&zip, 0, 8);            // local header offset
  const uint64_t cd_size = zip.size() - cd_offset;
  const uint64_t end64_offset = zip.size();
  Put(&zip, 0x06064b50, 4);
  Put(&zip, 44, 8);
  Put(&zip, 45, 2);
  Put(&zip, 45, 2);
  Put(&zip, 0, 4);
  Put(&zip, 0, 4);
  Put(&zip, 1, 8);
  Put(&zip, 1, 8);
  Put(&zip, cd_size, 8);
  Put(&zip, cd_offset, 8);
  Put(&zip, 0x07064b50, 4);
  Put(&zip, 0, 4);
  Put(&zip, end64_offset, 8);
  Put(&zip, 1, 4);
  Put(&zip, 0x06054b50, 4);
  Put(&zip, 0, 4);
  Put(&zip, 0xFFFF, 2);
  Put(&zip, 0xFFFF, 2);
  Put(&zip, 0xFFFFFFFF, 4);
  Put(&zip, 0xFFFFFFFF, 4);
  Put(&zip, 0, 2);
  return zip;
}

TEST_CASE("Crc32 matches the zip check value", "[core][zip_archive]") {
  REQUIRE(Crc32("123456789", 9) == 0xCBF43926u);
  REQUIRE(Crc32("6789", 4, Crc32("12345", 5)) == 0xCBF43926u);
  // Long enough for the 8-byte path, with a tail: the digits repeated, checked against Python
  // zlib.crc32.
  std::string digits;
  for (int i = 0; i < 7; ++i) digits += "1234567890";
  REQUIRE(Crc32(digits.data(), digits.size()) == 0x9683B504u);
  REQUIRE(Crc32(digits.data() + 3, 67, Crc32(digits.data(), 3)) == 0x9683B504u);
}

TEST_CASE("ZipArchive lists a torch.save archive and reads its entries", "[core][zip_archive]") {
  ZipArchive zip(testing::SourceDir() / "tests/data/checkpoints/views_zip.bin");
  const ZipArchive::Entry* version = zip.Find("views_zip/version");
  REQUIRE(version != nullptr);
  REQUIRE(zip.ReadString(*version) == "3\n");
  REQUIRE(zip.Find("views_zip/data.pkl") != nullptr);
  REQUIRE(zip.Find("nope") == nullptr);
}

TEST_CASE("ZipArchive reads ZIP64 records", "[core][zip_archive]") {
  testing::TempDir dir;
  const auto path = dir / "big.zip";
  std::ofstream(path, std::ios::binary) << Zip64Archive("archive/data/0", "sixteen bytes!!!");
  ZipArchive zip(path);
  REQUIRE(zip.entries().size() == 1);
  REQUIRE(zip.entries()[0].size == 16);
  REQUIRE(zip.ReadString(zip.entries()[0]) == "sixteen bytes!!!");

  std::string truncated = Zip64Archive("archive/data/0", "sixteen bytes!!!");
  truncated.erase(truncated.size() - 22 - 20 - 56, 56);  // drop the ZIP64 end record
  std::ofstream(path, std::ios::binary | std::ios::trunc) << truncated;
  REQUIRE_CORE_ERROR(ZipArchive{path}, ErrorCode::kDataLoss, path.string(), "ZIP64");
}

}  // namespace
}  // namespace hpsearch::core
