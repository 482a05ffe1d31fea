#include "server/listen_check.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace hpsearch::server {

absl::Status CheckCanListen(const std::string& listen_address) {
  const size_t colon = listen_address.rfind(':');
  if (colon == std::string::npos || listen_address.rfind("unix:", 0) == 0) return absl::OkStatus();
  std::string host = listen_address.substr(0, colon);
  const std::string port = listen_address.substr(colon + 1);
  if (port == "0") return absl::OkStatus();
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  if (int error =
          ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found);
      error != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot listen on ", listen_address, ": host '", host, "' does not resolve (",
                     gai_strerror(error), "): use an address of this machine"));
  }
  absl::Status status = absl::OkStatus();
  for (addrinfo* at = found; at != nullptr && status.ok(); at = at->ai_next) {
    int fd = ::socket(at->ai_family, at->ai_socktype | SOCK_CLOEXEC, at->ai_protocol);
    if (fd < 0) continue;  // e.g. no IPv6 on this machine: gRPC skips it too
    int one = 1;
    // As gRPC binds: a port whose last connections linger in TIME_WAIT is free.
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, at->ai_addr, at->ai_addrlen) != 0) {
      const int error = errno;
      if (error == EADDRINUSE) {
        status = absl::FailedPreconditionError(absl::StrCat(
            "cannot listen on ", listen_address,
            ": the port is in use (another coordinator?); pick another with --listen HOST:PORT"));
      } else if (error == EADDRNOTAVAIL) {
        status = absl::FailedPreconditionError(absl::StrCat(
            "cannot listen on ", listen_address, ": ", host,
            " is not an address of this machine; use one of its addresses, 127.0.0.1 or 0.0.0.0"));
      } else if (error == EACCES) {
        status = absl::FailedPreconditionError(
            absl::StrCat("cannot listen on ", listen_address,
                         ": ports below 1024 need privileges; pick a port from 1024 to 65535"));
      }
    }
    ::close(fd);
  }
  ::freeaddrinfo(found);
  return status;
}

}  // namespace hpsearch::server
