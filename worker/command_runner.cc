#include "worker/command_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/subprocess.h"
#include "transfer/artifact_files.h"
#include "worker/command_output.h"

extern char** environ;

namespace hpsearch::worker {
namespace {

using nlohmann::json;

bool Reuses(const v1::TrialSpec& trial) {
  return trial.kind() == v1::TRIAL_KIND_FINAL && trial.retrain_on() == v1::RETRAIN_ON_REUSE;
}

std::string KindWord(const v1::TrialSpec& trial) {
  if (Reuses(trial)) return "evaluate";
  return trial.kind() == v1::TRIAL_KIND_FINAL ? "final" : "search";
}

std::string RetrainWord(v1::RetrainOn retrain_on) {
  switch (retrain_on) {
    case v1::RETRAIN_ON_TRAIN_VALIDATION:
      return "train_validation";
    case v1::RETRAIN_ON_REUSE:
      return "reuse";
    default:
      return "train";
  }
}

// The folder an evaluate-only command reads the source trial's stored model from: beside the
// trial's artifact folder (not in it, so it is not uploaded again), removed when the run ends.
class FetchedModel {
 public:
  ~FetchedModel() {
    if (dir_.empty()) return;
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  absl::Status Fetch(const v1::TrialSpec& trial, TrialReporter* reporter) {
    std::string base = trial.artifact_dir().empty()
                           ? (std::filesystem::temp_directory_path() /
                              absl::StrCat("hpsearch-", trial.study_id(), "-final"))
                                 .string()
                           : trial.artifact_dir();
    dir_ = absl::StrCat(base, ".model-of-trial-", trial.source_trial_number());
    return reporter->FetchModel(trial.source_trial_number(), dir_);
  }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

std::string EnvName(const std::string& param) {
  std::string name = "HPSEARCH_PARAM_";
  for (char c : param) {
    name += std::isalnum(static_cast<unsigned char>(c))
                ? static_cast<char>(std::toupper(static_cast<unsigned char>(c)))
                : '_';
  }
  return name;
}

// The command's environment: ours, then the worker's device and threads, then runner.env, then the
// trial's variables (they win).
std::vector<std::string> CommandEnvironment(const v1::TrialSpec& trial,
                                            const std::map<std::string, std::string>& worker_env,
                                            const std::string& model_dir) {
  std::map<std::string, std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string kv = *entry;
    size_t eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [key, value] : worker_env) env[key] = value;
  for (const auto& [key, value] : trial.runner().env()) env[key] = value;
  for (const v1::ParamAssignment& param : trial.params()) {
    env[EnvName(param.name())] = ParamValueText(param.value());
  }
  env["HPSEARCH_STUDY_ID"] = trial.study_id();
  env["HPSEARCH_STUDY_NAME"] = trial.study_name();
  env["HPSEARCH_TRIAL_NUMBER"] = std::to_string(trial.trial_number());
  env["HPSEARCH_TRIAL_KIND"] = KindWord(trial);
  env["HPSEARCH_ATTEMPT"] = std::to_string(trial.attempt());
  env["HPSEARCH_SEED"] = std::to_string(trial.seed());
  env["HPSEARCH_RETRAIN_ON"] = RetrainWord(trial.retrain_on());
  env["HPSEARCH_EVALUATE_TEST"] = trial.evaluate_test() ? "1" : "0";
  env["HPSEARCH_ARTIFACT_DIR"] = trial.artifact_dir();
  if (Reuses(trial)) {
    env["HPSEARCH_MODEL_DIR"] = model_dir;
    env["HPSEARCH_SOURCE_TRIAL_NUMBER"] = std::to_string(trial.source_trial_number());
  }
  std::vector<std::string> out;
  for (const auto& [key, value] : env) out.push_back(key + "=" + value);
  return out;
}

// Keeps the last `limit` bytes written to it.
class TailBuffer {
 public:
  explicit TailBuffer(size_t limit) : limit_(limit) {}
  void Append(const char* data, size_t size) {
    text_.append(data, size);
    if (text_.size() > 2 * limit_) text_.erase(0, text_.size() - limit_);
  }
  std::string Text() const {
    return text_.size() > limit_ ? "…" + text_.substr(text_.size() - limit_) : text_;
  }

 private:
  size_t limit_;
  std::string text_;
};

// A started command, run under hpsearch-trial-reaper (worker/trial_reaper.cc) through Subprocess
// (base/subprocess.h): the reaper, the command's output pipes, and the lifeline whose end of file
// tells the reaper that this worker is gone. Every way of stopping goes through the reaper, which
// ends the command's whole process tree.
class Child {
 public:
  ~Child() {
    // Ask the reaper first, so that the command's tree ends too; Subprocess's destructor kills the
    // reaper's session should it not be reaped.
    if (process_.started() && !process_.reaped()) {
      process_.Signal(SIGTERM);
      process_.Wait();
    }
    if (lifeline_ >= 0) ::close(lifeline_);
  }

  absl::Status Start(const std::string& reaper, const std::vector<std::string>& argv,
                     std::vector<std::string> env, const std::string& working_dir,
                     absl::Duration grace) {
    int lifeline_pipe[2];
    if (::pipe2(lifeline_pipe, O_CLOEXEC) != 0) {
      return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
    }
    // The worker keeps the only write end (close-on-exec, so no other child inherits it); the
    // reaper reads end of file on its fd 3 once this process is gone, however it ends.
    lifeline_ = lifeline_pipe[1];
    SubprocessOptions options;
    options.argv = {
        reaper, "--lifeline", "3", "--grace-ms", std::to_string(absl::ToInt64Milliseconds(grace)),
        "--"};
    options.argv.insert(options.argv.end(), argv.begin(), argv.end());
    options.env = std::move(env);
    options.working_dir = working_dir;
    options.in = SubprocessStream::Null();
    options.out = SubprocessStream::Pipe();
    options.err = SubprocessStream::Pipe();
    options.pass_fds = {{lifeline_pipe[0], 3}};
    // The worker blocks SIGTERM/SIGINT for its signal thread; Subprocess clears the mask, so the
    // reaper and the command do not inherit that. A session of its own: signals to the worker's
    // process group (a terminal's Ctrl-C, a supervisor) reach the trial only through the reaper.
    options.new_session = true;
    options.name_in_errors = "hpsearch-worker";
    std::string error;
    const bool started = process_.Start(options, &error);
    ::close(lifeline_pipe[0]);
    if (!started) return absl::ResourceExhaustedError(error);
    grace_ = grace;
    return absl::OkStatus();
  }

  // Reads what is available (waiting up to `timeout`). Returns false once both pipes are closed.
  bool Poll(absl::Duration timeout, std::string* out, std::string* err) {
    if (process_.stdout_fd() < 0 && process_.stderr_fd() < 0) {
      // Both pipes closed but the process may live on: the caller keeps checking stops and
      // timeouts.
      ::usleep(static_cast<useconds_t>(absl::ToInt64Microseconds(timeout)));
      return false;
    }
    pollfd fds[2] = {{process_.stdout_fd(), POLLIN, 0}, {process_.stderr_fd(), POLLIN, 0}};
    int ready = ::poll(fds, 2, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
    if (ready <= 0) return true;
    char buffer[65536];
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      ssize_t got = ::read(fds[i].fd, buffer, sizeof(buffer));
      if (got > 0) {
        (i == 0 ? out : err)->append(buffer, static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        i == 0 ? process_.CloseStdout() : process_.CloseStderr();
      }
    }
    return process_.stdout_fd() >= 0 || process_.stderr_fd() >= 0;
  }

  // Asks the reaper to stop the command's tree (SIGTERM to it, SIGKILL after the grace the reaper
  // was started with). Should the reaper itself not end in time (real time: it is a real
  // process), its session is killed.
  void Terminate() {
    if (!process_.started() || process_.reaped()) return;
    process_.Signal(SIGTERM);
    if (!process_.WaitFor(absl::ToChronoMilliseconds(grace_ + absl::Seconds(5)))) {
      process_.SignalGroup(SIGKILL);
    }
  }

  bool TryReap() { return process_.TryReap(); }
  int Wait() { return process_.Wait(); }

 private:
  Subprocess process_;
  int lifeline_ = -1;
  absl::Duration grace_;
};

// hpsearch-trial-reaper beside this program's executable.
std::string DefaultReaperPath() {
  std::error_code error;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) return "hpsearch-trial-reaper";
  return (self.parent_path() / "hpsearch-trial-reaper").string();
}

// The files the command left in its artifact folder are uploaded when there are some and they are
// small enough to be cheap to move.
std::string ArtifactToUpload(const std::string& dir, int64_t max_bytes, TrialReporter* reporter) {
  if (dir.empty()) return "";
  absl::StatusOr<std::vector<transfer::ArtifactFile>> files = transfer::ListArtifactFiles(dir);
  if (!files.ok()) {
    reporter->Log("artifact folder not uploaded: " + std::string(files.status().message()));
    return "";
  }
  if (files->empty()) return "";
  int64_t bytes = 0;
  for (const transfer::ArtifactFile& file : *files) bytes += file.bytes;
  if (bytes > max_bytes) {
    reporter->Log(absl::StrCat("artifact folder ", dir, " not uploaded: ", bytes,
                               " bytes exceed the command runner's limit of ", max_bytes));
    return "";
  }
  return dir;
}

}  // namespace

std::string ParamValueText(const v1::ParamValue& value) {
  switch (value.kind_case()) {
    case v1::ParamValue::kDoubleValue: {
      // The shortest text that reads back as the same double, so the command sees the exact value.
      char buffer[64];
      auto result = std::to_chars(buffer, buffer + sizeof(buffer), value.double_value());
      return std::string(buffer, result.ptr);
    }
    case v1::ParamValue::kIntValue:
      return std::to_string(value.int_value());
    case v1::ParamValue::kBoolValue:
      return value.bool_value() ? "true" : "false";
    case v1::ParamValue::kStringValue:
      return value.string_value();
    default:
      return "";
  }
}

std::vector<std::string> CommandArgv(const v1::TrialSpec& trial) {
  std::vector<std::string> argv(trial.runner().command().begin(), trial.runner().command().end());
  for (const v1::ParamAssignment& param : trial.params()) {
    argv.push_back("--" + param.name());
    argv.push_back(ParamValueText(param.value()));
  }
  return argv;
}

RunOutcome CommandRunner::Run(const v1::TrialSpec& trial, TrialReporter* reporter) {
  RunOutcome outcome;
  std::vector<std::string> argv = CommandArgv(trial);
  if (argv.empty()) {
    outcome.error = "runner.command is empty: the study must name the command to run";
    return outcome;
  }
  absl::Duration grace = trial.runner().has_kill_grace_seconds()
                             ? absl::Seconds(trial.runner().kill_grace_seconds())
                             : options_.default_kill_grace;
  if (!trial.artifact_dir().empty()) {
    std::error_code ignored;
    std::filesystem::create_directories(trial.artifact_dir(), ignored);
  }
  std::string reaper = options_.reaper_path.empty() ? DefaultReaperPath() : options_.reaper_path;
  if (::access(reaper.c_str(), X_OK) != 0) {
    outcome.error = absl::StrCat(
        "cannot run command trials: ", reaper, " is missing (", std::strerror(errno),
        "); it is built and installed beside hpsearch-worker: copy both from the same build");
    return outcome;
  }
  FetchedModel model;
  if (Reuses(trial)) {
    reporter->Progress(absl::StrCat("evaluate-only: fetching trial ", trial.source_trial_number(),
                                    "'s stored artifact from the coordinator"));
    if (absl::Status fetched = model.Fetch(trial, reporter); !fetched.ok()) {
      outcome.retryable = fetched.code() == absl::StatusCode::kUnavailable ||
                          fetched.code() == absl::StatusCode::kDeadlineExceeded;
      outcome.error = absl::StrCat("cannot fetch trial ", trial.source_trial_number(),
                                   "'s stored artifact to evaluate: ", fetched.message(),
                                   " (retrain_on: reuse evaluates what the best trial's command "
                                   "left in HPSEARCH_ARTIFACT_DIR)");
      return outcome;
    }
  }
  Child child;
  if (absl::Status started =
          child.Start(reaper, argv, CommandEnvironment(trial, options_.environment, model.dir()),
                      trial.runner().working_dir(), grace);
      !started.ok()) {
    outcome.retryable = true;
    outcome.error = absl::StrCat("cannot start ", argv[0], ": ", started.message());
    return outcome;
  }
  RealClock real_clock;
  Clock* const clock = options_.clock != nullptr ? options_.clock : &real_clock;
  const absl::Time start = clock->Now();
  absl::Duration timeout = trial.timeout_seconds() > 0 ? absl::Seconds(trial.timeout_seconds())
                                                       : absl::InfiniteDuration();
  TailBuffer stderr_tail(options_.stderr_tail_bytes);
  std::string out_buffer, err_chunk;
  int line_number = 0;
  // Set when the command must stop; `stop_outcome` is then what the attempt ends as.
  bool stopping = false;
  RunOutcome stop_outcome;
  auto stop = [&](RunOutcome::Kind kind, bool retryable, std::string error, StopReason reason) {
    if (stopping) return;
    stopping = true;
    stop_outcome.kind = kind;
    stop_outcome.retryable = retryable;
    stop_outcome.error = std::move(error);
    stop_outcome.stop_reason = reason;
    child.Terminate();
  };

  auto handle_line = [&](const std::string& line) {
    ++line_number;
    size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] != '{') {
      reporter->Log(line);
      return;
    }
    json parsed = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded() || !parsed.is_object()) {
      stop(RunOutcome::Kind::kFailed, false,
           absl::StrCat("stdout line ", line_number, " starts like a JSON object but is not one ",
                        "(NaN and Infinity are not JSON: print null or leave the metric out): ",
                        line.substr(0, 200)),
           StopReason::kNone);
      return;
    }
    std::string type = parsed.value("type", "");
    if (type == "epoch") {
      absl::StatusOr<v1::EpochMetrics> metrics = EpochFromJson(parsed, clock->Now() - start);
      if (!metrics.ok()) {
        stop(RunOutcome::Kind::kFailed, false,
             absl::StrCat("stdout line ", line_number, ": ", metrics.status().message()),
             StopReason::kNone);
        return;
      }
      absl::StatusOr<bool> go_on = reporter->ReportEpoch(*metrics);
      if (!go_on.ok()) {
        bool lost = go_on.status().code() == absl::StatusCode::kFailedPrecondition ||
                    go_on.status().code() == absl::StatusCode::kNotFound;
        stop(lost ? RunOutcome::Kind::kStopped : RunOutcome::Kind::kFailed, !lost,
             absl::StrCat("reporting epoch ", metrics->epoch(), ": ", go_on.status().message()),
             lost ? StopReason::kLost : StopReason::kNone);
      } else if (!*go_on) {
        stop(RunOutcome::Kind::kPruned, false, "", StopReason::kNone);
      }
    } else if (type == "progress") {
      reporter->StepProgress(ProgressFromJson(parsed));
    } else if (type == "train_summary") {
      v1::TrainSummary train = TrainFromJson(parsed);
      *outcome.result.mutable_train() = train;
      if (absl::Status status = reporter->ReportTrain(train); !status.ok()) {
        reporter->Log(absl::StrCat("train summary not recorded: ", status.message()));
      }
    } else if (type == "test") {
      v1::TestMetrics test = TestFromJson(parsed);
      *outcome.result.mutable_test() = test;
      if (absl::Status status = reporter->ReportTest(test); !status.ok()) {
        reporter->Log(absl::StrCat("test metrics not recorded: ", status.message()));
      }
    } else {
      reporter->Log(line);
    }
  };

  bool open = true;
  while (open || !child.TryReap()) {
    std::string out_chunk;
    err_chunk.clear();
    open = child.Poll(options_.poll_interval, &out_chunk, &err_chunk);
    if (!err_chunk.empty()) stderr_tail.Append(err_chunk.data(), err_chunk.size());
    out_buffer += out_chunk;
    size_t newline;
    while (!stopping && (newline = out_buffer.find('\n')) != std::string::npos) {
      std::string line = out_buffer.substr(0, newline);
      out_buffer.erase(0, newline + 1);
      handle_line(line);
    }
    if (stopping) {
      if (!open || child.TryReap()) break;
      continue;
    }
    switch (reporter->stop_reason()) {
      case StopReason::kNone:
        break;
      case StopReason::kCancel:
        stop(RunOutcome::Kind::kStopped, false, "cancelled by the coordinator",
             StopReason::kCancel);
        break;
      case StopReason::kLost:
        stop(RunOutcome::Kind::kStopped, false, "the lease was lost", StopReason::kLost);
        break;
      case StopReason::kShutdown:
        stop(RunOutcome::Kind::kFailed, true, "the worker is shutting down (SIGTERM)",
             StopReason::kShutdown);
        break;
    }
    if (!stopping && clock->Now() - start > timeout) {
      stop(RunOutcome::Kind::kFailed, true,
           absl::StrFormat("timed out after %.1f s (budget.trial_timeout_seconds)",
                           absl::ToDoubleSeconds(timeout)),
           StopReason::kNone);
    }
  }
  if (!stopping && !out_buffer.empty()) handle_line(out_buffer);
  int status = child.Wait();
  std::string tail = stderr_tail.Text();
  auto with_tail = [&](std::string error) {
    if (tail.empty()) return error;
    return absl::StrCat(error, "\n--- stderr tail ---\n", tail);
  };
  if (stopping) {
    stop_outcome.result = outcome.result;
    if (stop_outcome.kind == RunOutcome::Kind::kFailed) {
      stop_outcome.error = with_tail(stop_outcome.error);
    }
    return stop_outcome;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    outcome.kind = RunOutcome::Kind::kComplete;
    outcome.artifact_dir =
        ArtifactToUpload(trial.artifact_dir(), options_.max_artifact_bytes, reporter);
    return outcome;
  }
  outcome.kind = RunOutcome::Kind::kFailed;
  // A command killed by a signal it did not ask for (OOM killer, a node going down) may well
  // succeed on another attempt; a non-zero exit is the command's own verdict and would repeat.
  outcome.retryable = WIFSIGNALED(status);
  outcome.error = with_tail(absl::StrCat("command ", argv[0], " ", DescribeExit(status)));
  return outcome;
}

}  // namespace hpsearch::worker
