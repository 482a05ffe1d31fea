// gRPC health checking (grpc.health.v1) against a real `hpsearch serve` with TLS and a token:
// answered without the token while every hpsearch call still needs it, and `hpsearch health` (the
// exec probe of the Kubernetes manifests, the compose file and the Slurm script's wait) over the
// same connection flags as every client command; and one coordinator per port.
#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "grpc/health/v1/health.grpc.pb.h"
#include "integration/certificates.h"
#include "integration/cluster.h"

namespace hpsearch::testing {
namespace {

using namespace std::chrono_literals;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

constexpr char kHealthToken[] = "5d1e8a3c7b9f0e2d4c6a8b1f3e5d7c9a0b2e4f6a8c1d3e5f";

std::shared_ptr<grpc::Channel> HealthTlsChannelWithoutToken(const std::string& address,
                                                            const std::string& ca) {
  rpc::ClientSecurityOptions options;
  options.tls_ca_file = ca;
  auto security = rpc::LoadClientSecurity(options);
  REQUIRE(security.ok());
  REQUIRE(security->auth_token.empty());
  return rpc::CreateChannel(address, *security);
}

grpc::Status HealthCheck(const std::shared_ptr<grpc::Channel>& channel, const std::string& service,
                         HealthCheckResponse* response) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 10s);
  HealthCheckRequest request;
  request.set_service(service);
  return stub->Check(&context, request, response);
}

ProcessResult HpsearchHealth(std::vector<std::string> args) {
  args.insert(args.begin(), (BinDir() / "hpsearch").string());
  return RunProcess(args);
}

struct HealthTestCluster {
  TempDir secrets;
  TestCertificates certs = MakeCertificates(secrets);
  std::string token_file = [this] {
    std::string path = (secrets / "token").string();
    std::ofstream(path) << kHealthToken;
    ::chmod(path.c_str(), 0600);
    return path;
  }();
  Cluster cluster{ClusterSecurity{
      {"--tls-cert", certs.cert, "--tls-key", certs.key, "--auth-token-file", token_file},
      {"--tls-ca", certs.ca, "--auth-token-file", token_file},
      [this] {
        rpc::ClientSecurityOptions stubs;
        stubs.tls_ca_file = certs.ca;
        stubs.auth_token_file = token_file;
        return stubs;
      }()}};
};

TEST_CASE("The coordinator answers grpc.health.v1 without a token, and nothing else without one",
          "[integration][health]") {
  HealthTestCluster secure;
  auto channel = HealthTlsChannelWithoutToken(secure.cluster.address(), secure.certs.ca);

  for (const char* service : {"", "hpsearch.v1.StudyService", "hpsearch.v1.WorkerService"}) {
    INFO("service '" << service << "'");
    HealthCheckResponse response;
    grpc::Status status = HealthCheck(channel, service, &response);
    INFO(status.error_message());
    REQUIRE(status.ok());
    CHECK(response.status() == HealthCheckResponse::SERVING);
  }
  HealthCheckResponse unknown;
  CHECK(HealthCheck(channel, "no.such.Service", &unknown).error_code() ==
        grpc::StatusCode::NOT_FOUND);

  // The same tokenless channel is refused by the coordinator's own services.
  auto studies = v1::StudyService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 10s);
  v1::ListStudiesResponse list;
  CHECK(studies->ListStudies(&context, {}, &list).error_code() ==
        grpc::StatusCode::UNAUTHENTICATED);
}

TEST_CASE("hpsearch health answers SERVING over TLS, and fails without TLS or on no such service",
          "[integration][health]") {
  HealthTestCluster secure;
  const std::string& address = secure.cluster.address();

  ProcessResult without_token =
      HpsearchHealth({"health", "--coordinator", address, "--tls-ca", secure.certs.ca});
  INFO(without_token.err);
  CHECK(without_token.exit_code == 0);
  CHECK(without_token.out == "SERVING\n");

  ProcessResult with_token =
      HpsearchHealth({"health", "--coordinator", address, "--tls-ca", secure.certs.ca,
                      "--auth-token-file", secure.token_file});
  CHECK(with_token.exit_code == 0);
  CHECK(with_token.out == "SERVING\n");

  ProcessResult service =
      HpsearchHealth({"health", "--coordinator", address, "--tls-ca", secure.certs.ca, "--service",
                      "hpsearch.v1.WorkerService"});
  CHECK(service.exit_code == 0);

  ProcessResult unknown = HpsearchHealth({"health", "--coordinator", address, "--tls-ca",
                                          secure.certs.ca, "--service", "no.such.Service"});
  CHECK(unknown.exit_code == 1);
  CHECK(unknown.err.find("no service named 'no.such.Service'") != std::string::npos);

  // Plaintext against TLS, and a CA that signed nothing of ours: not healthy, and said why.
  ProcessResult plain = HpsearchHealth({"health", "--coordinator", address, "--timeout", "5"});
  CHECK(plain.exit_code == 1);
  CHECK(plain.err.find("UNAVAILABLE") != std::string::npos);
  ProcessResult untrusted = HpsearchHealth(
      {"health", "--coordinator", address, "--tls-ca", secure.certs.other_ca, "--timeout", "5"});
  CHECK(untrusted.exit_code == 1);
  CHECK(untrusted.out.empty());
}

TEST_CASE(
    "hpsearch health --wait waits for a coordinator that starts later, and without --wait fails",
    "[integration][health]") {
  HealthTestCluster secure;
  Cluster& cluster = secure.cluster;
  const std::string address = cluster.address();
  const int port = cluster.port();
  cluster.coordinator().Kill(SIGTERM);
  REQUIRE(cluster.coordinator().Wait(20s) >= 0);

  ProcessResult down = HpsearchHealth(
      {"health", "--coordinator", address, "--tls-ca", secure.certs.ca, "--timeout", "5"});
  CHECK(down.exit_code == 1);
  CHECK(down.err.find("UNAVAILABLE") != std::string::npos);

  ChildProcess waiting({(BinDir() / "hpsearch").string(), "health", "--coordinator", address,
                        "--tls-ca", secure.certs.ca, "--wait", "--timeout", "60"},
                       (secure.secrets / "health-wait").string());
  // Still waiting while nothing listens (it would have exited 1 at once without --wait).
  std::this_thread::sleep_for(1s);
  CHECK(waiting.running());
  cluster.StartCoordinator(port);
  CHECK(waiting.Wait(60s) == 0);
  CHECK(waiting.Stdout() == "SERVING\n");
}

TEST_CASE("A second coordinator on a port in use exits with an error instead of sharing the port",
          "[integration][health]") {
  Cluster cluster;
  TempDir dir;
  // gRPC's default SO_REUSEPORT would let both listen, and the kernel split clients between them.
  ChildProcess second({(BinDir() / "hpsearch").string(), "serve", "--db",
                       (dir / "other.db").string(), "--listen", cluster.address()},
                      (dir / "second").string());
  CHECK(second.Wait(20s) == 1);
  CHECK(second.Stderr().find("cannot listen on " + cluster.address()) != std::string::npos);
  ProcessResult health = HpsearchHealth({"health", "--coordinator", cluster.address()});
  CHECK(health.exit_code == 0);
}

}  // namespace
}  // namespace hpsearch::testing
