// The two status macros every service module uses across its absl::Status edges (leveldb and gRPC
// write the same by hand). Defined once here; nothing else may define them.
//
//   HPSEARCH_RETURN_IF_ERROR(expr): returns the absl::Status of `expr` from the enclosing function
//     when it is not OK.
//   HPSEARCH_ASSIGN_OR_RETURN(lhs, expr): evaluates the absl::StatusOr `expr`; returns its status
//     when it is not OK, otherwise assigns (or declares, as in `auto x`) `lhs` from its value.
#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define HPSEARCH_RETURN_IF_ERROR(expr)                                \
  do {                                                                \
    if (absl::Status _status = (expr); !_status.ok()) return _status; \
  } while (0)

#define HPSEARCH_STATUS_MACROS_CONCAT_INNER(x, y) x##y
#define HPSEARCH_STATUS_MACROS_CONCAT(x, y) HPSEARCH_STATUS_MACROS_CONCAT_INNER(x, y)

#define HPSEARCH_ASSIGN_OR_RETURN(lhs, expr) \
  HPSEARCH_ASSIGN_OR_RETURN_IMPL(HPSEARCH_STATUS_MACROS_CONCAT(_status_or_, __LINE__), lhs, expr)

#define HPSEARCH_ASSIGN_OR_RETURN_IMPL(status_or, lhs, expr) \
  auto status_or = (expr);                                   \
  if (!status_or.ok()) return std::move(status_or).status(); \
  lhs = std::move(status_or).value()
