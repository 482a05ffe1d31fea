// Where the core tests find their inputs: the committed Banking77 and GPT-2 files and the
// checkpoint fixtures. Header-only.
#pragma once

#include <filesystem>
#include <string>

#include "formats/data_options.h"
#include "testing/testing.h"

namespace hpsearch::testing {

// data/banking77/<name> of the repository.
inline std::filesystem::path Banking77File(const std::string& name) {
  return SourceDir() / "data" / "banking77" / name;
}

// Data options for Banking77's CSV files (text in "text", label in "category").
inline formats::DataOptions Banking77Options() {
  formats::DataOptions options;
  options.label_column = "category";
  return options;
}

// The GPT-2 BPE files committed in data/gpt2.
inline std::filesystem::path Gpt2TokenizerDir() { return SourceDir() / "data" / "gpt2"; }

// Checkpoint fixtures written by scripts/make_checkpoint_fixtures.py.
inline std::filesystem::path CheckpointFixtureDir() {
  return SourceDir() / "tests" / "data" / "checkpoints";
}

}  // namespace hpsearch::testing
