// rpc/: token files, the constant-time compare, the per-call token check and the exposure warning.
#include "rpc/security.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "rpc/auth_token.h"
#include "testing/testing.h"

namespace hpsearch::rpc {
namespace {

using testing::TempDir;

std::string Write(const TempDir& dir, const std::string& name, const std::string& text,
                  mode_t mode = 0600) {
  std::string path = (dir / name).string();
  std::ofstream(path) << text;
  ::chmod(path.c_str(), mode);
  return path;
}

TEST_CASE("ReadAuthTokenFile reads the token and refuses unusable files by name", "[rpc][token]") {
  TempDir dir;
  const std::string token(40, 'a');
  SECTION("the token without its trailing newline, no warning") {
    auto read = ReadAuthTokenFile(Write(dir, "t", token + "\n"));
    REQUIRE(read.ok());
    CHECK(read->token == token);
    CHECK(read->warnings.empty());
  }
  SECTION("missing") {
    std::string path = (dir / "nope").string();
    auto read = ReadAuthTokenFile(path);
    CHECK(read.status().code() == absl::StatusCode::kNotFound);
    CHECK(read.status().message().find(path + " does not exist") != std::string::npos);
    CHECK(read.status().message().find("openssl rand -hex 32") != std::string::npos);
  }
  SECTION("empty or blank") {
    std::string path = Write(dir, "blank", " \n\n");
    auto read = ReadAuthTokenFile(path);
    CHECK(read.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(read.status().message().find(path + " is empty") != std::string::npos);
  }
  SECTION("a character metadata cannot carry") {
    auto read = ReadAuthTokenFile(Write(dir, "two", "abc def" + token));
    CHECK(read.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(read.status().message().find("character 4") != std::string::npos);
    CHECK(read.status().message().find("abc") == std::string::npos);  // never echoes the token
  }
  SECTION("a folder") {
    CHECK(ReadAuthTokenFile(dir.path().string()).status().code() ==
          absl::StatusCode::kInvalidArgument);
  }
  SECTION("readable by every user: a warning naming the file and the fix") {
    std::string path = Write(dir, "open", token, 0644);
    auto read = ReadAuthTokenFile(path);
    REQUIRE(read.ok());
    REQUIRE(read->warnings.size() == 1);
    CHECK(read->warnings[0].find(path + " is readable by every user") != std::string::npos);
    CHECK(read->warnings[0].find("mode 0644") != std::string::npos);
    CHECK(read->warnings[0].find("chmod 600") != std::string::npos);
  }
  SECTION("a short token: a warning") {
    auto read = ReadAuthTokenFile(Write(dir, "short", "hunter2"));
    REQUIRE(read.ok());
    REQUIRE(read->warnings.size() == 1);
    CHECK(read->warnings[0].find("short token (7 characters)") != std::string::npos);
  }
}

TEST_CASE("ConstantTimeEquals compares whole strings", "[rpc][token]") {
  CHECK(ConstantTimeEquals("secret", "secret"));
  CHECK(ConstantTimeEquals("", ""));
  CHECK_FALSE(ConstantTimeEquals("secret", "secreT"));
  CHECK_FALSE(ConstantTimeEquals("secret", "Secret"));
  CHECK_FALSE(ConstantTimeEquals("secret", "secret2"));  // a longer guess with the token as prefix
  CHECK_FALSE(ConstantTimeEquals("secret", "secre"));
  CHECK_FALSE(ConstantTimeEquals("secret", ""));
  CHECK_FALSE(ConstantTimeEquals("", "x"));
  // A difference in the high bit only.
  CHECK_FALSE(ConstantTimeEquals(std::string_view("a\x80", 2), std::string_view("a\x00", 2)));
}

TEST_CASE("TokenChecker accepts the bearer token only", "[rpc][token]") {
  const std::string token = "0123456789abcdef0123456789abcdef";
  TokenChecker checker(token);
  REQUIRE(checker.enabled());
  auto check = [&](std::vector<std::pair<std::string, std::string>> entries) {
    std::multimap<grpc::string_ref, grpc::string_ref> metadata;
    for (const auto& [key, value] : entries) metadata.emplace(key, value);
    return checker.Check(metadata);
  };
  CHECK(check({{"authorization", "Bearer " + token}}).ok());
  grpc::Status none = check({});
  CHECK(none.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(none.error_message().find("carried none") != std::string::npos);
  CHECK(none.error_message().find("--auth-token-file") != std::string::npos);
  grpc::Status wrong = check({{"authorization", "Bearer wrong-guess"}});
  CHECK(wrong.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(wrong.error_message().find("wrong-guess") == std::string::npos);
  CHECK(wrong.error_message().find(token) == std::string::npos);
  CHECK(check({{"authorization", token}}).error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(check({{"authorization", "Basic " + token}}).error_code() ==
        grpc::StatusCode::UNAUTHENTICATED);
  CHECK(check({{"x-token", "Bearer " + token}}).error_code() == grpc::StatusCode::UNAUTHENTICATED);
  // Without a token the coordinator accepts every call.
  TokenChecker open("");
  CHECK_FALSE(open.enabled());
  CHECK(open.Check(std::multimap<grpc::string_ref, grpc::string_ref>{}).ok());
}

TEST_CASE("Loopback listeners are quiet and others warn about what they lack", "[rpc][listen]") {
  for (const char* address :
       {"127.0.0.1:50051", "127.1.2.3:0", "localhost:1", "[::1]:50051", "LOCALHOST:5"}) {
    INFO(address);
    CHECK(IsLoopbackListenAddress(address));
    CHECK(ExposureWarning(address, false, false).empty());
  }
  for (const char* address : {"0.0.0.0:50051", "[::]:50051", "10.0.0.5:1", "node7:50051"}) {
    INFO(address);
    CHECK_FALSE(IsLoopbackListenAddress(address));
    CHECK(ExposureWarning(address, true, true).empty());
    std::string neither = ExposureWarning(address, false, false);
    CHECK(neither.find("neither TLS nor an auth token") != std::string::npos);
    CHECK(neither.find("--auth-token-file") != std::string::npos);
    CHECK(neither.find("--tls-cert") != std::string::npos);
    CHECK(ExposureWarning(address, true, false).find("without an auth token") != std::string::npos);
    CHECK(ExposureWarning(address, false, true).find("without TLS") != std::string::npos);
  }
}

TEST_CASE("Security files: TLS needs both halves and PEM content", "[rpc][tls]") {
  TempDir dir;
  std::string pem =
      Write(dir, "x.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
  std::string text = Write(dir, "x.txt", "hello");
  ServerSecurityOptions half;
  half.tls_cert_file = pem;
  CHECK(LoadServerSecurity(half).status().message().find("go together") != std::string::npos);
  ServerSecurityOptions not_pem;
  not_pem.tls_cert_file = pem;
  not_pem.tls_key_file = text;
  auto refused = LoadServerSecurity(not_pem);
  CHECK(refused.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(refused.status().message().find("--tls-key " + text) != std::string::npos);
  ServerSecurityOptions plain;
  auto open = LoadServerSecurity(plain);
  REQUIRE(open.ok());
  CHECK_FALSE(open->tls);
  CHECK(open->auth_token.empty());
  ClientSecurityOptions missing_ca;
  missing_ca.tls_ca_file = (dir / "none.pem").string();
  CHECK(LoadClientSecurity(missing_ca).status().message().find("--tls-ca") != std::string::npos);
  ClientSecurityOptions ca;
  ca.tls_ca_file = pem;
  auto client = LoadClientSecurity(ca);
  REQUIRE(client.ok());
  CHECK(client->tls);
  CHECK(ConnectionHint(*client).find("uses TLS") != std::string::npos);
}

TEST_CASE("Client security falls back to the environment", "[rpc][env]") {
  ::setenv(kAuthTokenFileEnv, "/from/env/token", 1);
  ::setenv(kTlsCaEnv, "/from/env/ca.pem", 1);
  ClientSecurityOptions given;
  given.auth_token_file = "/from/flag";
  ClientSecurityOptions resolved = WithEnvironmentDefaults(given);
  CHECK(resolved.auth_token_file == "/from/flag");
  CHECK(resolved.tls_ca_file == "/from/env/ca.pem");
  CHECK(WithEnvironmentDefaults({}).auth_token_file == "/from/env/token");
  ::unsetenv(kAuthTokenFileEnv);
  ::unsetenv(kTlsCaEnv);
  CHECK(WithEnvironmentDefaults({}).auth_token_file.empty());
}

}  // namespace
}  // namespace hpsearch::rpc
