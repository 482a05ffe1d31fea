// The SHA-256 of a study's data files, as `hpsearch submit` and `hpsearch run` send them with
// SubmitStudy (SubmitStudyRequest.data_sha256): the coordinator stores them with a new study and
// refuses to resume a study whose data changed since (naming the file).
//
// Thread-safety: stateless functions.
#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "hpsearch/v1/study.pb.h"

namespace hpsearch::cli {

// The lower-case hex SHA-256 of each data file `data` names (train, validation, test; each path
// once), keyed by the path as the spec names it. A file that cannot be read maps to its error
// (NOT_FOUND or DATA_LOSS naming the path); the caller decides whether that is fatal.
std::map<std::string, absl::StatusOr<std::string>> HashDataFiles(const v1::DataSpec& data);

}  // namespace hpsearch::cli
