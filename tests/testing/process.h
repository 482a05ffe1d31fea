// ChildProcess: a program started in the background for integration tests (a coordinator, workers),
// with stdout and stderr going to files, signals on demand and a bounded wait. Killed with SIGKILL
// when destroyed, so a failing test leaves no process behind. POSIX only; header-only.
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

namespace hpsearch::testing {

class ChildProcess {
 public:
  // Starts argv[0] (a path) with `env` ("K=V") added, output to `log_prefix`.out / .err.
  ChildProcess(const std::vector<std::string>& argv, const std::string& log_prefix,
               const std::vector<std::string>& env = {})
      : out_path_(log_prefix + ".out"), err_path_(log_prefix + ".err") {
    pid_ = ::fork();
    if (pid_ == 0) {
      int out = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int err = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(out, 1);
      ::dup2(err, 2);
      int devnull = ::open("/dev/null", O_RDONLY);
      ::dup2(devnull, 0);
      for (const std::string& kv : env) ::putenv(const_cast<char*>(kv.c_str()));
      std::vector<char*> args;
      for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      std::fprintf(stderr, "exec %s failed\n", args[0]);
      ::_exit(127);
    }
  }
  ~ChildProcess() {
    if (running()) Kill(SIGKILL);
    Wait(std::chrono::seconds(10));
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  void Kill(int signal) {
    if (pid_ > 0 && !exited_) ::kill(pid_, signal);
  }
  // SIGSTOPs the process and waits up to `timeout` until every one of its threads has stopped;
  // returns whether they did. kill() only queues the signal: until the group stop completes,
  // a thread other than the one it woke can still take a request off a socket.
  bool Stop(std::chrono::milliseconds timeout) {
    Kill(SIGSTOP);
    auto give_up = std::chrono::steady_clock::now() + timeout;
    while (pid_ > 0 && !exited_) {
      int status = 0;
      pid_t done = ::waitpid(pid_, &status, WNOHANG | WUNTRACED);
      if (done == pid_ && WIFSTOPPED(status)) return true;
      if (done == pid_) {
        exited_ = true;
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return false;
      }
      if (std::chrono::steady_clock::now() >= give_up) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  }
  bool running() {
    Reap(false);
    return !exited_;
  }
  // Waits up to `timeout` for the process to exit; returns its exit code (128 + signal when
  // killed), or -1 when it is still running.
  int Wait(std::chrono::milliseconds timeout) {
    auto give_up = std::chrono::steady_clock::now() + timeout;
    while (!Reap(false) && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return exited_ ? exit_code_ : -1;
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
  bool Reap(bool block) {
    if (exited_ || pid_ <= 0) return exited_;
    int status = 0;
    pid_t done = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
    if (done == pid_) {
      exited_ = true;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    return exited_;
  }
  static std::string ReadFile(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  std::string out_path_;
  std::string err_path_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int exit_code_ = -1;
};

}  // namespace hpsearch::testing
