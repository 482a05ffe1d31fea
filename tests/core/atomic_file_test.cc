#include "core/atomic_file.h"

#include "core/catch_torch.h"

#include <fstream>

#include "core/error_matchers.h"
#include "testing/testing.h"

namespace hpsearch::core {
namespace {

size_t FileCount(const std::filesystem::path& dir) {
  size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    (void)entry;
    ++n;
  }
  return n;
}

TEST_CASE("AtomicFileWriter replaces the file only on Commit", "[core][atomic_file]") {
  testing::TempDir dir;
  const auto path = dir / "adapter.safetensors";
  std::ofstream(path) << "old contents";
  {
    AtomicFileWriter writer(path);
    writer.Write("new", 3);
    REQUIRE(testing::ReadFileBytes(path) == "old contents");  // readers still see the old file
    REQUIRE(FileCount(dir.path()) == 2);                      // plus the temporary
    // Destroyed without Commit: as if the process died mid-write.
  }
  REQUIRE(testing::ReadFileBytes(path) == "old contents");
  REQUIRE(FileCount(dir.path()) == 1);

  AtomicFileWriter writer(path);
  writer.Write("new ", 4);
  writer.Write("contents", 8);
  writer.Commit();
  REQUIRE(testing::ReadFileBytes(path) == "new contents");
  REQUIRE(FileCount(dir.path()) == 1);
}

TEST_CASE("AtomicFileWriter reports an unwritable location", "[core][atomic_file]") {
  testing::TempDir dir;
  REQUIRE_CORE_ERROR(AtomicFileWriter(dir / "missing" / "x.bin"), ErrorCode::kIo, "missing",
                     "No such file");
}

}  // namespace
}  // namespace hpsearch::core
