// Transport security in one place: the coordinator's server credentials, and the channel every
// client (hpsearch's commands, hpsearch-worker) opens to it — TLS through gRPC's own SSL
// credentials and the auth token added to every call by an interceptor. proto/ and this folder are
// the bottom of the service tree: server/, worker/ and cli/ all use it, it uses none of them.
//
// Files are read once, when the Load* function runs; a missing or unusable file is an error that
// names it and the fix. Nothing here logs: warnings come back for the program to print.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"

namespace hpsearch::rpc {

// Environment variables the programs read when the matching flag is not given.
inline constexpr char kTlsCaEnv[] = "HPSEARCH_TLS_CA";

struct ServerSecurityOptions {
  // PEM certificate chain and private key. Both set: TLS; both empty: plaintext; one alone is an
  // error. The certificate must name (subjectAltName) every host or IP clients dial.
  std::string tls_cert_file;
  std::string tls_key_file;
  // Shared secret every call must carry; empty: no token is required.
  std::string auth_token_file;
};

struct ServerSecurity {
  std::shared_ptr<grpc::ServerCredentials> credentials;
  bool tls = false;
  std::string auth_token;  // empty when none is required
  std::vector<std::string> warnings;
};

absl::StatusOr<ServerSecurity> LoadServerSecurity(const ServerSecurityOptions& options);

// True for 127.0.0.0/8, ::1 and "localhost" (the host part of "host:port" or "[v6]:port").
bool IsLoopbackListenAddress(const std::string& listen_address);

// The warning a coordinator prints once at start when it listens beyond loopback without TLS or
// without a token (empty when it listens on loopback or has both): what is exposed and the flags
// that close it.
std::string ExposureWarning(const std::string& listen_address, bool tls, bool auth_token);

struct ClientSecurityOptions {
  // PEM root certificates that signed the coordinator's certificate. Set: TLS; empty: plaintext.
  std::string tls_ca_file;
  // The coordinator's shared secret; empty: calls carry no token.
  std::string auth_token_file;
};

// Fills empty fields from HPSEARCH_AUTH_TOKEN_FILE and HPSEARCH_TLS_CA.
ClientSecurityOptions WithEnvironmentDefaults(ClientSecurityOptions options);

struct ClientSecurity {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  bool tls = false;
  std::string auth_token;
  std::vector<std::string> warnings;
};

absl::StatusOr<ClientSecurity> LoadClientSecurity(const ClientSecurityOptions& options);

// A channel to `address` with the credentials of `security` (null: plaintext) and, when it has a
// token, an interceptor that adds the token to every call on the channel.
std::shared_ptr<grpc::Channel> CreateChannel(const std::string& address,
                                             const ClientSecurity& security,
                                             const grpc::ChannelArguments& args = {});

// What to add to an UNAVAILABLE failure: the TLS setting the client used and how to change it (a
// plaintext client cannot talk to a TLS coordinator, nor the reverse, and gRPC only says
// "unavailable").
std::string ConnectionHint(const ClientSecurity& security);

}  // namespace hpsearch::rpc
