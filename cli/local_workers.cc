#include "cli/local_workers.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

extern char** environ;

namespace hpsearch::cli {
namespace {

std::string DescribeStatus(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exited with status ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return absl::StrCat("was killed by signal ", WTERMSIG(status), " (",
                        strsignal(WTERMSIG(status)), ")");
  }
  return "ended";
}

// The child's environment: ours, with the thread caps replaced.
std::vector<std::string> WorkerEnvironment(int threads) {
  static const char* kThreadVariables[] = {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                           "MKL_NUM_THREADS"};
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry(*e);
    bool replaced = false;
    for (const char* name : kThreadVariables) {
      replaced = replaced || entry.rfind(absl::StrCat(name, "="), 0) == 0;
    }
    if (!replaced) env.push_back(std::move(entry));
  }
  for (const char* name : kThreadVariables) env.push_back(absl::StrCat(name, "=", threads));
  return env;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseDevices(const std::string& devices, int workers) {
  if (!devices.empty() && workers > 0) {
    return absl::InvalidArgumentError("--devices and --workers: give one of them, not both");
  }
  std::vector<std::string> out;
  if (devices.empty()) {
    if (workers < 1) return absl::InvalidArgumentError("--workers must be at least 1");
    out.assign(static_cast<size_t>(workers), "cpu");
    return out;
  }
  for (absl::string_view entry : absl::StrSplit(devices, ',')) {
    entry = absl::StripAsciiWhitespace(entry);
    int index = 0;
    if (entry == "cpu") {
      out.emplace_back("cpu");
    } else if (absl::ConsumePrefix(&entry, "cuda:") && absl::SimpleAtoi(entry, &index) &&
               index >= 0) {
      out.push_back(absl::StrCat("cuda:", index));
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "--devices: '", entry, "' is not cpu or cuda:K (e.g. --devices cuda:0,cuda:1)"));
    }
  }
  return out;
}

int ThreadsPerWorker(int workers, int cores) { return std::max(1, cores / std::max(1, workers)); }

absl::StatusOr<std::string> WorkerBinary() {
  std::error_code error;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
  const std::filesystem::path worker = self.parent_path() / "hpsearch-worker";
  if (error || ::access(worker.c_str(), X_OK) != 0) {
    return absl::NotFoundError(
        absl::StrCat("hpsearch-worker is not next to hpsearch (", self.parent_path().string(),
                     "): build both (scripts/build.sh puts them in build/bin)"));
  }
  return worker.string();
}

absl::StatusOr<bool> WorkerRunsBuiltInTrials(const std::string& binary, const std::string& device) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  std::vector<std::string> args = {binary, "--device", device, "--print-runners"};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  std::string text;
  char buffer[256];
  for (ssize_t got; (got = ::read(out[0], buffer, sizeof(buffer))) != 0;) {
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) break;
    text.append(buffer, static_cast<size_t>(got));
  }
  ::close(out[0]);
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0 || text.rfind("command", 0) != 0) {
    return absl::InternalError(
        absl::StrCat(binary, " --device ", device, " --print-runners did not answer (\"",
                     absl::StripAsciiWhitespace(text), "\"): is it from the same build?"));
  }
  return text.find(" qlora") != std::string::npos;
}

LocalWorkers::~LocalWorkers() {
  absl::MutexLock lock(&mu_);
  for (Child& child : children_) {
    if (child.exited) continue;
    ::kill(child.pid, SIGKILL);
    ::waitpid(child.pid, nullptr, 0);
  }
}

absl::Status LocalWorkers::Start(const std::string& binary, const std::string& coordinator,
                                 const std::vector<LocalWorkerSpec>& specs) {
  for (const LocalWorkerSpec& spec : specs) {
    // Everything the child needs is built before fork(): after it, only async-signal-safe calls.
    std::vector<std::string> args = {binary,
                                     "--coordinator",
                                     coordinator,
                                     "--name",
                                     spec.name,
                                     "--device",
                                     spec.device,
                                     "--threads",
                                     std::to_string(spec.threads),
                                     "--acquire-wait",
                                     "2"};
    std::vector<std::string> env = WorkerEnvironment(spec.threads);
    std::vector<char*> argv, envp;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (std::string& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    int log = ::open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log < 0) {
      StopAll(absl::Seconds(5));
      return absl::InternalError(
          absl::StrCat("cannot open the worker log ", spec.log_path, ": ", std::strerror(errno)));
    }
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::setpgid(0, 0);
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      int devnull = ::open("/dev/null", O_RDONLY);
      ::dup2(devnull, 0);
      ::dup2(log, 1);
      ::dup2(log, 2);
      ::execve(argv[0], argv.data(), envp.data());
      static const char kFailed[] = "hpsearch run: cannot exec hpsearch-worker\n";
      (void)!::write(2, kFailed, sizeof(kFailed) - 1);
      ::_exit(127);
    }
    ::close(log);
    if (pid < 0) {
      StopAll(absl::Seconds(5));
      return absl::InternalError(absl::StrCat("cannot start a worker: ", std::strerror(errno)));
    }
    absl::MutexLock lock(&mu_);
    children_.push_back({spec, pid, false, ""});
  }
  return absl::OkStatus();
}

std::vector<std::string> LocalWorkers::ReapExited() {
  std::vector<std::string> lines;
  absl::MutexLock lock(&mu_);
  for (Child& child : children_) {
    if (child.exited) continue;
    int status = 0;
    if (::waitpid(child.pid, &status, WNOHANG) != child.pid) continue;
    child.exited = true;
    child.how = DescribeStatus(status);
    lines.push_back(absl::StrCat("worker ", child.spec.name, " (pid ", child.pid, ") ", child.how,
                                 "; see ", child.spec.log_path));
  }
  return lines;
}

int LocalWorkers::alive() const {
  absl::MutexLock lock(&mu_);
  int count = 0;
  for (const Child& child : children_) count += child.exited ? 0 : 1;
  return count;
}

void LocalWorkers::StopAll(absl::Duration grace) {
  {
    absl::MutexLock lock(&mu_);
    for (const Child& child : children_) {
      if (!child.exited) ::kill(child.pid, SIGTERM);
    }
  }
  const absl::Time give_up = absl::Now() + grace;
  while (alive() > 0 && absl::Now() < give_up) {
    ReapExited();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  absl::MutexLock lock(&mu_);
  for (Child& child : children_) {
    if (child.exited) continue;
    ::kill(child.pid, SIGKILL);
    int status = 0;
    ::waitpid(child.pid, &status, 0);
    child.exited = true;
    child.how = "was killed after not stopping in time";
  }
}

std::string LocalWorkers::Summary() const {
  absl::MutexLock lock(&mu_);
  std::string out;
  for (const Child& child : children_) {
    absl::StrAppend(&out, "worker ", child.spec.name, " ", child.spec.device, " x",
                    child.spec.threads, " threads, pid ", child.pid, ": ",
                    child.exited ? child.how : "running", "\n");
  }
  return out;
}

}  // namespace hpsearch::cli
