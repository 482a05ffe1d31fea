// ChildProcess: a program started in the background for integration tests (a coordinator, workers),
// with stdout and stderr going to files, signals on demand and a bounded wait. Killed with SIGKILL
// when destroyed, so a failing test leaves no process behind. Started through the one
// process-spawning class (base/subprocess.h). POSIX only; header-only.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/subprocess.h"

namespace hpsearch::testing {

class ChildProcess {
 public:
  // Starts argv[0] (a path) with `env` ("K=V") added, output to `log_prefix`.out / .err.
  ChildProcess(const std::vector<std::string>& argv, const std::string& log_prefix,
               const std::vector<std::string>& env = {})
      : out_path_(log_prefix + ".out"), err_path_(log_prefix + ".err") {
    SubprocessOptions options;
    options.argv = argv;
    options.extra_env = env;
    options.out = SubprocessStream::File(out_path_);
    options.err = SubprocessStream::File(err_path_);
    std::string error;
    if (!process_.Start(options, &error)) std::fprintf(stderr, "ChildProcess: %s\n", error.c_str());
  }
  ~ChildProcess() {
    if (running()) Kill(SIGKILL);
    Wait(std::chrono::seconds(10));
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return process_.pid(); }
  void Kill(int signal) { process_.Signal(signal); }
  // SIGSTOPs the process and waits up to `timeout` until every one of its threads has stopped;
  // returns whether they did. kill() only queues the signal: until the group stop completes,
  // a thread other than the one it woke can still take a request off a socket.
  bool Stop(std::chrono::milliseconds timeout) {
    Kill(SIGSTOP);
    auto give_up = std::chrono::steady_clock::now() + timeout;
    while (process_.started() && !process_.reaped()) {
      int status = 0;
      pid_t done = ::waitpid(process_.pid(), &status, WNOHANG | WUNTRACED);
      if (done == process_.pid() && WIFSTOPPED(status)) return true;
      if (done == process_.pid()) {
        process_.Reaped(status);
        return false;
      }
      if (std::chrono::steady_clock::now() >= give_up) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  }
  bool running() { return process_.started() && !process_.TryReap(); }
  // Waits up to `timeout` for the process to exit; returns its exit code (128 + signal when
  // killed), or -1 when it is still running.
  int Wait(std::chrono::milliseconds timeout) {
    if (!process_.started()) return -1;
    return process_.WaitFor(timeout) ? ExitCodeOf(process_.wait_status()) : -1;
  }
  std::string Stdout() const { return ReadFile(out_path_); }
  std::string Stderr() const { return ReadFile(err_path_); }

  // Polls stdout until it contains `text` (or the timeout passes); returns whether it did.
  bool WaitForStdout(const std::string& text, std::chrono::milliseconds timeout) {
    auto give_up = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < give_up) {
      if (Stdout().find(text) != std::string::npos) return true;
      if (!running()) return Stdout().find(text) != std::string::npos;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

 private:
  static std::string ReadFile(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  std::string out_path_;
  std::string err_path_;
  Subprocess process_;
};

}  // namespace hpsearch::testing
