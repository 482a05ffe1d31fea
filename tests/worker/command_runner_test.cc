#include "worker/command_runner.h"

#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "testing/recording_reporter.h"
#include "testing/testing.h"

namespace hpsearch::worker {
namespace {

using testing::RecordingReporter;

v1::TrialSpec ShellTrial(const std::string& script, const testing::TempDir& dir) {
  v1::TrialSpec trial;
  trial.set_study_id("st-1");
  trial.set_study_name("unit");
  trial.set_trial_number(7);
  trial.set_kind(v1::TRIAL_KIND_FINAL);
  trial.set_attempt(2);
  trial.set_seed(49);
  trial.set_retrain_on(v1::RETRAIN_ON_TRAIN_VALIDATION);
  trial.set_artifact_dir((dir / "artifacts" / "final-0007").string());
  trial.mutable_runner()->set_type(v1::RUNNER_TYPE_COMMAND);
  trial.mutable_runner()->add_command("/bin/sh");
  trial.mutable_runner()->add_command("-c");
  trial.mutable_runner()->add_command(script);
  trial.mutable_runner()->add_command("sh");  // $0; the parameters follow as $1, $2, ...
  trial.mutable_runner()->set_working_dir(dir.path().string());
  trial.mutable_runner()->set_kill_grace_seconds(0.3);
  (*trial.mutable_runner()->mutable_env())["EXTRA"] = "yes";
  auto* lr = trial.add_params();
  lr->set_name("learning_rate");
  lr->mutable_value()->set_double_value(0.000462);
  auto* opt = trial.add_params();
  opt->set_name("optimizer");
  opt->mutable_value()->set_string_value("adamw");
  return trial;
}

TEST_CASE("CommandRunner passes parameters as flags and environment, and reads the protocol",
          "[worker][command]") {
  testing::TempDir dir;
  std::string script =
      "echo \"args $*\" >&2; "
      "printf '{\"type\":\"epoch\",\"epoch\":1,\"val_accuracy\":0.5,\"tokens\":12}\\n'; "
      "echo plain log line; "
      "printf '{\"type\":\"train_summary\",\"global_steps\":4004,\"total_flos\":7.5e15}\\n'; "
      "printf '{\"type\":\"test\",\"test_accuracy\":0.9351,\"runtime_seconds\":43.5}\\n'; "
      "env | grep -E '^(HPSEARCH_|EXTRA=)' | sort > env.txt; pwd > pwd.txt";
  RecordingReporter reporter;
  CommandRunner runner;
  RunOutcome outcome = runner.Run(ShellTrial(script, dir), &reporter);
  INFO(outcome.error);
  REQUIRE(outcome.kind == RunOutcome::Kind::kComplete);
  REQUIRE(reporter.epochs.size() == 1);
  CHECK(reporter.epochs[0].val_accuracy() == 0.5);
  CHECK(reporter.epochs[0].extra().at("tokens") == 12);
  CHECK_FALSE(reporter.epochs[0].has_val_loss());
  REQUIRE(reporter.trains.size() == 1);
  CHECK(reporter.trains[0].global_steps() == 4004);
  REQUIRE(reporter.tests.size() == 1);
  CHECK(reporter.tests[0].test_accuracy() == 0.9351);
  CHECK(outcome.result.test().runtime_seconds() == 43.5);
  CHECK(std::find(reporter.logs.begin(), reporter.logs.end(), "plain log line") !=
        reporter.logs.end());

  std::ifstream env_file(dir / "env.txt");
  std::string env((std::istreambuf_iterator<char>(env_file)), std::istreambuf_iterator<char>());
  for (const char* line :
       {"EXTRA=yes", "HPSEARCH_PARAM_LEARNING_RATE=0.000462", "HPSEARCH_PARAM_OPTIMIZER=adamw",
        "HPSEARCH_STUDY_ID=st-1", "HPSEARCH_TRIAL_NUMBER=7", "HPSEARCH_TRIAL_KIND=final",
        "HPSEARCH_SEED=49", "HPSEARCH_RETRAIN_ON=train_validation", "HPSEARCH_ATTEMPT=2"}) {
    INFO(line);
    CHECK(env.find(line) != std::string::npos);
  }
  CHECK(env.find("HPSEARCH_ARTIFACT_DIR=" + (dir / "artifacts" / "final-0007").string()) !=
        std::string::npos);
  CHECK(std::filesystem::is_directory(dir / "artifacts" / "final-0007"));
  CHECK(CommandArgv(ShellTrial(script, dir)).back() == "adamw");
  CHECK(CommandArgv(ShellTrial(script, dir))[5] == "0.000462");
}

TEST_CASE("CommandRunner gives the command the worker's device variables, and runner.env wins",
          "[worker][command][devices]") {
  testing::TempDir dir;
  CommandRunnerOptions options;
  options.environment = {{"CUDA_VISIBLE_DEVICES", "GPU-8f00aa11"},
                         {"HPSEARCH_DEVICE", "cuda:0"},
                         {"OMP_NUM_THREADS", "3"},
                         {"MKL_NUM_THREADS", "3"}};
  CommandRunner runner(options);
  v1::TrialSpec trial = ShellTrial(
      "printf '{\"type\":\"epoch\",\"epoch\":1,\"val_accuracy\":0.5}\\n'; "
      "env | grep -E '^(CUDA_VISIBLE_DEVICES|HPSEARCH_DEVICE|OMP_NUM_THREADS|MKL_NUM_THREADS)=' "
      "| sort > env.txt",
      dir);
  (*trial.mutable_runner()->mutable_env())["OMP_NUM_THREADS"] = "8";  // the study's own choice
  RecordingReporter reporter;
  RunOutcome outcome = runner.Run(trial, &reporter);
  INFO(outcome.error);
  REQUIRE(outcome.kind == RunOutcome::Kind::kComplete);
  std::ifstream env_file(dir / "env.txt");
  std::string env((std::istreambuf_iterator<char>(env_file)), std::istreambuf_iterator<char>());
  CHECK(env ==
        "CUDA_VISIBLE_DEVICES=GPU-8f00aa11\nHPSEARCH_DEVICE=cuda:0\nMKL_NUM_THREADS=3\n"
        "OMP_NUM_THREADS=8\n");
}

TEST_CASE("CommandRunner keeps the stderr tail of a failing command", "[worker][command]") {
  testing::TempDir dir;
  RecordingReporter reporter;
  CommandRunnerOptions options;
  options.stderr_tail_bytes = 64;
  CommandRunner runner(options);
  std::string script =
      "i=0; while [ $i -lt 200 ]; do echo \"noise line $i\" >&2; i=$((i+1)); done; "
      "echo 'CUDA out of memory: the real cause' >&2; exit 4";
  RunOutcome outcome = runner.Run(ShellTrial(script, dir), &reporter);
  CHECK(outcome.kind == RunOutcome::Kind::kFailed);
  CHECK_FALSE(outcome.retryable);
  CHECK(outcome.error.find("exited with status 4") != std::string::npos);
  CHECK(outcome.error.find("CUDA out of memory: the real cause") != std::string::npos);
  CHECK(outcome.error.find("noise line 3\n") == std::string::npos);  // only the tail is kept
}

TEST_CASE("CommandRunner stops the whole process group on prune, SIGKILL after the grace",
          "[worker][command]") {
  testing::TempDir dir;
  RecordingReporter reporter;
  reporter.prune_from_epoch = 2;
  CommandRunner runner;
  // The command ignores SIGTERM and leaves a child behind that would keep the pipes open.
  std::string script =
      "trap '' TERM; (trap '' TERM; sleep 60) & "
      "e=1; while true; do printf '{\"type\":\"epoch\",\"epoch\":%d,\"val_accuracy\":0.1}\\n' $e; "
      "e=$((e+1)); sleep 0.05; done";
  auto start = std::chrono::steady_clock::now();
  RunOutcome outcome = runner.Run(ShellTrial(script, dir), &reporter);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(outcome.kind == RunOutcome::Kind::kPruned);
  CHECK(reporter.epochs.size() == 2);
  CHECK(seconds < 5);  // the ignored SIGTERM was followed by SIGKILL of the group
}

// Reads the pids the script wrote, one per line, to `file`.
std::vector<pid_t> ReadPids(const std::filesystem::path& file) {
  std::vector<pid_t> pids;
  std::ifstream in(file);
  for (long pid; in >> pid;) pids.push_back(static_cast<pid_t>(pid));
  return pids;
}

bool Alive(pid_t pid) { return ::kill(pid, 0) == 0; }

TEST_CASE("CommandRunner ends the command's whole tree on prune, setsid'd daemons included",
          "[worker][command][reaper]") {
  testing::TempDir dir;
  RecordingReporter reporter;
  reporter.prune_from_epoch = 2;
  CommandRunner runner;
  // A grandchild that ignores SIGTERM, a child in a session of its own, and a daemon whose parent
  // already exited (it is re-parented to the reaper, not to the command).
  std::string script =
      "(trap '' TERM; sleep 60) & echo $! >> pids; "
      "setsid sleep 60 & echo $! >> pids; "
      "(setsid sleep 60 & echo $! >> pids); "
      "e=1; while true; do printf '{\"type\":\"epoch\",\"epoch\":%d,\"val_accuracy\":0.1}\\n' $e; "
      "e=$((e+1)); sleep 0.05; done";
  RunOutcome outcome = runner.Run(ShellTrial(script, dir), &reporter);
  CHECK(outcome.kind == RunOutcome::Kind::kPruned);
  std::vector<pid_t> pids = ReadPids(dir / "pids");
  REQUIRE(pids.size() == 3);
  // Run() returns once the reaper has reaped the whole tree: nothing is left to wait for.
  for (pid_t pid : pids) {
    INFO(pid);
    CHECK_FALSE(Alive(pid));
  }
}

TEST_CASE("CommandRunner ends what a completed command left running", "[worker][command][reaper]") {
  testing::TempDir dir;
  RecordingReporter reporter;
  CommandRunner runner;
  RunOutcome outcome = runner.Run(
      ShellTrial("setsid sleep 60 & echo $! > pids; (sleep 60 & echo $! >> pids); exit 0", dir),
      &reporter);
  CHECK(outcome.kind == RunOutcome::Kind::kComplete);
  std::vector<pid_t> pids = ReadPids(dir / "pids");
  REQUIRE(pids.size() == 2);
  for (pid_t pid : pids) {
    INFO(pid);
    CHECK_FALSE(Alive(pid));
  }
}

TEST_CASE("CommandRunner fails a command trial clearly when the reaper is missing",
          "[worker][command][reaper]") {
  testing::TempDir dir;
  RecordingReporter reporter;
  CommandRunnerOptions options;
  options.reaper_path = (dir / "no-such-reaper").string();
  CommandRunner runner(options);
  RunOutcome outcome = runner.Run(ShellTrial("exit 0", dir), &reporter);
  CHECK(outcome.kind == RunOutcome::Kind::kFailed);
  CHECK(outcome.error.find("no-such-reaper is missing") != std::string::npos);
  CHECK(outcome.error.find("beside hpsearch-worker") != std::string::npos);
}

// Moves the runner's clock an hour on the first time the runner checks for a stop order, which it
// does after starting the command: a trial's timeout then passes without waiting for it.
class ClockAdvancingReporter : public RecordingReporter {
 public:
  explicit ClockAdvancingReporter(ManualClock* clock) : clock_(clock) {}
  StopReason stop_reason() const override {
    if (!advanced_.exchange(true)) clock_->Advance(absl::Hours(1));
    return RecordingReporter::stop_reason();
  }

 private:
  ManualClock* const clock_;
  mutable std::atomic<bool> advanced_{false};
};

TEST_CASE("CommandRunner fails a trial past its timeout as retryable and stops on cancel",
          "[worker][command]") {
  testing::TempDir dir;
  ManualClock clock;
  CommandRunnerOptions options;
  options.clock = &clock;
  CommandRunner runner(options);
  SECTION("timeout") {
    ClockAdvancingReporter reporter(&clock);
    v1::TrialSpec trial = ShellTrial("sleep 30", dir);
    trial.set_timeout_seconds(60);
    RunOutcome outcome = runner.Run(trial, &reporter);
    CHECK(outcome.kind == RunOutcome::Kind::kFailed);
    CHECK(outcome.retryable);
    CHECK(outcome.error.find("timed out after 60.0 s") != std::string::npos);
  }
  SECTION("timeout of a command that closed its output and lives on") {
    ClockAdvancingReporter reporter(&clock);
    v1::TrialSpec trial = ShellTrial("exec >&- 2>&-; sleep 30", dir);
    trial.set_timeout_seconds(60);
    RunOutcome outcome = runner.Run(trial, &reporter);
    CHECK(outcome.kind == RunOutcome::Kind::kFailed);
    CHECK(outcome.error.find("timed out") != std::string::npos);
  }
  SECTION("no timeout while the clock stands still") {
    RecordingReporter reporter;
    v1::TrialSpec trial = ShellTrial("sleep 0.2", dir);
    trial.set_timeout_seconds(0.001);
    RunOutcome outcome = runner.Run(trial, &reporter);
    CHECK(outcome.kind == RunOutcome::Kind::kComplete);
  }
  SECTION("cancel") {
    // Ordered before the command starts: the runner stops it at its first check.
    RecordingReporter reporter;
    reporter.stop = StopReason::kCancel;
    RunOutcome outcome = runner.Run(ShellTrial("sleep 30", dir), &reporter);
    CHECK(outcome.kind == RunOutcome::Kind::kStopped);
    CHECK(outcome.stop_reason == StopReason::kCancel);
  }
}

TEST_CASE("CommandRunner refuses a malformed protocol line", "[worker][command]") {
  testing::TempDir dir;
  RecordingReporter reporter;
  CommandRunner runner;
  RunOutcome outcome = runner.Run(
      ShellTrial("echo '{\"type\":\"epoch\",\"epoch\":1,\"val_loss\":NaN}'; sleep 30", dir),
      &reporter);
  CHECK(outcome.kind == RunOutcome::Kind::kFailed);
  CHECK_FALSE(outcome.retryable);
  CHECK(outcome.error.find("stdout line 1") != std::string::npos);
  CHECK(reporter.epochs.empty());
}

TEST_CASE("ParamValueText prints doubles so they read back exactly", "[worker][command]") {
  v1::ParamValue value;
  value.set_double_value(0.1 + 0.2);
  CHECK(std::stod(ParamValueText(value)) == 0.1 + 0.2);
  value.set_double_value(1e-5);
  CHECK(ParamValueText(value) == "1e-05");
  value.set_bool_value(true);
  CHECK(ParamValueText(value) == "true");
}

}  // namespace
}  // namespace hpsearch::worker
