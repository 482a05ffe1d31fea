// The reactor of a streaming call refused before it starts, and the status conversion the gRPC
// services use (rpc/grpc_status.h is its one home; imported here for server/'s own names).
#pragma once

#include <grpcpp/support/server_callback.h>
#include <grpcpp/support/status.h>

#include "rpc/grpc_status.h"

namespace hpsearch::server {

using rpc::FromGrpcStatus;
using rpc::ToGrpcStatus;

// A streaming call refused before it starts (its token, for one): finishes with `status` at once.
template <typename Reactor>
class RefusedReactor : public Reactor {
 public:
  explicit RefusedReactor(const grpc::Status& status) { this->Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace hpsearch::server
