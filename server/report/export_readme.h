// The README.md that `hpsearch export` writes beside an exported adapter: how the trial was trained
// (study, parameters, seed, epochs, metrics, base checkpoint, data) and how to load it with
// `hpsearch-core predict` and with PEFT / transformers. Pure formatting over protos; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "hpsearch/v1/trial.pb.h"
#include "transfer/artifact_files.h"

namespace hpsearch::server {

struct ExportedArtifact {
  v1::Study study;
  v1::Trial trial;  // with its epochs and result
  int attempt = 0;  // the attempt that uploaded the files
  std::vector<transfer::ArtifactFile> files;
  std::string dir;  // where the files were written (as the user named it)
};

std::string RenderExportReadme(const ExportedArtifact& exported);

}  // namespace hpsearch::server
