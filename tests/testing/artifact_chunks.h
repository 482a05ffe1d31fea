// ReadArtifactChunks / ArtifactChunksOf: a folder as the chunks of transfer::ArtifactChunkReader,
// for ArtifactChunksOf with the lease and worker id on the first one, as a worker's upload sends
// them. For tests of the artifact service, in-process and over gRPC. Header-only; fails the calling
// Catch2 test when the folder cannot be read.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "hpsearch/v1/service.pb.h"
#include "transfer/artifact_files.h"

namespace hpsearch::testing {

// Every chunk transfer::ArtifactChunkReader makes of `dir`, in order, the end mark included.
inline std::vector<v1::ArtifactChunk> ReadArtifactChunks(const std::filesystem::path& dir,
                                                         int64_t chunk_bytes) {
  auto files = transfer::ListArtifactFiles(dir.string());
  REQUIRE(files.ok());
  transfer::ArtifactChunkReader reader(dir.string(), *files, chunk_bytes);
  std::vector<v1::ArtifactChunk> chunks;
  while (true) {
    auto next = reader.Next();
    REQUIRE(next.ok());
    if (!next->has_value()) break;
    chunks.push_back(**next);
  }
  return chunks;
}

// The same, the first chunk carrying the lease and the worker id, as a worker's upload sends it.
inline std::vector<v1::ArtifactChunk> ArtifactChunksOf(const std::filesystem::path& dir,
                                                       int64_t chunk_bytes,
                                                       const std::string& lease,
                                                       const std::string& worker_id) {
  std::vector<v1::ArtifactChunk> chunks = ReadArtifactChunks(dir, chunk_bytes);
  REQUIRE(!chunks.empty());
  chunks[0].set_lease_id(lease);
  chunks[0].set_worker_id(worker_id);
  return chunks;
}

}  // namespace hpsearch::testing
