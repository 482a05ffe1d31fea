// Live progress with real processes: `hpsearch watch` redrawing on a terminal, and a command
// trial's progress lines reaching the coordinator's trial_progress row.
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "integration/cluster.h"

namespace hpsearch::testing {
namespace {

using namespace std::chrono_literals;

TEST_CASE("watch on a terminal redraws at least once a second with elapsed time and budget used",
          "[integration][control][watch]") {
  Cluster cluster;  // no worker: nothing happens in the study, so every redraw is the timer's
  StudyOptions options;
  options.name = "idle";
  options.n_trials = 3;
  const std::string id = cluster.Submit(options);
  // script(1) gives `hpsearch watch` a pseudo-terminal, so it draws its live table.
  const std::string watch =
      (BinDir() / "hpsearch").string() + " watch idle --coordinator " + cluster.address();
  ChildProcess terminal({"/usr/bin/script", "-qfec", watch, "/dev/null"},
                        (cluster.dir() / "watch-tty").string());
  auto redraws = [&] {
    const std::string out = terminal.Stdout();
    size_t count = 0;
    for (size_t at = out.find("\033[H\033[2J"); at != std::string::npos;
         at = out.find("\033[H\033[2J", at + 1)) {
      ++count;
    }
    return count;
  };
  // The first draw comes with the study's snapshot; four more can only be the timer's.
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  while (redraws() < 5 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(100ms);
  }
  CHECK(redraws() >= 5);
  const std::string out = terminal.Stdout();
  CHECK(out.find("study idle (" + id + "): searching, elapsed ") != std::string::npos);
  CHECK(out.find("search trials 0/3 (0 running)") != std::string::npos);
  // The study ending ends the watch (and the terminal with it).
  REQUIRE(HpsearchCli({"cancel", "idle", "--coordinator", cluster.address()}).exit_code == 0);
  CHECK(terminal.Wait(30s) == 1);  // watch exits 1: the study did not complete
  CHECK(terminal.Stdout().find(": cancelled") != std::string::npos);
}

TEST_CASE("A command trial's progress lines reach the trial_progress row while it runs",
          "[integration][control][progress]") {
  Cluster cluster;
  cluster.StartWorker("a");
  StudyOptions options;
  options.name = "steps";
  options.n_trials = 1;
  options.parallelism = 1;
  options.epochs = 3;
  options.epoch_seconds = 2;
  options.final_stage = false;
  options.command_args = {"--progress"};
  const std::string id = cluster.Submit(options);
  // Heartbeats every 0.3 s carry the trial's latest progress line; poll for its row.
  std::optional<std::string> row;
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < give_up) {
    std::string seen = cluster.Query(
        "SELECT IFNULL((SELECT step || '/' || total_steps || ' ' || epochs FROM trial_progress), "
        "'')");
    if (!seen.empty()) {
      row = seen;
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  REQUIRE(row.has_value());
  CHECK(row->find("/30 3") != std::string::npos);
  // `trials --db` reads it from the file (while the trial still runs).
  ProcessResult listed = HpsearchCli({"trials", "steps", "--db", cluster.db_path()});
  INFO(listed.out);
  if (listed.out.find(" running ") != std::string::npos) {
    CHECK(listed.out.find("/30 [") != std::string::npos);
  }
  // The coordinator shows it with the running trial.
  auto running = cluster.GetTrial(id, 0);
  REQUIRE(running.has_value());
  if (running->state() == v1::TRIAL_STATE_RUNNING) CHECK(running->progress().total_steps() == 30);
  REQUIRE(cluster.WaitForEnd(id, 60s) == v1::STUDY_STATE_COMPLETE);
  REQUIRE(WaitForStoredState(cluster, "steps", "complete"));
  CHECK(cluster.Query("SELECT COUNT(*) FROM trial_progress") == "0");
  CHECK_FALSE(cluster.GetTrial(id, 0)->has_progress());
}

}  // namespace
}  // namespace hpsearch::testing
