// Transport security with real processes on 127.0.0.1: the auth token on every RPC of both services
// (missing, wrong, right), token files checked at start, TLS with a certificate made here by the
// openssl CLI, plaintext against TLS, the exposure warning, and leases that only their holder may
// act on.
#include <signal.h>
#include <sys/stat.h>

#include <grpcpp/generic/generic_stub.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <regex>

#include "integration/certificates.h"
#include "integration/cluster.h"
#include "rpc/auth_token.h"

namespace hpsearch::testing {
namespace {

using namespace std::chrono_literals;

constexpr char kToken[] = "7f3c9a0e5b2d4c8e9a1f6b3d2c7e8a9f0b1c2d3e4f5a6b7c";

std::string WriteFile(const TempDir& dir, const std::string& name, const std::string& text,
                      mode_t mode = 0600) {
  std::string path = (dir / name).string();
  std::ofstream(path) << text;
  ::chmod(path.c_str(), mode);
  return path;
}

int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Calls `method` (a full path, "/hpsearch.v1.StudyService/GetStudy") with one empty request message
// and returns the status it ends with, whatever its streaming kind.
grpc::Status CallWithEmptyRequest(const std::shared_ptr<grpc::Channel>& channel,
                                  const std::string& method) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 10s);
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call =
      stub.PrepareCall(&context, method, &cq);
  auto step = [&](intptr_t expected) {
    void* tag = nullptr;
    bool ok = false;
    REQUIRE(cq.Next(&tag, &ok));
    REQUIRE(reinterpret_cast<intptr_t>(tag) == expected);
    return ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  if (step(1)) {
    grpc::Slice nothing(std::string{});
    grpc::ByteBuffer empty(&nothing, 1);
    call->Write(empty, reinterpret_cast<void*>(2));
    step(2);
    call->WritesDone(reinterpret_cast<void*>(3));
    step(3);
    grpc::ByteBuffer response;
    do {
      call->Read(&response, reinterpret_cast<void*>(4));
    } while (step(4));
  }
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  step(5);
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
  return status;
}

// Every method of both services, as "/package.Service/Method", from the proto descriptors: a method
// added later is covered without touching this test.
std::vector<std::string> AllMethods() {
  const google::protobuf::FileDescriptor* file = v1::SubmitStudyRequest::descriptor()->file();
  std::vector<std::string> methods;
  for (int s = 0; s < file->service_count(); ++s) {
    const google::protobuf::ServiceDescriptor* service = file->service(s);
    for (int m = 0; m < service->method_count(); ++m) {
      methods.push_back("/" + service->full_name() + "/" + service->method(m)->name());
    }
  }
  return methods;
}

std::shared_ptr<grpc::Channel> ChannelWith(const std::string& address, const std::string& token,
                                           const std::string& ca = "") {
  rpc::ClientSecurity security;
  security.auth_token = token;
  if (!ca.empty()) {
    rpc::ClientSecurityOptions options;
    options.tls_ca_file = ca;
    auto loaded = rpc::LoadClientSecurity(options);
    REQUIRE(loaded.ok());
    security.credentials = loaded->credentials;
  }
  return rpc::CreateChannel(address, security);
}

ProcessResult HpsearchCliWithEnv(std::vector<std::string> args,
                                 const std::vector<std::string>& env = {}) {
  args.insert(args.begin(), (BinDir() / "hpsearch").string());
  return RunProcess(args, "", env);
}

TEST_CASE("Every RPC of both services refuses a missing or wrong token and lets the right one in",
          "[integration][security]") {
  TempDir secrets;
  std::string token_file = WriteFile(secrets, "token", std::string(kToken) + "\n");
  ClusterSecurity security;
  security.serve_args = {"--auth-token-file", token_file};
  security.client_args = {"--auth-token-file", token_file};
  security.stubs.auth_token_file = token_file;
  Cluster cluster(security);
  CHECK(cluster.coordinator().Stdout().find("auth token required") != std::string::npos);

  auto anonymous = ChannelWith(cluster.address(), "");
  auto wrong = ChannelWith(cluster.address(), "not-the-token-0123456789abcdef0123456789");
  auto right = ChannelWith(cluster.address(), kToken);
  std::vector<std::string> methods = AllMethods();
  REQUIRE(methods.size() >= 16);
  for (const std::string& method : methods) {
    INFO(method);
    grpc::Status with_token = CallWithEmptyRequest(right, method);
    CHECK(with_token.error_code() != grpc::StatusCode::UNAUTHENTICATED);
    if (with_token.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      // Not served by this coordinator at all: it acts on nothing, with or without a token.
      continue;
    }
    grpc::Status missing = CallWithEmptyRequest(anonymous, method);
    CHECK(missing.error_code() == grpc::StatusCode::UNAUTHENTICATED);
    CHECK(missing.error_message().find("--auth-token-file") != std::string::npos);
    grpc::Status refused = CallWithEmptyRequest(wrong, method);
    CHECK(refused.error_code() == grpc::StatusCode::UNAUTHENTICATED);
    CHECK(refused.error_message().find("--auth-token-file") != std::string::npos);
    CHECK(refused.error_message().find("not-the-token") == std::string::npos);
    CHECK(refused.error_message().find(kToken) == std::string::npos);
  }

  // The command line: refused without the token, accepted with the flag or the environment.
  ProcessResult bare = HpsearchCliWithEnv({"status", "--coordinator", cluster.address()});
  CHECK(bare.exit_code == 1);
  CHECK(bare.err.find("UNAUTHENTICATED") != std::string::npos);
  CHECK(bare.err.find("--auth-token-file") != std::string::npos);
  CHECK(HpsearchCliWithEnv(
            {"status", "--coordinator", cluster.address(), "--auth-token-file", token_file})
            .exit_code == 0);
  CHECK(HpsearchCliWithEnv({"status", "--coordinator", cluster.address()},
                           {"HPSEARCH_AUTH_TOKEN_FILE=" + token_file})
            .exit_code == 0);

  // A worker without the token stops at once (no retrying a refusal); one with it runs a study.
  std::string wrong_file = WriteFile(secrets, "wrong", "a-different-secret-0123456789abcdef0123");
  ProcessResult refused_worker =
      RunProcess({(BinDir() / "hpsearch-worker").string(), "--coordinator", cluster.address(),
                  "--auth-token-file", wrong_file});
  CHECK(refused_worker.exit_code == 3);  // refused credentials (worker/supervisor.h)
  CHECK(refused_worker.err.find("the coordinator refused this worker's credentials") !=
        std::string::npos);
  CHECK(refused_worker.err.find("auth token this call carried is not the coordinator's") !=
        std::string::npos);
  CHECK(refused_worker.err.find("a-different-secret") == std::string::npos);
  StudyOptions options;
  options.name = "with-token";
  options.n_trials = 2;
  std::string id = cluster.Submit(options);
  cluster.StartWorker("w1");
  CHECK(cluster.WaitForEnd(id, 60s) == v1::STUDY_STATE_COMPLETE);
}

TEST_CASE("Token, certificate and key files are checked when each program starts",
          "[integration][security]") {
  TempDir dir;
  std::string db = (dir / "results.db").string();
  std::string missing = (dir / "no-such-token").string();
  std::string empty = WriteFile(dir, "empty", "\n");
  std::string spaced = WriteFile(dir, "spaced", "two words here 0123456789abcdef0123456789");
  std::string open = WriteFile(dir, "open", std::string(kToken) + "\n", 0644);

  auto serve_fails = [&](const std::vector<std::string>& extra, const std::string& expect) {
    std::vector<std::string> args{"serve", "--db", db, "--listen", "127.0.0.1:0"};
    args.insert(args.end(), extra.begin(), extra.end());
    ProcessResult result = HpsearchCliWithEnv(args);
    INFO(result.err);
    CHECK(result.exit_code == 2);
    CHECK(result.err.find(expect) != std::string::npos);
  };
  serve_fails({"--auth-token-file", missing}, missing + " does not exist");
  serve_fails({"--auth-token-file", empty}, empty + " is empty");
  serve_fails({"--auth-token-file", spaced}, "whitespace");
  serve_fails({"--tls-cert", open}, "--tls-cert and --tls-key go together");
  serve_fails({"--tls-cert", open, "--tls-key", open}, "not a PEM file");
  CHECK_FALSE(std::filesystem::exists(db));  // refused before anything was written

  // Clients check the same way before they call anything.
  ProcessResult status = HpsearchCliWithEnv({"status", "--auth-token-file", missing});
  CHECK(status.exit_code == 2);
  CHECK(status.err.find(missing) != std::string::npos);
  ProcessResult worker =
      RunProcess({(BinDir() / "hpsearch-worker").string(), "--auth-token-file", empty});
  CHECK(worker.exit_code == 2);
  CHECK(worker.err.find(empty + " is empty") != std::string::npos);
  ProcessResult bad_ca = HpsearchCliWithEnv({"status", "--tls-ca", empty});
  CHECK(bad_ca.exit_code == 2);
  CHECK(bad_ca.err.find("not a PEM file") != std::string::npos);

  // A token file every user can read still works, with a warning that names it and the fix.
  ChildProcess serve({(BinDir() / "hpsearch").string(), "serve", "--db", db, "--listen",
                      "127.0.0.1:0", "--auth-token-file", open},
                     (dir / "serve").string());
  REQUIRE(serve.WaitForStdout("listening on", 20s));
  CHECK(serve.Stderr().find(open + " is readable by every user") != std::string::npos);
  CHECK(serve.Stderr().find("chmod 600 " + open) != std::string::npos);
}

TEST_CASE("A study runs over TLS with a certificate made for 127.0.0.1 and plaintext is refused",
          "[integration][security][tls]") {
  TempDir secrets;
  TestCertificates certs = MakeCertificates(secrets);
  std::string token_file = WriteFile(secrets, "token", kToken);
  ClusterSecurity security;
  security.serve_args = {"--tls-cert", certs.cert,          "--tls-key",
                         certs.key,    "--auth-token-file", token_file};
  security.client_args = {"--tls-ca", certs.ca, "--auth-token-file", token_file};
  security.stubs.tls_ca_file = certs.ca;
  security.stubs.auth_token_file = token_file;
  Cluster cluster(security);
  CHECK(cluster.coordinator().Stdout().find("TLS") != std::string::npos);

  StudyOptions options;
  options.name = "over-tls";
  options.n_trials = 2;
  std::string id = cluster.Submit(options);
  cluster.StartWorker("tls-worker");
  CHECK(cluster.WaitForEnd(id, 60s) == v1::STUDY_STATE_COMPLETE);
  ProcessResult status =
      HpsearchCliWithEnv({"status", "over-tls", "--coordinator", cluster.address(), "--tls-ca",
                          certs.ca, "--auth-token-file", token_file});
  CHECK(status.exit_code == 0);
  CHECK(status.out.find("complete") != std::string::npos);

  // A plaintext client gets a clean failure that points at --tls-ca, not a hang or a crash.
  ProcessResult plain = HpsearchCliWithEnv(
      {"status", "--coordinator", cluster.address(), "--auth-token-file", token_file});
  CHECK(plain.exit_code == 1);
  CHECK(plain.err.find("UNAVAILABLE") != std::string::npos);
  CHECK(plain.err.find("--tls-ca") != std::string::npos);
  CHECK(CallWithEmptyRequest(ChannelWith(cluster.address(), kToken),
                             "/hpsearch.v1.StudyService/ListStudies")
            .error_code() == grpc::StatusCode::UNAVAILABLE);
  // A CA that did not sign the coordinator's certificate is not trusted.
  ProcessResult untrusted =
      HpsearchCliWithEnv({"status", "--coordinator", cluster.address(), "--tls-ca", certs.other_ca,
                          "--auth-token-file", token_file});
  CHECK(untrusted.exit_code == 1);
  CHECK(untrusted.err.find("UNAVAILABLE") != std::string::npos);
  // TLS alone does not let a caller in: the token is still required.
  CHECK(CallWithEmptyRequest(ChannelWith(cluster.address(), "", certs.ca),
                             "/hpsearch.v1.StudyService/ListStudies")
            .error_code() == grpc::StatusCode::UNAUTHENTICATED);

  // A plaintext worker keeps retrying, says why in its log, and stops cleanly on SIGTERM.
  ChildProcess plain_worker({(BinDir() / "hpsearch-worker").string(), "--coordinator",
                             cluster.address(), "--auth-token-file", token_file},
                            (secrets / "plain-worker").string());
  auto give_up = std::chrono::steady_clock::now() + 20s;
  while (plain_worker.Stderr().find("--tls-ca") == std::string::npos &&
         std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(50ms);
  }
  CHECK(plain_worker.Stderr().find("if the coordinator serves TLS, pass --tls-ca") !=
        std::string::npos);
  plain_worker.Kill(SIGTERM);
  CHECK(plain_worker.Wait(20s) >= 0);
}

TEST_CASE("A TLS client is refused by a plaintext coordinator", "[integration][security][tls]") {
  TempDir secrets;
  TestCertificates certs = MakeCertificates(secrets);
  Cluster cluster;
  ProcessResult tls =
      HpsearchCliWithEnv({"status", "--coordinator", cluster.address(), "--tls-ca", certs.ca});
  CHECK(tls.exit_code == 1);
  CHECK(tls.err.find("UNAVAILABLE") != std::string::npos);
  CHECK(tls.err.find("this client uses TLS") != std::string::npos);
}

TEST_CASE("Listening beyond loopback without TLS draws one warning at start",
          "[integration][security]") {
  TempDir dir;
  std::string token_file = WriteFile(dir, "token", kToken);
  ChildProcess serve(
      {(BinDir() / "hpsearch").string(), "serve", "--db", (dir / "results.db").string(), "--listen",
       "0.0.0.0:0", "--auth-token-file", token_file},
      (dir / "serve").string());
  REQUIRE(serve.WaitForStdout("listening on", 20s));
  std::string err = serve.Stderr();
  CHECK(Count(err, "WARNING") == 1);
  CHECK(err.find("without TLS") != std::string::npos);
  CHECK(err.find("--tls-cert") != std::string::npos);

  ChildProcess local({(BinDir() / "hpsearch").string(), "serve", "--db",
                      (dir / "local.db").string(), "--listen", "127.0.0.1:0"},
                     (dir / "local").string());
  REQUIRE(local.WaitForStdout("listening on", 20s));
  CHECK(Count(local.Stderr(), "WARNING") == 0);
}

TEST_CASE("A worker cannot act on a lease another worker holds, over gRPC",
          "[integration][security][lease]") {
  Cluster cluster;
  StudyOptions options;
  options.name = "leases";
  options.n_trials = 2;
  std::string id = cluster.Submit(options);
  auto context = [] {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(std::chrono::system_clock::now() + 10s);
    return c;
  };
  auto register_worker = [&](const std::string& name) {
    v1::RegisterRequest request;
    request.mutable_info()->set_name(name);
    v1::RegisterResponse response;
    REQUIRE(cluster.workers->Register(context().get(), request, &response).ok());
    return response.worker_id();
  };
  std::string holder = register_worker("holder");
  std::string intruder = register_worker("intruder");
  v1::AcquireTrialRequest acquire;
  acquire.set_worker_id(holder);
  acquire.set_wait_ms(1000);
  v1::AcquireTrialResponse acquired;
  REQUIRE(cluster.workers->AcquireTrial(context().get(), acquire, &acquired).ok());
  const std::string lease = acquired.trial().lease_id();
  REQUIRE_FALSE(lease.empty());

  v1::ReportEpochRequest report;
  report.set_lease_id(lease);
  report.set_worker_id(intruder);
  report.mutable_metrics()->set_epoch(1);
  report.mutable_metrics()->set_val_accuracy(0.99);
  v1::ReportEpochResponse reported;
  grpc::Status epoch = cluster.workers->ReportEpoch(context().get(), report, &reported);
  CHECK(epoch.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  v1::CompleteTrialRequest complete;
  complete.set_lease_id(lease);
  complete.set_worker_id(intruder);
  v1::CompleteTrialResponse completed;
  CHECK(cluster.workers->CompleteTrial(context().get(), complete, &completed).error_code() ==
        grpc::StatusCode::PERMISSION_DENIED);
  v1::FailTrialRequest fail;
  fail.set_lease_id(lease);
  fail.set_worker_id(intruder);
  v1::FailTrialResponse failed;
  CHECK(cluster.workers->FailTrial(context().get(), fail, &failed).error_code() ==
        grpc::StatusCode::PERMISSION_DENIED);
  // Heartbeating someone else's lease does not keep it alive for them.
  v1::HeartbeatRequest heartbeat;
  heartbeat.set_worker_id(intruder);
  heartbeat.add_lease_ids(lease);
  v1::HeartbeatResponse beat;
  REQUIRE(cluster.workers->Heartbeat(context().get(), heartbeat, &beat).ok());
  CHECK(beat.leases(0).order() == v1::LEASE_ORDER_LOST);
  // Tell from a StudyService client cannot end a worker's lease either.
  v1::TellRequest tell;
  tell.set_lease_id(lease);
  tell.set_client_name("notebook");
  tell.set_state(v1::TRIAL_STATE_FAILED);
  v1::Trial told;
  CHECK(cluster.studies->Tell(context().get(), tell, &told).error_code() ==
        grpc::StatusCode::PERMISSION_DENIED);

  auto trial = cluster.GetTrial(id, acquired.trial().trial_number());
  REQUIRE(trial.has_value());
  CHECK(trial->state() == v1::TRIAL_STATE_RUNNING);
  CHECK(trial->worker_id() == holder);
  CHECK(trial->epochs_size() == 0);
  // The holder itself still reports.
  report.set_worker_id(holder);
  CHECK(cluster.workers->ReportEpoch(context().get(), report, &reported).ok());
}

}  // namespace
}  // namespace hpsearch::testing
