// No process of a command trial outlives its worker: a real worker process, SIGKILLed while its
// trial has a grandchild, a child that called setsid() and a daemon whose parent exited, leaves
// none of them running (worker/trial_reaper.cc ends the tree).
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <thread>
#include <vector>

#include "integration/cluster.h"

namespace hpsearch::testing {
namespace {

using namespace std::chrono_literals;

std::vector<pid_t> ReadPids(const std::filesystem::path& file) {
  std::vector<pid_t> pids;
  std::ifstream in(file);
  for (long pid; in >> pid;) pids.push_back(static_cast<pid_t>(pid));
  return pids;
}

// Alive and not a zombie (a zombie whose parent is init may never be reaped in a container).
bool Running(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  size_t close = text.rfind(')');
  return close != std::string::npos && close + 2 < text.size() && text[close + 2] != 'Z';
}

TEST_CASE("A SIGKILLed worker leaves no process of its command trial running",
          "[integration][faults][reaper]") {
  Cluster cluster;
  std::filesystem::path pids = cluster.dir() / "pids";
  std::filesystem::path script = cluster.dir() / "tree.sh";
  {
    std::ofstream out(script);
    out << "echo $$ >> " << pids << "\n"
        << "(trap '' TERM; sleep 600) & echo $! >> " << pids << "\n"
        << "setsid sleep 600 & echo $! >> " << pids << "\n"
        << "(setsid sleep 600 & echo $! >> " << pids << ")\n"
        << "printf '{\"type\":\"epoch\",\"epoch\":1,\"val_accuracy\":0.5}\\n'\n"
        << "sleep 600\n";
  }
  StudyOptions options;
  options.name = "tree";
  options.n_trials = 1;
  options.parallelism = 1;
  options.final_stage = false;
  options.command = {"/bin/sh", script.string()};
  std::string id = cluster.Submit(options);
  ChildProcess& worker = cluster.StartWorker("doomed");

  auto give_up = std::chrono::steady_clock::now() + 60s;
  while (ReadPids(pids).size() < 4 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(50ms);
  }
  std::vector<pid_t> tree = ReadPids(pids);
  REQUIRE(tree.size() == 4);
  for (pid_t pid : tree) REQUIRE(Running(pid));

  worker.Kill(SIGKILL);
  REQUIRE(worker.Wait(10s) == 128 + SIGKILL);
  // Generous: the reaper gives the tree the study's kill grace (1 s) before SIGKILL.
  give_up = std::chrono::steady_clock::now() + 60s;
  auto any_running = [&] {
    for (pid_t pid : tree) {
      if (Running(pid)) return true;
    }
    return false;
  };
  while (any_running() && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(50ms);
  }
  for (pid_t pid : tree) {
    INFO("pid " << pid << " of the trial's tree is still running");
    CHECK_FALSE(Running(pid));
  }
}

}  // namespace
}  // namespace hpsearch::testing
