// Fuzz target: the safetensors reader (core/safetensors.h): header length, JSON header (nesting
// bounded), dtypes, shapes and offsets, each checked against the file before anything is allocated.
// Any bytes give tensors or a core::Error. Links LibTorch as it is (uninstrumented; see
// docs/reliability.md, "Fuzzing", for the sanitizer options that needs).
#include <cstdint>

#include "core/error.h"
#include "core/safetensors.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static hpsearch::fuzz::ScratchFile file("model.safetensors");
  try {
    hpsearch::core::SafetensorsContents contents =
        hpsearch::core::ReadSafetensors(file.Write(data, size));
    for (const auto& [name, tensor] : contents.tensors) {
      if (name.empty() || !tensor.defined() || !tensor.is_contiguous()) std::abort();
    }
  } catch (const hpsearch::core::Error&) {
  }
  return 0;
}
