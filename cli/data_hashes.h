// The SHA-256 of a data file, as `hpsearch submit` sends them for the study's data files with
// SubmitStudy (SubmitStudyRequest.data_sha256): the coordinator stores them with a new study and
// refuses to resume a study whose data changed since (naming the file).
//
// Thread-safety: stateless functions.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace hpsearch::cli {

// The lower-case hex SHA-256 of the file's bytes; NOT_FOUND or DATA_LOSS naming the path when it
// cannot be read.
absl::StatusOr<std::string> Sha256OfFile(const std::string& path);

}  // namespace hpsearch::cli
