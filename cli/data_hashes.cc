#include "cli/data_hashes.h"

#include "transfer/sha256.h"

namespace hpsearch::cli {

std::map<std::string, absl::StatusOr<std::string>> HashDataFiles(const v1::DataSpec& data) {
  std::map<std::string, absl::StatusOr<std::string>> hashes;
  for (const std::string& path : {data.train_file(), data.validation_file(), data.test_file()}) {
    if (path.empty() || hashes.count(path) != 0) continue;
    hashes.emplace(path, transfer::FileSha256(path));
  }
  return hashes;
}

}  // namespace hpsearch::cli
