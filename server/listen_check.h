// CheckCanListen: whether this process could listen on a host:port, tried with a plain socket
// before anything is created, so that `hpsearch serve` on a taken port fails before it creates or
// migrates a database. Advisory (another process may take the port between the check and gRPC's own
// bind); gRPC's bind still decides.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace hpsearch::server {

// OK when port 0 (any free port) or a socket could bind `listen_address` (host:port, [v6]:port);
// FAILED_PRECONDITION naming the address when it is taken or not an address of this machine;
// INVALID_ARGUMENT when the host does not resolve.
absl::Status CheckCanListen(const std::string& listen_address);

}  // namespace hpsearch::server
