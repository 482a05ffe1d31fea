#include "transfer/artifact_files.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "testing/artifact_chunks.h"
#include "testing/testing.h"
#include "transfer/sha256.h"

namespace hpsearch::transfer {
namespace {

namespace fs = std::filesystem;
using hpsearch::testing::TempDir;

void Write(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string Read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// A folder with an empty file, a file of exactly two chunks, a file of two and a bit, a subfolder.
fs::path MakeSource(const TempDir& dir) {
  const fs::path source = dir / "source";
  Write(source / "empty.txt", "");
  Write(source / "exact.bin", std::string(2 * 16, 'x'));
  std::string mixed;
  for (int i = 0; i < 37; ++i) mixed.push_back(static_cast<char>(i * 7));
  Write(source / "sub" / "mixed.bin", mixed);
  return source;
}

using testing::ReadArtifactChunks;

TEST_CASE("Sha256 matches the FIPS 180-2 test vectors", "[artifacts]") {
  CHECK(Sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(Sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 split;
  split.Update("ab");
  split.Update("c");
  CHECK(split.HexDigest() == Sha256Hex("abc"));
}

TEST_CASE("A folder streamed as chunks reassembles byte for byte with its hashes", "[artifacts]") {
  TempDir dir;
  const fs::path source = MakeSource(dir);
  std::vector<v1::ArtifactChunk> chunks = ReadArtifactChunks(source, 16);
  // empty: 1, exact: 2, mixed: 3 (16 + 16 + 5), then the end mark.
  REQUIRE(chunks.size() == 7);
  CHECK(chunks[0].file_name() == "empty.txt");
  CHECK(chunks[0].last());
  CHECK(chunks[2].last());
  CHECK_FALSE(chunks[1].last());
  CHECK(chunks[5].offset() == 32);
  CHECK(chunks[6].end_of_artifact());
  CHECK(chunks[6].files() == 3);

  fs::create_directories(dir / "copy");
  ArtifactAssembler assembler((dir / "copy").string());
  for (const v1::ArtifactChunk& chunk : chunks) REQUIRE(assembler.Add(chunk).ok());
  auto files = assembler.Finish();
  REQUIRE(files.ok());
  REQUIRE(files->size() == 3);
  for (const ArtifactFile& file : *files) {
    CHECK(Read(dir / "copy" / file.name) == Read(source / file.name));
    CHECK(file.sha256 == *FileSha256((source / file.name).string()));
  }
}

TEST_CASE("The assembler refuses damaged, reordered and truncated streams", "[artifacts]") {
  TempDir dir;
  const fs::path source = MakeSource(dir);
  std::vector<v1::ArtifactChunk> chunks = ReadArtifactChunks(source, 16);
  fs::create_directories(dir / "copy");
  ArtifactAssembler assembler((dir / "copy").string());
  absl::Status status;

  SECTION("a flipped byte fails the file's checksum") {
    chunks[4].mutable_data()->at(3) ^= 1;
    for (const v1::ArtifactChunk& chunk : chunks) {
      status = assembler.Add(chunk);
      if (!status.ok()) break;
    }
    CHECK(status.code() == absl::StatusCode::kDataLoss);
    CHECK(std::string(status.message()).find("sub/mixed.bin: sha256 mismatch") !=
          std::string::npos);
  }
  SECTION("a missing chunk is an offset gap") {
    chunks.erase(chunks.begin() + 4);
    for (const v1::ArtifactChunk& chunk : chunks) {
      status = assembler.Add(chunk);
      if (!status.ok()) break;
    }
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK(std::string(status.message()).find("a chunk is missing") != std::string::npos);
  }
  SECTION("a stream cut inside a file is truncated") {
    for (size_t i = 0; i < 4; ++i) REQUIRE(assembler.Add(chunks[i]).ok());
    status = assembler.Finish().status();
    CHECK(status.code() == absl::StatusCode::kDataLoss);
    CHECK(std::string(status.message()).find("truncated") != std::string::npos);
  }
  SECTION("a stream cut between files, without its end mark, is truncated too") {
    for (size_t i = 0; i + 1 < chunks.size(); ++i) REQUIRE(assembler.Add(chunks[i]).ok());
    status = assembler.Finish().status();
    CHECK(status.code() == absl::StatusCode::kDataLoss);
    CHECK(std::string(status.message()).find("without its end mark") != std::string::npos);
  }
  SECTION("an end mark that miscounts the files") {
    chunks.back().set_files(4);
    for (const v1::ArtifactChunk& chunk : chunks) {
      status = assembler.Add(chunk);
      if (!status.ok()) break;
    }
    CHECK(status.code() == absl::StatusCode::kDataLoss);
  }
  SECTION("a file sent twice") {
    chunks.insert(chunks.begin() + 1, chunks[0]);
    for (const v1::ArtifactChunk& chunk : chunks) {
      status = assembler.Add(chunk);
      if (!status.ok()) break;
    }
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK(std::string(status.message()).find("sent twice") != std::string::npos);
  }
  SECTION("a name escaping the folder") {
    v1::ArtifactChunk evil;
    evil.set_file_name("../outside.txt");
    evil.set_last(true);
    evil.set_sha256(Sha256Hex(""));
    status = assembler.Add(evil);
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK_FALSE(fs::exists(dir / "outside.txt"));
  }
  // Once failed, the assembler stays failed.
  CHECK_FALSE(assembler.Add(chunks[0]).ok());
}

TEST_CASE("The assembler enforces its size limits", "[artifacts]") {
  TempDir dir;
  const fs::path source = MakeSource(dir);
  std::vector<v1::ArtifactChunk> chunks = ReadArtifactChunks(source, 16);
  fs::create_directories(dir / "copy");
  ArtifactLimits limits;
  limits.max_total_bytes = 40;
  ArtifactAssembler assembler((dir / "copy").string(), limits);
  absl::Status status;
  for (const v1::ArtifactChunk& chunk : chunks) {
    status = assembler.Add(chunk);
    if (!status.ok()) break;
  }
  CHECK(status.code() == absl::StatusCode::kResourceExhausted);
}

TEST_CASE("CheckArtifactFileName accepts relative names only", "[artifacts]") {
  CHECK(CheckArtifactFileName("adapter_model.safetensors").ok());
  CHECK(CheckArtifactFileName("checkpoints/epoch-1/model.bin").ok());
  for (const char* bad : {"", "/etc/passwd", "a/../../b", "./a", "a//b", "a\\b"}) {
    INFO(bad);
    CHECK(CheckArtifactFileName(bad).code() == absl::StatusCode::kInvalidArgument);
  }
}

TEST_CASE("ListArtifactFiles refuses a symbolic link", "[artifacts]") {
  TempDir dir;
  Write(dir / "a" / "real.txt", "x");
  fs::create_symlink("/etc/hostname", dir / "a" / "link");
  auto files = ListArtifactFiles((dir / "a").string());
  CHECK(files.status().code() == absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace hpsearch::transfer
