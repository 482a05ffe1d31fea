// `hpsearch-worker --devices` with real processes: one worker per device registers and runs trials,
// a SIGKILLed worker is restarted, a worker that keeps crashing is restarted with a doubling delay,
// and SIGTERM reaches every worker before the supervisor exits.
#include <signal.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <regex>

#include "integration/cluster.h"

namespace hpsearch::testing {
namespace {

using namespace std::chrono_literals;

// Waits until `read()` matches `pattern` `times` times; returns every match's first group.
template <typename Read>
std::vector<std::string> WaitForMatches(Read read, const std::string& pattern, size_t times,
                                        std::chrono::seconds timeout) {
  auto give_up = std::chrono::steady_clock::now() + timeout;
  std::regex re(pattern);
  std::vector<std::string> found;
  while (true) {
    found.clear();
    std::string text = read();
    for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator();
         ++it) {
      found.push_back((*it)[1]);
    }
    if (found.size() >= times || std::chrono::steady_clock::now() > give_up) return found;
    std::this_thread::sleep_for(50ms);
  }
}

bool Alive(pid_t pid) { return ::kill(pid, 0) == 0; }

TEST_CASE("Supervisor runs one worker per device and restarts a killed one",
          "[integration][supervisor]") {
  Cluster cluster;
  ChildProcess supervisor({(BinDir() / "hpsearch-worker").string(), "--devices", "cpu,cpu",
                           "--coordinator", cluster.address(), "--name", "node", "--acquire-wait",
                           "1", "--restart-backoff", "0.2", "--restart-backoff-max", "0.8"},
                          (cluster.dir() / "supervisor").string());
  auto log = [&] { return supervisor.Stderr(); };
  auto coordinator_log = [&] { return cluster.coordinator().Stderr(); };
  std::vector<std::string> cpu0 =
      WaitForMatches(log, R"(started worker node-cpu0 \(pid (\d+)\))", 1, 20s);
  std::vector<std::string> cpu1 =
      WaitForMatches(log, R"(started worker node-cpu1 \(pid (\d+)\))", 1, 20s);
  REQUIRE(cpu0.size() == 1);
  REQUIRE(cpu1.size() == 1);
  // Each child is a real worker with its own name and device.
  REQUIRE(WaitForMatches(coordinator_log, R"(registered \(name (node-cpu[01]), device cpu)", 2, 20s)
              .size() == 2);

  // A crash: the supervisor notices, waits its backoff and starts the worker again.
  pid_t first = std::stoi(cpu0[0]);
  REQUIRE(::kill(first, SIGKILL) == 0);
  std::vector<std::string> restarted =
      WaitForMatches(log, R"(started worker node-cpu0 \(pid (\d+)\))", 2, 20s);
  REQUIRE(restarted.size() == 2);
  CHECK(restarted[1] != restarted[0]);
  CHECK(log().find("worker node-cpu0 (pid " + cpu0[0] + ") was killed by signal 9") !=
        std::string::npos);
  CHECK(log().find("restarting in 200ms") != std::string::npos);
  CHECK(WaitForMatches(coordinator_log, R"(registered \(name (node-cpu0), device cpu)", 2, 20s)
            .size() == 2);

  // The supervised workers run a study to the end.
  StudyOptions options;
  options.name = "supervised";
  options.n_trials = 4;
  std::string id = cluster.Submit(options);
  CHECK(cluster.WaitForEnd(id, 60s) == v1::STUDY_STATE_COMPLETE);

  // SIGTERM goes to every worker; the supervisor exits once they have.
  pid_t second = std::stoi(restarted[1]);
  pid_t other = std::stoi(cpu1[0]);
  supervisor.Kill(SIGTERM);
  CHECK(supervisor.Wait(30s) == 0);
  INFO(log());
  CHECK_FALSE(Alive(second));
  CHECK_FALSE(Alive(other));
  CHECK(log().find("every worker has exited") != std::string::npos);
  CHECK(log().find("(pid " + restarted[1] + ") exited with status 0") != std::string::npos);
}

TEST_CASE("Supervisor: a worker that keeps crashing is restarted with a doubling, capped delay",
          "[integration][supervisor]") {
  // Every start of this worker fails at once: the coordinator wants a token it does not have. Told
  // to put up with many refusals, the supervisor keeps restarting it.
  TempDir secrets;
  std::string token = (secrets / "token").string();
  std::ofstream(token) << "0123456789abcdef0123456789abcdef0123456789";
  ClusterSecurity security;
  security.serve_args = {"--auth-token-file", token};
  security.stubs.auth_token_file = token;
  Cluster cluster(security);
  ChildProcess supervisor(
      {(BinDir() / "hpsearch-worker").string(), "--devices", "cpu", "--coordinator",
       cluster.address(), "--name", "crashy", "--restart-backoff", "0.1", "--restart-backoff-max",
       "0.4", "--max-refusals", "1000"},
      (cluster.dir() / "supervisor").string());
  std::vector<std::string> delays = WaitForMatches(
      [&] { return supervisor.Stderr(); },
      R"(worker crashy-cpu0 \(pid \d+\) exited with status 3 after \S+; restarting in (\S+)\n)", 4,
      120s);
  INFO(supervisor.Stderr());
  REQUIRE(delays.size() >= 4);
  CHECK(delays[0] == "100ms");
  CHECK(delays[1] == "200ms");
  CHECK(delays[2] == "400ms");
  CHECK(delays[3] == "400ms");
  supervisor.Kill(SIGTERM);
  CHECK(supervisor.Wait(30s) == 0);
}

TEST_CASE("Supervisor: a worker refused by the coordinator three times in a row stops it all",
          "[integration][supervisor]") {
  TempDir secrets;
  std::string token = (secrets / "token").string();
  std::ofstream(token) << "0123456789abcdef0123456789abcdef0123456789";
  std::string wrong = (secrets / "wrong").string();
  std::ofstream(wrong) << "fedcba9876543210fedcba9876543210fedcba9876";
  ClusterSecurity security;
  security.serve_args = {"--auth-token-file", token};
  security.stubs.auth_token_file = token;
  Cluster cluster(security);
  ChildProcess supervisor({(BinDir() / "hpsearch-worker").string(), "--devices", "cpu,cpu",
                           "--coordinator", cluster.address(), "--name", "refused",
                           "--auth-token-file", wrong, "--restart-backoff", "0.1"},
                          (cluster.dir() / "supervisor").string());
  // Generous: three starts of a LibTorch-linked worker on a loaded machine.
  int code = supervisor.Wait(120s);
  std::string log = supervisor.Stderr();
  INFO(log);
  CHECK(code == 3);
  CHECK(log.find("the coordinator refused this worker's credentials") != std::string::npos);
  CHECK(log.find("was refused by the coordinator 3 times in a row") != std::string::npos);
  CHECK(log.find("Fix --auth-token-file") != std::string::npos);
  // Its own wake-up of the signal thread is not reported as a stop order.
  CHECK(log.find("signal 15 received: stopping") == std::string::npos);
}

TEST_CASE("Supervisor: --devices all with no GPU visible is a clear error",
          "[integration][supervisor]") {
  ProcessResult result = RunProcess({(BinDir() / "hpsearch-worker").string(), "--devices", "all"},
                                    "", {"CUDA_VISIBLE_DEVICES="});
  CHECK(result.exit_code == 2);
  CHECK(result.err.find("makes no GPU visible") != std::string::npos);
  ProcessResult both =
      RunProcess({(BinDir() / "hpsearch-worker").string(), "--devices", "0", "--device", "cuda:0"});
  CHECK(both.exit_code != 0);
  CHECK(both.err.find("excludes") != std::string::npos);
}

}  // namespace
}  // namespace hpsearch::testing
