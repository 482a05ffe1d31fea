// The shared secret that guards the coordinator: how it is read from its file, how a call carries
// it and how the coordinator checks it.
//
// A call carries the token as the metadata entry `authorization: Bearer TOKEN` (what gRPC's own
// call credentials and most proxies use). The coordinator compares it in constant time and refuses
// a missing or wrong one with UNAUTHENTICATED; the refusal names the flag to pass and never repeats
// what was sent.
//
// Thread-safety: TokenChecker is immutable after construction and safe to share between threads.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"

namespace hpsearch::rpc {

// The metadata key and scheme of the token on every call.
inline constexpr char kAuthMetadataKey[] = "authorization";
inline constexpr char kAuthScheme[] = "Bearer ";
// Where the token file comes from when no --auth-token-file is given.
inline constexpr char kAuthTokenFileEnv[] = "HPSEARCH_AUTH_TOKEN_FILE";
// Tokens shorter than this draw a warning (`openssl rand -hex 32` makes 64 characters).
inline constexpr size_t kMinRecommendedTokenLength = 32;

struct AuthToken {
  std::string token;
  // Things worth telling the user that do not stop the program: a file others can read, a short
  // token. Each names the file and the fix.
  std::vector<std::string> warnings;
};

// Reads the token from `path`: the file's content without surrounding whitespace (a trailing
// newline is usual). Errors, each naming the file and the fix: the file is missing or unreadable
// (NOT_FOUND / PERMISSION_DENIED), empty, or holds characters a gRPC metadata value cannot carry
// (INVALID_ARGUMENT). A file readable by every user, or a short token, is a warning.
absl::StatusOr<AuthToken> ReadAuthTokenFile(const std::string& path);

// True when `given` equals `expected`. Its time depends on the length of `expected` only, never on
// where the first difference is, so how long a refusal takes tells nothing about how much of a
// guessed token was right.
bool ConstantTimeEquals(std::string_view expected, std::string_view given);

// Checks the token of one incoming call.
class TokenChecker {
 public:
  // An empty `token` accepts every call (the coordinator was started without --auth-token-file).
  explicit TokenChecker(std::string token) : token_(std::move(token)) {}

  bool enabled() const { return !token_.empty(); }

  // OK, or UNAUTHENTICATED saying whether the token was missing or wrong and which flag to pass.
  grpc::Status Check(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) const;
  grpc::Status Check(const grpc::CallbackServerContext& context) const {
    return Check(context.client_metadata());
  }

 private:
  std::string token_;
};

}  // namespace hpsearch::rpc
