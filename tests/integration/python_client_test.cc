// examples/python/hpsearch_client.py against a real coordinator over TLS with a token: it submits a
// study, a real worker runs it, and the script reads the trials back. Skipped only where Debian's
// python3-grpcio is not installed (scripts/install-deps.sh installs it).
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "integration/certificates.h"
#include "integration/cluster.h"

namespace hpsearch::testing {
namespace {

using namespace std::chrono_literals;

TEST_CASE("The Python client submits a study and reads its trials over TLS with a token",
          "[integration][python]") {
  if (RunProcess({"/usr/bin/python3", "-c", "import grpc"}).exit_code != 0) {
    Skip("Debian's python3-grpcio is not installed (scripts/install-deps.sh installs it)");
  }
  TempDir secrets;
  TestCertificates certs = MakeCertificates(secrets);
  std::string token = (secrets / "token").string();
  std::ofstream(token) << "5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee5c0ffee";
  std::filesystem::permissions(
      token, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  ClusterSecurity security;
  security.serve_args = {"--tls-cert", certs.cert,          "--tls-key",
                         certs.key,    "--auth-token-file", token};
  security.client_args = {"--tls-ca", certs.ca, "--auth-token-file", token};
  security.stubs = {certs.ca, token};
  Cluster cluster(security);
  cluster.StartWorker("py-1");
  cluster.StartWorker("py-2");

  const std::string script = (SourceDir() / "examples/python/hpsearch_client.py").string();
  auto client = [&](std::vector<std::string> args) {
    std::vector<std::string> argv{"/usr/bin/python3",  script,     "--coordinator",
                                  cluster.address(),   "--tls-ca", certs.ca,
                                  "--auth-token-file", token};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProcess(argv);
  };
  ProcessResult submitted =
      client({"submit", "--name", "from-python", "--n-trials", "2", "--max-epochs", "2", "--wait"});
  INFO(submitted.out << submitted.err);
  REQUIRE(submitted.exit_code == 0);
  std::string id = submitted.out.substr(0, submitted.out.find('\n'));
  CHECK(id.rfind("st-", 0) == 0);
  // Two search trials and the final retrain, all complete, with real accuracies and parameters.
  CHECK(submitted.out.find("study from-python (" + id + "): complete") != std::string::npos);
  CHECK(submitted.out.find(" final  complete") != std::string::npos);
  CHECK(submitted.out.find("alpha=") != std::string::npos);
  CHECK(submitted.out.find("epochs=") != std::string::npos);
  CHECK(submitted.out.find("best: trial ") != std::string::npos);
  v1::Study study = cluster.GetStudy(id);
  CHECK(study.state() == v1::STUDY_STATE_COMPLETE);
  CHECK(study.trial_counts().at("complete") == 3);

  ProcessResult trials = client({"trials", "from-python"});
  CHECK(trials.exit_code == 0);
  CHECK(trials.out.find("    0 search complete") != std::string::npos);
  CHECK(trials.out.find("    1 search complete") != std::string::npos);

  // Without the token the coordinator refuses the script, and the script says so.
  ProcessResult refused = RunProcess({"/usr/bin/python3", script, "--coordinator",
                                      cluster.address(), "--tls-ca", certs.ca, "studies"});
  CHECK(refused.exit_code == 1);
  CHECK(refused.err.find("UNAUTHENTICATED") != std::string::npos);
}

}  // namespace
}  // namespace hpsearch::testing
