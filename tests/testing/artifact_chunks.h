// ArtifactChunksOf: a folder as the chunks a worker's upload sends (transfer::ArtifactChunkReader),
// the first one carrying the lease and the worker id. For tests of the artifact service, in-process
// and over gRPC. Header-only; fails the calling Catch2 test when the folder cannot be read.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "hpsearch/v1/service.pb.h"
#include "transfer/artifact_files.h"

namespace hpsearch::testing {

inline std::vector<v1::ArtifactChunk> ArtifactChunksOf(const std::filesystem::path& dir,
                                                       size_t chunk_bytes, const std::string& lease,
                                                       const std::string& worker_id) {
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
  REQUIRE(!chunks.empty());
  chunks[0].set_lease_id(lease);
  chunks[0].set_worker_id(worker_id);
  return chunks;
}

}  // namespace hpsearch::testing
