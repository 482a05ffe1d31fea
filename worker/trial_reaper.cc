// hpsearch-trial-reaper: runs one command trial for hpsearch-worker and makes sure that nothing the
// command started outlives it.
//
//   hpsearch-trial-reaper [--lifeline FD] [--grace-ms N] [--fail-on-leftovers] -- COMMAND [ARG...]
//
// The worker starts this program (in a session of its own, so that signals to the worker's process
// group do not reach it) with the trial's stdout and stderr pipes, working folder and environment.
// It makes itself a child subreaper (PR_SET_CHILD_SUBREAPER), so every process of the trial's tree
// that loses its parent — grandchildren, daemons, processes that called setsid() — is re-parented
// to it instead of to init, and starts COMMAND. The tree is every process whose parent chain leads
// here; it is stopped (SIGTERM to each, SIGKILL to what is left after the grace, until none is
// left) when
//   - the worker asks for it with SIGTERM (prune, cancel, timeout, worker shutdown);
//   - the worker dies, however it dies (SIGKILL included): FD, the read end of a pipe whose only
//     write end the worker holds, then reports end of file;
//   - COMMAND exits while processes it started are still running.
// It then exits as COMMAND did: with its exit code, or killed by the same signal. Exit code 127
// (and a message) when COMMAND cannot be started. It depends on libc only, so it starts in
// milliseconds; the worker looks for it next to its own executable.
//
// --fail-on-leftovers is for test suites (scripts/test.sh runs ctest under it): processes still
// running once COMMAND has exited, and the grace has passed, are listed on stderr (pid and command
// line) before they are stopped, and the exit code is 3 where COMMAND's was 0.
//
// Linux only (PR_SET_CHILD_SUBREAPER, /proc, signalfd).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace {

constexpr char kUsage[] =
    "usage: hpsearch-trial-reaper [--lifeline FD] [--grace-ms N] [--fail-on-leftovers] -- COMMAND "
    "[ARG...]\n"
    "(started by hpsearch-worker for each command trial, and by scripts/test.sh)\n";
constexpr int kLeftoversExitCode = 3;

int64_t NowMs() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return int64_t{now.tv_sec} * 1000 + now.tv_nsec / 1000000;
}

// The parent of `pid` from /proc/PID/stat, or -1 when it is gone. The command name (field 2) may
// hold spaces and parentheses: the fields after it start after its last ')'.
pid_t ParentOf(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/stat", static_cast<int>(pid));
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char text[1024];
  ssize_t got = ::read(fd, text, sizeof(text) - 1);
  ::close(fd);
  if (got <= 0) return -1;
  text[got] = '\0';
  const char* close = std::strrchr(text, ')');
  if (close == nullptr) return -1;
  char state = 0;
  int parent = -1;
  if (std::sscanf(close + 1, " %c %d", &state, &parent) != 2) return -1;
  return parent;
}

// A process's command line, arguments separated by spaces, for messages.
std::string CommandLineOf(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/cmdline", static_cast<int>(pid));
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "?";
  char text[512];
  ssize_t got = ::read(fd, text, sizeof(text));
  ::close(fd);
  if (got <= 0) return "(no command line: a zombie or kernel thread)";
  std::string line(text, static_cast<size_t>(got));
  while (!line.empty() && line.back() == '\0') line.pop_back();
  for (char& c : line) {
    if (c == '\0') c = ' ';
  }
  return line;
}

// Every process whose chain of parents leads to this one (zombies included).
std::vector<pid_t> Descendants() {
  std::map<pid_t, std::vector<pid_t>> children;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return {};
  while (dirent* entry = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || pid <= 0) continue;
    pid_t parent = ParentOf(static_cast<pid_t>(pid));
    if (parent > 0) children[parent].push_back(static_cast<pid_t>(pid));
  }
  ::closedir(proc);
  std::vector<pid_t> found;
  std::vector<pid_t> frontier{::getpid()};
  while (!frontier.empty()) {
    pid_t next = frontier.back();
    frontier.pop_back();
    auto it = children.find(next);
    if (it == children.end()) continue;
    for (pid_t child : it->second) {
      found.push_back(child);
      frontier.push_back(child);
    }
  }
  return found;
}

class Reaper {
 public:
  Reaper(int lifeline, int64_t grace_ms, bool fail_on_leftovers)
      : lifeline_(lifeline), grace_ms_(grace_ms), fail_on_leftovers_(fail_on_leftovers) {}

  // Whether --fail-on-leftovers found processes that outlived the command.
  bool found_leftovers() const { return found_leftovers_; }

  // Starts the command; false (after a message on stderr) when it cannot.
  bool Start(char** argv) {
    sigset_t handled;
    sigemptyset(&handled);
    for (int signal_number : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&handled, signal_number);
    if (::sigprocmask(SIG_BLOCK, &handled, nullptr) != 0) return Fail("sigprocmask");
    signals_ = ::signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK);
    if (signals_ < 0) return Fail("signalfd");
    if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) return Fail("prctl(PR_SET_CHILD_SUBREAPER)");
    // Exec'd commands must not inherit the lifeline: only this process watches it.
    ::fcntl(lifeline_, F_SETFD, FD_CLOEXEC);
    const pid_t parent = ::getpid();
    command_ = ::fork();
    if (command_ < 0) return Fail("fork");
    if (command_ == 0) {
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      // Should this reaper itself be SIGKILLed, the command at least goes with it.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      ::execvp(argv[0], argv);
      std::fprintf(stderr, "hpsearch-worker: cannot run %s: %s\n", argv[0], std::strerror(errno));
      ::_exit(127);
    }
    // Its stderr is the worker's pipe, gone with the worker: a message must not kill it.
    ::signal(SIGPIPE, SIG_IGN);
    return true;
  }

  // Waits for the command and whatever the tree needs stopping; returns the command's wait status.
  int Run() {
    while (!command_done_) {
      pollfd fds[2] = {{signals_, POLLIN, 0}, {lifeline_, POLLIN, 0}};
      int ready = ::poll(fds, lifeline_ >= 0 ? 2 : 1, -1);
      if (ready < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (lifeline_ >= 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        char byte;
        if (::read(lifeline_, &byte, 1) <= 0) {  // end of file: the worker is gone
          ::close(lifeline_);
          lifeline_ = -1;
          StopTree();
          break;
        }
      }
      if ((fds[0].revents & POLLIN) != 0) {
        signalfd_siginfo info;
        bool stop = false;
        while (::read(signals_, &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
          if (info.ssi_signo != SIGCHLD) stop = true;
        }
        ReapExited();
        if (stop) {
          StopTree();
          break;
        }
      }
    }
    if (command_done_ && fail_on_leftovers_) ReportLeftovers();
    // The command is done; processes it left running are not part of any later trial.
    StopTree();
    return command_status_;
  }

 private:
  static bool Fail(const char* what) {
    std::fprintf(stderr, "hpsearch-trial-reaper: %s: %s\n", what, std::strerror(errno));
    return false;
  }

  // Reaps every exited child without waiting; notes the command's status.
  void ReapExited() {
    for (;;) {
      int status = 0;
      pid_t done = ::waitpid(-1, &status, WNOHANG);
      if (done <= 0) return;
      if (done == command_) {
        command_done_ = true;
        command_status_ = status;
      }
    }
  }

  // Gives what the command left running the grace to end by itself, then lists what is still there.
  void ReportLeftovers() {
    const int64_t give_up = NowMs() + grace_ms_;
    std::vector<pid_t> left;
    for (;;) {
      ReapExited();
      left.clear();
      for (pid_t pid : Descendants()) {
        if (!CommandLineOf(pid).empty() && ::kill(pid, 0) == 0) left.push_back(pid);
      }
      if (left.empty() || NowMs() >= give_up) break;
      ::usleep(50000);
    }
    if (left.empty()) return;
    found_leftovers_ = true;
    std::fprintf(stderr,
                 "hpsearch-trial-reaper: %zu processes outlived the command; stopping them:\n",
                 left.size());
    for (pid_t pid : left) {
      std::fprintf(stderr, "  pid %d: %s\n", static_cast<int>(pid), CommandLineOf(pid).c_str());
    }
  }

  void SignalAll(int signal_number) {
    for (pid_t pid : Descendants()) ::kill(pid, signal_number);
  }

  // SIGTERM to the whole tree, then SIGKILL to what is left after the grace, until nothing is left.
  // Each round looks the tree up again: processes forked meanwhile are found next round (their
  // parents die and they are re-parented here).
  void StopTree() {
    ReapExited();
    if (Descendants().empty()) return;
    SignalAll(SIGTERM);
    const int64_t give_up = NowMs() + grace_ms_;
    while (NowMs() < give_up) {
      ReapExited();
      if (Descendants().empty()) return;
      ::usleep(20000);
    }
    for (;;) {
      SignalAll(SIGKILL);
      ReapExited();
      if (Descendants().empty()) return;
      ::usleep(5000);
    }
  }

  int lifeline_;
  int64_t grace_ms_;
  bool fail_on_leftovers_;
  bool found_leftovers_ = false;
  int signals_ = -1;
  pid_t command_ = -1;
  bool command_done_ = false;
  int command_status_ = 0;
};

// Exits the way `status` says the command did.
[[noreturn]] void ExitLike(int status) {
  if (WIFSIGNALED(status)) {
    const int signal_number = WTERMSIG(status);
    rlimit no_core{0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);
    ::signal(signal_number, SIG_DFL);
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, signal_number);
    ::sigprocmask(SIG_UNBLOCK, &only, nullptr);
    ::raise(signal_number);
    std::_Exit(128 + signal_number);
  }
  std::_Exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

bool ParseInt(const char* text, long long low, long long high, long long* value) {
  char* end = nullptr;
  errno = 0;
  long long parsed = std::strtoll(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || parsed < low || parsed > high) return false;
  *value = parsed;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  long long lifeline = -1;
  long long grace_ms = 10000;
  bool fail_on_leftovers = false;
  int i = 1;
  for (; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg == "--lifeline" && i + 1 < argc && ParseInt(argv[i + 1], 0, 1 << 20, &lifeline)) {
      ++i;
    } else if (arg == "--grace-ms" && i + 1 < argc &&
               ParseInt(argv[i + 1], 0, int64_t{1} << 40, &grace_ms)) {
      ++i;
    } else if (arg == "--fail-on-leftovers") {
      fail_on_leftovers = true;
    } else {
      std::fprintf(stderr, "hpsearch-trial-reaper: bad argument '%s'\n%s", arg.c_str(), kUsage);
      return 2;
    }
  }
  if (i >= argc) {
    std::fprintf(stderr, "hpsearch-trial-reaper: no command given\n%s", kUsage);
    return 2;
  }
  Reaper reaper(static_cast<int>(lifeline), grace_ms, fail_on_leftovers);
  if (!reaper.Start(argv + i)) return 127;
  const int status = reaper.Run();
  if (reaper.found_leftovers() && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    return kLeftoversExitCode;
  }
  ExitLike(status);
}
