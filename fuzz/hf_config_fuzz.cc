// Fuzz target: config.json (formats/hf_config.h), through LoadHfGpt2Config on the bytes as a file,
// then ApplyHfGpt2Config onto a Gpt2Config, which is where sizes are checked against the documented
// limits. Any bytes give a config or a core::Error.
#include <cstdint>

#include "core/error.h"
#include "core/gpt2_config.h"
#include "core/hf_config.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static hpsearch::fuzz::ScratchFile file("config.json");
  try {
    const std::string& path = file.Write(data, size);
    hpsearch::formats::HfGpt2Config hf = hpsearch::formats::LoadHfGpt2Config(path);
    hpsearch::core::Gpt2Config config;
    hpsearch::core::ApplyHfGpt2Config(hf, path, &config);
  } catch (const hpsearch::core::Error&) {
  }
  return 0;
}
