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

namespace hpsearch::cli {
namespace {

// The thread caps a worker gets in its environment (the rest is ours).
std::vector<std::string> ThreadCaps(int threads) {
  std::vector<std::string> caps;
  for (const char* name : {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"}) {
    caps.push_back(absl::StrCat(name, "=", threads));
  }
  return caps;
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
  SubprocessOptions options;
  options.argv = {binary, "--device", device, "--print-runners"};
  options.out = SubprocessStream::Pipe();
  Subprocess process;
  std::string error;
  if (!process.Start(options, &error)) return absl::InternalError(error);
  std::string text;
  char buffer[256];
  for (ssize_t got; (got = ::read(process.stdout_fd(), buffer, sizeof(buffer))) != 0;) {
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) break;
    text.append(buffer, static_cast<size_t>(got));
  }
  const int status = process.Wait();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || text.rfind("command", 0) != 0) {
    return absl::InternalError(
        absl::StrCat(binary, " --device ", device, " --print-runners did not answer (\"",
                     absl::StripAsciiWhitespace(text), "\"): is it from the same build?"));
  }
  return text.find(" qlora") != std::string::npos;
}

LocalWorkers::~LocalWorkers() {
  absl::MutexLock lock(&mu_);
  for (Child& child : children_) {
    if (child.process.reaped()) continue;
    child.process.Signal(SIGKILL);
    child.process.Wait();
  }
}

absl::Status LocalWorkers::Start(const std::string& binary, const std::string& coordinator,
                                 const std::vector<LocalWorkerSpec>& specs) {
  for (const LocalWorkerSpec& spec : specs) {
    SubprocessOptions options;
    options.argv = {binary,
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
    options.extra_env = ThreadCaps(spec.threads);
    options.out = SubprocessStream::File(spec.log_path, /*append=*/true);
    options.err = SubprocessStream::File(spec.log_path, /*append=*/true);
    options.new_process_group = true;
    options.name_in_errors = "hpsearch run";
    Child child{spec, Subprocess(), ""};
    std::string error;
    if (!child.process.Start(options, &error)) {
      StopAll(absl::Seconds(5));
      return absl::InternalError(absl::StrCat("cannot start worker ", spec.name, ": ", error));
    }
    absl::MutexLock lock(&mu_);
    children_.push_back(std::move(child));
  }
  return absl::OkStatus();
}

std::vector<std::string> LocalWorkers::ReapExited() {
  std::vector<std::string> lines;
  absl::MutexLock lock(&mu_);
  for (Child& child : children_) {
    if (child.process.reaped() || !child.process.TryReap()) continue;
    child.how = DescribeExit(child.process.wait_status());
    lines.push_back(absl::StrCat("worker ", child.spec.name, " (pid ", child.process.pid(), ") ",
                                 child.how, "; see ", child.spec.log_path));
  }
  return lines;
}

int LocalWorkers::alive() const {
  absl::MutexLock lock(&mu_);
  int count = 0;
  for (const Child& child : children_) count += child.process.reaped() ? 0 : 1;
  return count;
}

void LocalWorkers::StopAll(absl::Duration grace) {
  {
    absl::MutexLock lock(&mu_);
    for (Child& child : children_) child.process.Signal(SIGTERM);
  }
  const absl::Time give_up = absl::Now() + grace;
  while (alive() > 0 && absl::Now() < give_up) {
    ReapExited();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  absl::MutexLock lock(&mu_);
  for (Child& child : children_) {
    if (child.process.reaped()) continue;
    child.process.Signal(SIGKILL);
    child.process.Wait();
    child.how = "was killed after not stopping in time";
  }
}

std::string LocalWorkers::Summary() const {
  absl::MutexLock lock(&mu_);
  std::string out;
  for (const Child& child : children_) {
    absl::StrAppend(&out, "worker ", child.spec.name, " ", child.spec.device, " x",
                    child.spec.threads, " threads, pid ", child.process.pid(), ": ",
                    child.process.reaped() ? child.how : "running", "\n");
  }
  return out;
}

}  // namespace hpsearch::cli
