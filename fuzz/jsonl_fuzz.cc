// Fuzz target: the JSON Lines / JSON array reader (formats/jsonl.h). Any bytes give records or a
// core::Error; every record is an object, and printing one (as an error message might) must not
// overflow the stack, which the reader's nesting bound guarantees.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "core/error.h"
#include "formats/jsonl.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    std::vector<hpsearch::formats::JsonRecord> records =
        hpsearch::formats::ParseJsonRecords(hpsearch::fuzz::AsText(data, size), "fuzz.jsonl");
    for (const auto& record : records) {
      if (!record.object.is_object() || record.line < 1) std::abort();
      (void)record.object.dump();
    }
  } catch (const hpsearch::core::Error&) {
  }
  return 0;
}
