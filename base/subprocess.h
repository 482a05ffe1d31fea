// Subprocess: the one way hpsearch starts a program and collects its end: the worker's trials
// (through hpsearch-trial-reaper) and its per-device workers, the CLI's local workers, and the
// tests' helpers. It forks, sets the child up (signal mask cleared, stdin/stdout/stderr,
// descriptors passed under fixed numbers, working folder, its own session or process group, death
// with the parent), execs, and reaps; DescribeExit() words a wait status the same way everywhere.
//
// Reaping a whole process tree: a child started with `new_session` (or `new_process_group`) leads a
// process group of its own, so SignalGroup() reaches it and everything it started that stayed in
// its group, and the destructor kills that whole group, not only the child. A trial's command is
// started by hpsearch-trial-reaper (worker/trial_reaper.cc), which also adopts descendants that
// leave the group; this class starts the reaper in a session of its own.
//
// Plain POSIX and the standard library (no Abseil), header-only: the core-only build's tests use it
// too. Between fork() and exec() the child makes only async-signal-safe calls; everything it needs
// is built before the fork.
//
// Thread-safety: one Subprocess is used by one thread at a time (the caller's lock otherwise).
// Ownership: a Subprocess owns the pipe ends it returns and its child until reaped; destroying an
// unreaped one kills the child (its group, with new_session / new_process_group) with SIGKILL and
// reaps it, so no process outlives a failed test or an error path.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

extern char** environ;

namespace hpsearch {

// Where one of the child's standard streams goes.
struct SubprocessStream {
  enum class Kind {
    kInherit,  // ours
    kNull,     // /dev/null
    kPipe,     // a pipe whose other end Subprocess::stdin_fd() / stdout_fd() / stderr_fd() holds
    kFile,     // `path`, created if missing (0644), appended to when `append`, else truncated
  };
  Kind kind = Kind::kInherit;
  std::string path;
  bool append = false;

  static SubprocessStream Inherit() { return {}; }
  static SubprocessStream Null() { return {Kind::kNull, "", false}; }
  static SubprocessStream Pipe() { return {Kind::kPipe, "", false}; }
  static SubprocessStream File(std::string path, bool append = false) {
    return {Kind::kFile, std::move(path), append};
  }
};

struct SubprocessOptions {
  // argv[0] is the program's path (no PATH search).
  std::vector<std::string> argv;
  // The child's whole environment as "K=V" entries; unset: ours.
  std::optional<std::vector<std::string>> env;
  // Entries added to (or replacing in) the environment above, e.g. "OMP_NUM_THREADS=1".
  std::vector<std::string> extra_env;
  // The child's working folder; empty: ours. A folder it cannot enter ends it with 126.
  std::string working_dir;
  SubprocessStream in = SubprocessStream::Null();
  SubprocessStream out = SubprocessStream::Inherit();
  SubprocessStream err = SubprocessStream::Inherit();
  // Our descriptors handed to the child as {ours, the child's number}, e.g. {lifeline, 3}; the
  // child's numbers must be 3 or above. Ours stay open here.
  std::vector<std::pair<int, int>> pass_fds;
  // setsid(): the child leads a session and a process group of its own; a terminal's Ctrl-C or a
  // signal to our group does not reach it, and SignalGroup() reaches its tree.
  bool new_session = false;
  // setpgid(0, 0): a process group of its own, in our session.
  bool new_process_group = false;
  // The child gets SIGTERM when the thread that started it dies (PR_SET_PDEATHSIG), and does not
  // start at all when we died before it could ask for that.
  bool die_with_parent = false;
  // Names the starting program in the child's own messages ("NAME: cannot run PATH: reason").
  std::string name_in_errors = "hpsearch";
};

// "exited with status 3", "was killed by signal 9 (Killed)": a waitpid() status in words.
inline std::string DescribeExit(int wait_status) {
  if (WIFEXITED(wait_status))
    return "exited with status " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) {
    return "was killed by signal " + std::to_string(WTERMSIG(wait_status)) + " (" +
           strsignal(WTERMSIG(wait_status)) + ")";
  }
  return "ended abnormally";
}

// The exit status, or 128 + the signal for a killed process (as a shell reports it).
inline int ExitCodeOf(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return -1;
}

class Subprocess {
 public:
  Subprocess() = default;
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  Subprocess(Subprocess&& other) noexcept { *this = std::move(other); }
  Subprocess& operator=(Subprocess&& other) noexcept {
    if (this != &other) {
      KillAndReap();
      CloseAll();
      pid_ = std::exchange(other.pid_, -1);
      own_group_ = other.own_group_;
      reaped_ = std::exchange(other.reaped_, false);
      status_ = other.status_;
      in_ = std::exchange(other.in_, -1);
      out_ = std::exchange(other.out_, -1);
      err_ = std::exchange(other.err_, -1);
    }
    return *this;
  }
  ~Subprocess() {
    KillAndReap();
    CloseAll();
  }

  // Starts the program. On failure returns false with *error saying what failed (a pipe, a log
  // file, fork); a program that cannot be executed is a started child that exits with 127 after
  // writing "cannot run PATH: reason" to its stderr.
  // REQUIRES: not started yet; options.argv non-empty.
  bool Start(const SubprocessOptions& options, std::string* error) {
    std::vector<std::string> env_storage;
    if (options.env || !options.extra_env.empty()) {
      if (options.env) {
        env_storage = *options.env;
      } else {
        for (char** e = environ; *e != nullptr; ++e) env_storage.emplace_back(*e);
      }
      for (const std::string& entry : options.extra_env) {
        const std::string name = entry.substr(0, entry.find('=') + 1);
        std::vector<std::string> kept;
        for (std::string& existing : env_storage) {
          if (existing.compare(0, name.size(), name) != 0) kept.push_back(std::move(existing));
        }
        kept.push_back(entry);
        env_storage = std::move(kept);
      }
    }
    const bool own_env = options.env.has_value() || !options.extra_env.empty();
    std::vector<char*> argv, envp;
    for (const std::string& arg : options.argv) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    for (const std::string& entry : env_storage) envp.push_back(const_cast<char*>(entry.c_str()));
    envp.push_back(nullptr);

    // The child's ends of the three streams (-1: leave it), and ours of the pipes.
    int child_fd[3] = {-1, -1, -1};
    int parent_fd[3] = {-1, -1, -1};
    const SubprocessStream* streams[3] = {&options.in, &options.out, &options.err};
    auto close_all = [&] {
      for (int i = 0; i < 3; ++i) {
        if (child_fd[i] >= 0) ::close(child_fd[i]);
        if (parent_fd[i] >= 0) ::close(parent_fd[i]);
      }
    };
    for (int i = 0; i < 3; ++i) {
      const SubprocessStream& stream = *streams[i];
      switch (stream.kind) {
        case SubprocessStream::Kind::kInherit:
          break;
        case SubprocessStream::Kind::kNull:
          child_fd[i] = ::open("/dev/null", (i == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC);
          break;
        case SubprocessStream::Kind::kPipe: {
          int fds[2];
          if (::pipe2(fds, O_CLOEXEC) != 0) {
            *error = std::string("pipe: ") + std::strerror(errno);
            close_all();
            return false;
          }
          child_fd[i] = i == 0 ? fds[0] : fds[1];
          parent_fd[i] = i == 0 ? fds[1] : fds[0];
          break;
        }
        case SubprocessStream::Kind::kFile:
          child_fd[i] = ::open(
              stream.path.c_str(),
              (i == 0 ? O_RDONLY : O_WRONLY | O_CREAT | (stream.append ? O_APPEND : O_TRUNC)) |
                  O_CLOEXEC,
              0644);
          if (child_fd[i] < 0) {
            *error = "cannot open " + stream.path + ": " + std::strerror(errno);
            close_all();
            return false;
          }
          break;
      }
    }
    // Passed descriptors are first moved above every number the child rearranges, so that no
    // dup2() below overwrites one still to be passed.
    int highest = 2;
    for (const auto& [ours, theirs] : options.pass_fds) highest = std::max(highest, theirs);
    std::vector<std::pair<int, int>> pass;
    for (const auto& [ours, theirs] : options.pass_fds) {
      const int moved = ::fcntl(ours, F_DUPFD_CLOEXEC, highest + 1);
      if (moved < 0) {
        *error = std::string("fcntl: ") + std::strerror(errno);
        for (const auto& [fd, unused] : pass) ::close(fd);
        close_all();
        return false;
      }
      pass.emplace_back(moved, theirs);
    }
    const char* working_dir = options.working_dir.empty() ? nullptr : options.working_dir.c_str();
    const char* name = options.name_in_errors.c_str();
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid == 0) {
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      if (options.new_session) {
        ::setsid();
      } else if (options.new_process_group) {
        ::setpgid(0, 0);
      }
      if (options.die_with_parent) {
        ::prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (::getppid() != parent) ::_exit(1);  // the parent died between fork and prctl
      }
      for (int i = 0; i < 3; ++i) {
        if (child_fd[i] >= 0) ::dup2(child_fd[i], i);  // dup2 clears close-on-exec
      }
      for (const auto& [fd, number] : pass) ::dup2(fd, number);
      if (working_dir != nullptr && ::chdir(working_dir) != 0) {
        WriteStderr(name, "cannot enter working_dir ", working_dir, std::strerror(errno));
        ::_exit(126);
      }
      if (own_env) {
        ::execve(argv[0], argv.data(), envp.data());
      } else {
        ::execv(argv[0], argv.data());
      }
      WriteStderr(name, "cannot run ", argv[0], std::strerror(errno));
      ::_exit(127);
    }
    const int fork_errno = errno;
    for (const auto& [fd, unused] : pass) ::close(fd);
    for (int i = 0; i < 3; ++i) {
      if (child_fd[i] >= 0) ::close(child_fd[i]);
    }
    if (pid < 0) {
      for (int i = 0; i < 3; ++i) {
        if (parent_fd[i] >= 0) ::close(parent_fd[i]);
      }
      *error = std::string("fork: ") + std::strerror(fork_errno);
      return false;
    }
    pid_ = pid;
    own_group_ = options.new_session || options.new_process_group;
    in_ = parent_fd[0];
    out_ = parent_fd[1];
    err_ = parent_fd[2];
    return true;
  }

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  // Our ends of kPipe streams (-1 otherwise, or once closed); owned by this object.
  int stdin_fd() const { return in_; }
  int stdout_fd() const { return out_; }
  int stderr_fd() const { return err_; }
  void CloseStdin() { CloseFd(&in_); }
  void CloseStdout() { CloseFd(&out_); }
  void CloseStderr() { CloseFd(&err_); }

  // Sends `signal` to the child (not once it is reaped: its pid may be reused).
  void Signal(int signal) {
    if (pid_ > 0 && !reaped_) ::kill(pid_, signal);
  }
  // Sends `signal` to the child's process group: its tree, when it leads a group of its own (else
  // only the child).
  void SignalGroup(int signal) {
    if (pid_ <= 0 || reaped_) return;
    if (own_group_) {
      ::killpg(pid_, signal);
    } else {
      ::kill(pid_, signal);
    }
  }

  // Reaps the child if it has ended; returns whether it has been reaped.
  bool TryReap() {
    if (pid_ <= 0 || reaped_) return reaped_;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) Reaped(status);
    return reaped_;
  }
  // Reaps the child after it ends (polling, so a stop request elsewhere stays possible); returns
  // whether it ended within `timeout`.
  bool WaitFor(std::chrono::milliseconds timeout) {
    const auto give_up = std::chrono::steady_clock::now() + timeout;
    while (!TryReap()) {
      if (std::chrono::steady_clock::now() >= give_up) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
  }
  // Blocks until the child ends; returns its wait status. REQUIRES: started().
  int Wait() {
    while (pid_ > 0 && !reaped_) {
      int status = 0;
      const pid_t done = ::waitpid(pid_, &status, 0);
      if (done == pid_) {
        Reaped(status);
      } else if (errno != EINTR) {
        break;
      }
    }
    return status_;
  }
  // Records the end of a child that the caller reaped itself (a waitpid(-1, ...) loop).
  void Reaped(int wait_status) {
    reaped_ = true;
    status_ = wait_status;
  }

  bool reaped() const { return reaped_; }
  // The wait status once reaped (see DescribeExit, ExitCodeOf).
  int wait_status() const { return status_; }

 private:
  // "NAME: WHAT SUBJECT: REASON" on stderr, with write(2) only (the child between fork and exec).
  static void WriteStderr(const char* name, const char* what, const char* subject,
                          const char* reason) {
    for (const char* part : {name, ": ", what, subject, ": ", reason, "\n"}) {
      (void)!::write(2, part, std::strlen(part));
    }
  }
  static void CloseFd(int* fd) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
  void CloseAll() {
    CloseFd(&in_);
    CloseFd(&out_);
    CloseFd(&err_);
  }
  void KillAndReap() {
    if (pid_ <= 0 || reaped_) return;
    SignalGroup(SIGKILL);
    ::kill(pid_, SIGKILL);  // in case the child has not made its group yet
    Wait();
  }

  pid_t pid_ = -1;
  bool own_group_ = false;
  bool reaped_ = false;
  int status_ = 0;
  int in_ = -1;
  int out_ = -1;
  int err_ = -1;
};

}  // namespace hpsearch
