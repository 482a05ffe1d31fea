// Fuzz target: the CSV reader (formats/csv.h). Any bytes give a table or a core::Error; nothing else
// may escape, and every record must have as many fields as the header.
#include <cstdint>
#include <cstdlib>

#include "core/error.h"
#include "formats/csv.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    hpsearch::formats::CsvTable table =
        hpsearch::formats::ParseCsv(hpsearch::fuzz::AsText(data, size), "fuzz.csv");
    for (const auto& record : table.records) {
      if (record.fields.size() != table.columns.size()) std::abort();
    }
  } catch (const hpsearch::core::Error&) {
  }
  return 0;
}
