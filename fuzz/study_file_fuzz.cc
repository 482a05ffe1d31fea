// Fuzz target: the study file reader and its validator (server/study_file/study_file.h):
// ParseStudyYaml parses the YAML (nesting bounded) and runs NormalizeStudySpec on what it read. It
// reports problems as issues and never throws: any exception escaping is a bug. A spec that loads
// without errors must also write back to YAML that reads to a valid spec again.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz/fuzz_util.h"
#include "server/study_file/study_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hpsearch::server::ValidationOptions options;
  // Data paths are not looked up: the fuzzer must not depend on (or probe) this machine's files.
  options.check_files = false;
  options.file_exists = [](const std::string&) { return false; };
  options.dir_exists = [](const std::string&) { return false; };
  const std::string text(hpsearch::fuzz::AsText(data, size));
  hpsearch::server::LoadedStudy loaded =
      hpsearch::server::ParseStudyYaml(text, "fuzz.yaml", "/fuzz", options);
  if (loaded.ok()) {
    const std::string again = hpsearch::server::StudySpecToYaml(loaded.spec);
    hpsearch::server::LoadedStudy reloaded =
        hpsearch::server::ParseStudyYaml(again, "fuzz-again.yaml", "/fuzz", options);
    if (!reloaded.ok()) {
      std::fprintf(stderr, "a valid spec did not read back from its own YAML:\n%s\n",
                   again.c_str());
      for (const auto& issue : reloaded.issues)
        std::fprintf(stderr, "%s\n", issue.ToString().c_str());
      std::abort();
    }
  }
  return 0;
}
