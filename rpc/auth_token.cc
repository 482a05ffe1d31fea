#include "rpc/auth_token.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace hpsearch::rpc {
namespace {

constexpr char kMakeTokenHint[] = "openssl rand -hex 32 > FILE && chmod 600 FILE";

std::string FlagHint() {
  return absl::StrCat("pass --auth-token-file FILE (or set ", kAuthTokenFileEnv,
                      ") naming the coordinator's token file");
}

}  // namespace

absl::StatusOr<AuthToken> ReadAuthTokenFile(const std::string& path) {
  struct stat info;
  if (::stat(path.c_str(), &info) != 0) {
    int error = errno;
    if (error == ENOENT) {
      return absl::NotFoundError(absl::StrCat("auth token file ", path,
                                              " does not exist: create it (", kMakeTokenHint,
                                              ") or fix --auth-token-file"));
    }
    return absl::PermissionDeniedError(
        absl::StrCat("auth token file ", path, ": ", std::strerror(error)));
  }
  if (!S_ISREG(info.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("auth token file ", path, " is not a regular file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::PermissionDeniedError(absl::StrCat(
        "auth token file ", path, " cannot be read by this user: ", std::strerror(errno)));
  }
  std::stringstream content;
  content << in.rdbuf();
  AuthToken result;
  result.token = std::string(absl::StripAsciiWhitespace(content.str()));
  if (result.token.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "auth token file ", path, " is empty: put a secret in it (", kMakeTokenHint, ")"));
  }
  for (size_t i = 0; i < result.token.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(result.token[i]);
    // A gRPC metadata value is printable ASCII; a space inside would also be ambiguous after
    // "Bearer ".
    if (c <= 0x20 || c >= 0x7f) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "auth token file %s: character %d of the token is whitespace or not printable ASCII; "
          "use a single word such as the output of `openssl rand -hex 32`",
          path, static_cast<int>(i + 1)));
    }
  }
  if ((info.st_mode & S_IROTH) != 0) {
    result.warnings.push_back(absl::StrFormat(
        "auth token file %s is readable by every user on this machine (mode %04o): chmod 600 %s",
        path, static_cast<int>(info.st_mode & 07777), path));
  }
  if (result.token.size() < kMinRecommendedTokenLength) {
    result.warnings.push_back(absl::StrFormat(
        "auth token file %s holds a short token (%d characters): use at least %d random ones (%s)",
        path, static_cast<int>(result.token.size()), static_cast<int>(kMinRecommendedTokenLength),
        kMakeTokenHint));
  }
  return result;
}

bool ConstantTimeEquals(std::string_view expected, std::string_view given) {
  // Every byte of `expected` is visited whatever `given` holds; a length mismatch folds into the
  // result instead of returning early.
  unsigned char diff = expected.size() == given.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    unsigned char other = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    diff |= static_cast<unsigned char>(static_cast<unsigned char>(expected[i]) ^ other);
  }
  // Keep the compiler from turning the loop into an early-exit comparison.
  volatile unsigned char result = diff;
  return result == 0;
}

grpc::Status TokenChecker::Check(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) const {
  if (token_.empty()) return grpc::Status::OK;
  auto it = metadata.find(kAuthMetadataKey);
  if (it == metadata.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        absl::StrCat("this coordinator requires an auth token and the call carried "
                                     "none: ",
                                     FlagHint()));
  }
  std::string_view value(it->second.data(), it->second.size());
  constexpr std::string_view kScheme(kAuthScheme);
  bool has_scheme = value.size() >= kScheme.size() && value.substr(0, kScheme.size()) == kScheme;
  std::string_view given = has_scheme ? value.substr(kScheme.size()) : std::string_view();
  if (!has_scheme || !ConstantTimeEquals(token_, given)) {
    return grpc::Status(
        grpc::StatusCode::UNAUTHENTICATED,
        absl::StrCat("the auth token this call carried is not the coordinator's: ", FlagHint()));
  }
  return grpc::Status::OK;
}

}  // namespace hpsearch::rpc
