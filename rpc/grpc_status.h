// The one conversion between absl::Status (what db/, server/, worker/ and cli/ return) and
// grpc::Status (what a reactor finishes with and what a stub call returns). gRPC's and Abseil's
// status codes share their numbers, so codes map one to one; the message is kept.
#pragma once

#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace hpsearch::rpc {

// A status code sent as a plain number (a reply's `code` field) as an absl::Status.
inline absl::Status StatusFromCode(int code, absl::string_view message) {
  return absl::Status(static_cast<absl::StatusCode>(code), message);
}

inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

// `context`, when given, prefixes the message ("UploadArtifact: ...").
inline absl::Status FromGrpcStatus(const grpc::Status& status, absl::string_view context = {}) {
  if (status.ok()) return absl::OkStatus();
  if (context.empty()) return StatusFromCode(status.error_code(), status.error_message());
  return StatusFromCode(status.error_code(), absl::StrCat(context, ": ", status.error_message()));
}

// The name of a gRPC status code as Abseil spells it ("UNAVAILABLE").
inline std::string GrpcCodeName(grpc::StatusCode code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

}  // namespace hpsearch::rpc
