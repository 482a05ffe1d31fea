// Fuzz target: the zip reader (core/zip_archive.h) that torch.save checkpoints go through. Opens
// the bytes as a file and reads every entry up to 1 MiB (the reader checks each entry's extent
// against the file before it reads, so a larger one is refused anyway). Any bytes give entries or a
// core::Error.
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "core/zip_archive.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static hpsearch::fuzz::ScratchFile file("archive.zip");
  try {
    hpsearch::core::ZipArchive archive(file.Write(data, size));
    for (const auto& entry : archive.entries()) {
      if (archive.Find(entry.name) == nullptr) std::abort();
      if (entry.size > (1u << 20)) continue;
      try {
        std::vector<char> bytes(entry.size);
        archive.Read(entry, bytes.data());
      } catch (const hpsearch::core::Error&) {
      }
    }
  } catch (const hpsearch::core::Error&) {
  }
  return 0;
}
