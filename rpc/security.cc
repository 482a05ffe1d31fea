#include "rpc/security.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <grpcpp/support/client_interceptor.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "rpc/auth_token.h"

namespace hpsearch::rpc {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path, const char* flag, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(flag, " ", path, ": cannot read the ", what,
                                            " (missing, or not readable by this user)"));
  }
  std::stringstream content;
  content << in.rdbuf();
  std::string pem = content.str();
  if (pem.find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " ", path,
                                                   ": not a PEM file (no -----BEGIN "
                                                   "line); expected the ",
                                                   what));
  }
  return pem;
}

// Adds the token to the initial metadata of every call on a channel.
class TokenInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit TokenInterceptor(const std::string* value) : value_(value) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->emplace(kAuthMetadataKey, *value_);
    }
    methods->Proceed();
  }

 private:
  const std::string* value_;
};

class TokenInterceptorFactory : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit TokenInterceptorFactory(const std::string& token)
      : value_(absl::StrCat(kAuthScheme, token)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo* info) override {
    return new TokenInterceptor(&value_);
  }

 private:
  // Outlives every interceptor: the channel owns the factory for its whole life.
  const std::string value_;
};

std::string HostOf(const std::string& listen_address) {
  if (!listen_address.empty() && listen_address[0] == '[') {
    size_t close = listen_address.find(']');
    return listen_address.substr(1, close == std::string::npos ? std::string::npos : close - 1);
  }
  size_t colon = listen_address.rfind(':');
  return colon == std::string::npos ? listen_address : listen_address.substr(0, colon);
}

// Reads the auth token file, when one is given, into a ServerSecurity or ClientSecurity.
template <typename Security>
absl::Status AddAuthToken(const std::string& token_file, Security* security) {
  if (token_file.empty()) return absl::OkStatus();
  absl::StatusOr<AuthToken> token = ReadAuthTokenFile(token_file);
  if (!token.ok()) return token.status();
  security->auth_token = std::move(token->token);
  security->warnings = std::move(token->warnings);
  return absl::OkStatus();
}

}  // namespace

namespace {

// gRPC reports a key that does not belong to its certificate only as it starts the server, in its
// own log; checked here, the error names both files.
absl::Status CheckKeyMatchesCertificate(const std::string& cert_pem, const std::string& key_pem,
                                        const std::string& cert_file, const std::string& key_file) {
  std::unique_ptr<BIO, decltype(&BIO_free)> cert_bio(
      BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())), &BIO_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(
      BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())), &BIO_free);
  if (cert_bio == nullptr || key_bio == nullptr) return absl::ResourceExhaustedError("BIO_new");
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr), &X509_free);
  if (cert == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls-cert ", cert_file, " holds no readable PEM certificate (BEGIN CERTIFICATE)"));
  }
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  if (key == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat("--tls-key ", key_file,
                     " holds no readable, unencrypted PEM private key (BEGIN PRIVATE KEY)"));
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat("--tls-key ", key_file, " is not the private key of the certificate in ",
                     cert_file, ": pass the key generated with that certificate"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ServerSecurity> LoadServerSecurity(const ServerSecurityOptions& options) {
  ServerSecurity security;
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "--tls-cert and --tls-key go together: pass both (the certificate chain and its private "
        "key, PEM) or neither");
  }
  if (!options.tls_cert_file.empty()) {
    absl::StatusOr<std::string> cert =
        ReadPem(options.tls_cert_file, "--tls-cert", "certificate chain");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadPem(options.tls_key_file, "--tls-key", "private key");
    if (!key.ok()) return key.status();
    if (absl::Status match =
            CheckKeyMatchesCertificate(*cert, *key, options.tls_cert_file, options.tls_key_file);
        !match.ok()) {
      return match;
    }
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({*key, *cert});
    security.credentials = grpc::SslServerCredentials(ssl);
    security.tls = true;
  } else {
    security.credentials = grpc::InsecureServerCredentials();
  }
  if (absl::Status status = AddAuthToken(options.auth_token_file, &security); !status.ok()) {
    return status;
  }
  return security;
}

bool IsLoopbackListenAddress(const std::string& listen_address) {
  std::string host = absl::AsciiStrToLower(HostOf(listen_address));
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

std::string ExposureWarning(const std::string& listen_address, bool tls, bool auth_token) {
  if (IsLoopbackListenAddress(listen_address) || (tls && auth_token)) return "";
  if (!tls && !auth_token) {
    return absl::StrCat(
        "listening on ", listen_address,
        " beyond this machine with neither TLS nor an auth token: anyone who can reach the port "
        "can submit, cancel and report on studies. Pass --auth-token-file FILE and --tls-cert/"
        "--tls-key (docs/security.md), or listen on 127.0.0.1");
  }
  if (!auth_token) {
    return absl::StrCat("listening on ", listen_address,
                        " beyond this machine without an auth token: TLS hides the traffic but "
                        "anyone who can reach the port can submit, cancel and report on studies. "
                        "Pass --auth-token-file FILE (docs/security.md)");
  }
  return absl::StrCat("listening on ", listen_address,
                      " beyond this machine without TLS: the auth token and all traffic cross the "
                      "network in clear text. Pass --tls-cert/--tls-key (docs/security.md)");
}

ClientSecurityOptions WithEnvironmentDefaults(ClientSecurityOptions options) {
  if (options.auth_token_file.empty()) {
    if (const char* env = std::getenv(kAuthTokenFileEnv); env != nullptr) {
      options.auth_token_file = env;
    }
  }
  if (options.tls_ca_file.empty()) {
    if (const char* env = std::getenv(kTlsCaEnv); env != nullptr) options.tls_ca_file = env;
  }
  return options;
}

absl::StatusOr<ClientSecurity> LoadClientSecurity(const ClientSecurityOptions& options) {
  ClientSecurity security;
  if (!options.tls_ca_file.empty()) {
    absl::StatusOr<std::string> roots =
        ReadPem(options.tls_ca_file, "--tls-ca", "CA certificate(s) that signed the coordinator's");
    if (!roots.ok()) return roots.status();
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = *roots;
    security.credentials = grpc::SslCredentials(ssl);
    security.tls = true;
  } else {
    security.credentials = grpc::InsecureChannelCredentials();
  }
  if (absl::Status status = AddAuthToken(options.auth_token_file, &security); !status.ok()) {
    return status;
  }
  return security;
}

std::shared_ptr<grpc::Channel> CreateChannel(const std::string& address,
                                             const ClientSecurity& security,
                                             const grpc::ChannelArguments& args) {
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  if (!security.auth_token.empty()) {
    interceptors.push_back(std::make_unique<TokenInterceptorFactory>(security.auth_token));
  }
  return grpc::experimental::CreateCustomChannelWithInterceptors(
      address, security.credentials ? security.credentials : grpc::InsecureChannelCredentials(),
      args, std::move(interceptors));
}

std::string ConnectionHint(const ClientSecurity& security) {
  if (security.tls) {
    return "this client uses TLS (--tls-ca): check that the coordinator serves TLS with a "
           "certificate signed by that CA and naming the host you dialled";
  }
  return "this client uses plaintext: if the coordinator serves TLS, pass --tls-ca FILE";
}

}  // namespace hpsearch::rpc
