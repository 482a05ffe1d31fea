// Control-plane tests with real processes on 127.0.0.1: a coordinator, workers running command
// trials, and the faults of issue 3 (killed workers and coordinators, many workers beside an
// outside reader, bad commands, bad reports over gRPC).
#include <signal.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "integration/cluster.h"

namespace hpsearch::testing {
namespace {

using namespace std::chrono_literals;

std::string ReadText(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The CSV line's fields (no quoted commas in what these tests print).
std::vector<std::string> CsvFields(const std::string& line) {
  std::vector<std::string> fields;
  size_t start = 0;
  for (size_t comma = line.find(','); comma != std::string::npos; comma = line.find(',', start)) {
    fields.push_back(line.substr(start, comma - start));
    start = comma + 1;
  }
  fields.push_back(line.substr(start));  // the last field, empty or not
  return fields;
}

// status, trials and best answer from the finished study "e2e"'s database with no coordinator
// running; `first` is trial 0 as the coordinator served it.
void CheckCliReadsFinishedDatabase(const std::string& db, const v1::Trial& first) {
  ProcessResult status = HpsearchCli({"status", "e2e", "--db", db});
  INFO(status.out << status.err);
  CHECK(status.exit_code == 0);
  CHECK(status.out.find("state:   complete") != std::string::npos);
  CHECK(status.out.find("complete=5") != std::string::npos);
  CHECK(status.out.find("best:    trial ") != std::string::npos);
  ProcessResult all = HpsearchCli({"status", "--db", db});
  CHECK(all.exit_code == 0);
  CHECK(all.out.find(" e2e ") != std::string::npos);

  ProcessResult best = HpsearchCli({"best", "e2e", "--db", db});
  INFO(best.out << best.err);
  CHECK(best.exit_code == 0);
  CHECK(best.out.rfind("trial ", 0) == 0);  // decided: not "best so far"
  CHECK(best.out.find("val_accuracy") != std::string::npos);
  CHECK(best.out.find("why: trial ") != std::string::npos);

  // CSV: searched parameters prefixed, numbers that read back exactly.
  ProcessResult csv = HpsearchCli({"trials", "e2e", "--db", db, "--format", "csv"});
  INFO(csv.out << csv.err);
  REQUIRE(csv.exit_code == 0);
  std::stringstream lines(csv.out);
  std::string header_line, row_line;
  std::getline(lines, header_line);
  std::getline(lines, row_line);
  const std::vector<std::string> header = CsvFields(header_line), row = CsvFields(row_line);
  REQUIRE(header.size() == row.size());
  std::map<std::string, std::string> fields;
  for (size_t i = 0; i < header.size(); ++i) fields[header[i]] = row[i];
  REQUIRE(fields.count("param_x") == 1);
  CHECK(fields.count("x") == 0);
  CHECK(fields.at("number") == "0");
  CHECK(std::stod(fields.at("param_x")) == first.params(0).value().double_value());
  CHECK(std::stod(fields.at("objective_value")) == first.objective_value());
  CHECK(fields.at("epochs_reported") == "2");
  ProcessResult table = HpsearchCli({"trials", "e2e", "--db", db});
  CHECK(table.exit_code == 0);
  CHECK(table.out.find("    4 final  complete") != std::string::npos);

  // A wrong study name lists the studies there are; without --db the CLI says where to look.
  ProcessResult wrong = HpsearchCli({"trials", "e2x", "--db", db});
  CHECK(wrong.exit_code == 1);
  CHECK(wrong.err.find("no study with id or name 'e2x'") != std::string::npos);
  CHECK(wrong.err.find("did you mean 'e2e'?") != std::string::npos);
  ProcessResult gone = HpsearchCli({"best", "e2e", "--coordinator", "127.0.0.1:1"});
  CHECK(gone.exit_code == 1);
  CHECK(gone.err.find("--db FILE") != std::string::npos);
}

TEST_CASE(
    "Two workers run a command study to COMPLETE and the report is written without the "
    "coordinator",
    "[integration][control]") {
  Cluster cluster;
  cluster.StartWorker("a");
  cluster.StartWorker("b");
  StudyOptions options;
  options.name = "e2e";
  options.n_trials = 4;
  ChildProcess submit({(BinDir() / "hpsearch").string(), "submit", cluster.WriteStudy(options),
                       "--coordinator", cluster.address(), "--wait"},
                      (cluster.dir() / "submit").string());
  REQUIRE(submit.Wait(60s) == 0);
  std::string id = submit.Stdout().substr(0, submit.Stdout().find('\n'));
  CHECK(submit.Stderr().find("study e2e: complete") != std::string::npos);

  ProcessResult csv = RunProcess({(BinDir() / "hpsearch").string(), "trials", "e2e", "--format",
                                  "csv", "--coordinator", cluster.address()});
  REQUIRE(csv.exit_code == 0);
  CHECK(std::count(csv.out.begin(), csv.out.end(), '\n') == 6);  // header + 4 search + final
  ProcessResult best = RunProcess(
      {(BinDir() / "hpsearch").string(), "best", id, "--coordinator", cluster.address()});
  CHECK(best.exit_code == 0);
  CHECK(best.out.find("val_accuracy") != std::string::npos);

  // Watching a study that already ended prints its trials and ends at once.
  ProcessResult watch = RunProcess(
      {(BinDir() / "hpsearch").string(), "watch", "e2e", "--coordinator", cluster.address()});
  CHECK(watch.exit_code == 0);
  CHECK(watch.out.find("    4 final  complete") != std::string::npos);

  auto first = cluster.GetTrial(id, 0);
  REQUIRE(first.has_value());
  cluster.coordinator().Kill(SIGTERM);
  REQUIRE(cluster.coordinator().Wait(10s) == 0);
  CheckCliReadsFinishedDatabase(cluster.db_path(), *first);
  ProcessResult report = RunProcess({(BinDir() / "hpsearch").string(), "report", "e2e", "--db",
                                     cluster.db_path(), "-o", (cluster.dir() / "rep").string()});
  INFO(report.err);
  REQUIRE(report.exit_code == 0);
  std::string md = ReadText(cluster.dir() / "rep" / "report.md");
  for (const char* section :
       {"# Study report: e2e", "### Trial 3", "| Epoch | Training Loss", "## Best Trial",
        "## Final Model Training", "confirming the reproducibility", "Global Steps: 20",
        "## Test Set Evaluation", "Evaluation Accuracy: 0.9000"}) {
    INFO(section);
    CHECK(md.find(section) != std::string::npos);
  }
  CHECK(cluster.Query("SELECT COUNT(*) FROM trial_summary WHERE state = 'complete'") == "5");
  CHECK(cluster.Query("SELECT json_extract(params, '$.x') IS NOT NULL FROM best_trial") == "1");
}

TEST_CASE(
    "submit --n-trials extends a finished study, keeping its trials and running the final "
    "stage again",
    "[integration][control][extend]") {
  Cluster cluster;
  cluster.StartWorker("a");
  StudyOptions options;
  options.name = "grow";
  options.n_trials = 1;
  options.parallelism = 1;
  const std::string file = cluster.WriteStudy(options);
  ProcessResult first = HpsearchCli({"submit", file, "--coordinator", cluster.address(), "--wait"});
  INFO(first.out << first.err);
  REQUIRE(first.exit_code == 0);
  const std::string id = first.out.substr(0, first.out.find('\n'));
  REQUIRE(cluster.GetStudy(id).final_trial_number() == 1);
  // The same file again is a plain resume of a finished study; a larger budget extends it.
  ProcessResult again =
      HpsearchCli({"submit", file, "--coordinator", cluster.address(), "--resume"});
  CHECK(again.exit_code == 0);
  CHECK(cluster.GetStudy(id).state() == v1::STUDY_STATE_COMPLETE);
  ProcessResult grown = HpsearchCli(
      {"submit", file, "--n-trials", "3", "--coordinator", cluster.address(), "--wait"});
  INFO(grown.out << grown.err);
  REQUIRE(grown.exit_code == 0);
  CHECK(grown.err.find("resumed the existing study grow") != std::string::npos);
  v1::Study study = cluster.GetStudy(id);
  CHECK(study.state() == v1::STUDY_STATE_COMPLETE);
  CHECK(study.spec().budget().n_trials() == 3);
  CHECK(study.trial_counts().at("complete") == 5);  // 3 search trials and 2 final ones
  CHECK(study.final_trial_number() == 4);
  CHECK(cluster.Query("SELECT COUNT(*) FROM trials WHERE kind = 'search'") == "3");
}

TEST_CASE(
    "A pruned command trial says why in trials and the report, and one whose epoch line says it "
    "is the last is never pruned",
    "[integration][control][prune]") {
  Cluster cluster;
  cluster.StartWorker("a");
  // Trial 0 (x = 0.3) scores 1.01 at epoch 1; trial 1 (x = 0.9) scores 0.41 there: below the
  // median of the complete trials.
  StudyOptions options;
  options.n_trials = 2;
  options.parallelism = 1;
  options.final_stage = false;
  options.extra_yaml =
      "pruner: {type: median, n_startup_trials: 1}\nenqueue:\n  - {x: 0.3}\n  - {x: 0.9}\n";
  options.name = "pruned";
  const std::string pruned = cluster.Submit(options);
  // The same trials, each one epoch long, and the epoch line says it is the last.
  options.name = "last";
  options.epochs = 1;
  options.command_args = {"--say_last"};
  const std::string last = cluster.Submit(options);
  REQUIRE(cluster.WaitForEnd(pruned, 60s) == v1::STUDY_STATE_COMPLETE);
  REQUIRE(cluster.WaitForEnd(last, 60s) == v1::STUDY_STATE_COMPLETE);
  // The coordinator answers from memory a moment before its commit: wait for the file to say so.
  REQUIRE(WaitForStoredState(cluster, "pruned", "complete"));

  auto trial = cluster.GetTrial(pruned, 1);
  REQUIRE(trial.has_value());
  CHECK(trial->state() == v1::TRIAL_STATE_PRUNED);
  CHECK(trial->prune_reason().rule() == "median of 1 complete trials at epoch 1");
  CHECK(trial->prune_reason().value() == Approx(0.41));
  CHECK(trial->prune_reason().threshold() == Approx(1.01));
  auto finished = cluster.GetTrial(last, 1);
  REQUIRE(finished.has_value());
  CHECK(finished->state() == v1::TRIAL_STATE_COMPLETE);
  CHECK(finished->objective_value() == Approx(0.41));

  ProcessResult table = HpsearchCli({"trials", "pruned", "--db", cluster.db_path()});
  INFO(table.out << table.err);
  CHECK(
      table.out.find("pruned: median of 1 complete trials at epoch 1: 0.41 missed the bar 1.01") !=
      std::string::npos);
  ProcessResult report = HpsearchCli({"report", "pruned", "--db", cluster.db_path(), "-o",
                                      (cluster.dir() / "pruned-report").string()});
  REQUIRE(report.exit_code == 0);
  CHECK(ReadText(cluster.dir() / "pruned-report" / "report.md")
            .find("- **Why pruned**: median of 1 complete trials at epoch 1") != std::string::npos);
  CHECK(cluster.Query("SELECT prune_epoch FROM trial_summary WHERE study_name = 'pruned' AND "
                      "trial_number = 1") == "1");
}

TEST_CASE("A SIGKILLed worker's trial re-runs on another worker and completes once",
          "[integration][faults]") {
  Cluster cluster;
  StudyOptions options;
  options.name = "killed";
  options.n_trials = 1;
  options.parallelism = 1;
  options.epochs = 4;
  options.epoch_seconds = 0.3;
  options.final_stage = false;
  std::string id = cluster.Submit(options);
  ChildProcess& first = cluster.StartWorker("first");
  auto give_up = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < give_up) {
    auto trial = cluster.GetTrial(id, 0);
    if (trial && trial->epochs_size() >= 1) break;
    std::this_thread::sleep_for(20ms);
  }
  first.Kill(SIGKILL);
  first.Wait(5s);
  cluster.StartWorker("second");
  REQUIRE(cluster.WaitForEnd(id, 120s) == v1::STUDY_STATE_COMPLETE);
  auto trial = cluster.GetTrial(id, 0);
  REQUIRE(trial.has_value());
  CHECK(trial->state() == v1::TRIAL_STATE_COMPLETE);
  CHECK(trial->attempt() == 2);
  REQUIRE(trial->attempts_size() == 1);
  CHECK(trial->attempts(0).error().find("lease expired") != std::string::npos);
  CHECK(trial->attempts(0).epochs_size() >= 1);
  CHECK(cluster.Query("SELECT COUNT(*) FROM trial_attempts WHERE state = 'complete'") == "1");
  CHECK(cluster.Query("SELECT group_concat(attempt || ':' || epoch) FROM epoch_metrics") ==
        "2:1,2:2,2:3,2:4");
  CHECK(cluster.Query("SELECT MIN(attempt) FROM epochs") == "1");  // the killed attempt is history
}

TEST_CASE("A SIGKILLed coordinator restarted on the same file finishes the study",
          "[integration][faults]") {
  Cluster cluster;
  StudyOptions options;
  options.name = "restart";
  options.n_trials = 6;
  options.parallelism = 2;
  options.epochs = 3;
  options.epoch_seconds = 0.25;
  std::string id = cluster.Submit(options);
  cluster.StartWorker("a");
  cluster.StartWorker("b");
  auto give_up = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < give_up) {
    auto trial = cluster.GetTrial(id, 2);
    if (trial && trial->epochs_size() >= 1) break;
    std::this_thread::sleep_for(20ms);
  }
  cluster.coordinator().Kill(SIGKILL);
  cluster.coordinator().Wait(5s);
  std::this_thread::sleep_for(500ms);  // workers keep running and retry their reports meanwhile
  cluster.StartCoordinator(cluster.port());
  REQUIRE(cluster.WaitForEnd(id, 120s) == v1::STUDY_STATE_COMPLETE);
  CHECK(cluster.Query("SELECT COUNT(*) FROM trials WHERE kind = 'search'") == "6");
  // No trial completed twice, and every complete attempt has all of its epochs.
  CHECK(cluster.Query("SELECT COUNT(*) FROM (SELECT trial_id FROM trial_attempts WHERE state = "
                      "'complete' GROUP BY trial_id HAVING COUNT(*) > 1)") == "0");
  CHECK(cluster.Query("SELECT COUNT(*) FROM trial_attempts WHERE state = 'complete'") == "7");
  CHECK(cluster.Query(
            "SELECT COUNT(*) FROM trial_summary WHERE state = 'complete' AND epochs != 3") == "0");
  for (auto& worker : cluster.worker_processes()) {
    CHECK(worker->running());  // they reconnected instead of giving up
  }
}

TEST_CASE("32 workers beside an outside sqlite3 reader holding a read transaction: no lock errors",
          "[integration][faults][load]") {
  // 97 processes (32 workers, their reapers and commands, the coordinator) on as few as 2 cores,
  // beside another test under ctest -j2: an attempt must end complete even when a heartbeat waits
  // seconds for a CPU (with the usual 2 s lease it expired then, whichever way the trial started).
  Cluster cluster({}, /*lease_ttl_seconds=*/20);
  StudyOptions options;
  options.name = "crowd";
  options.n_trials = 64;
  options.parallelism = 32;
  options.epochs = 2;
  std::string id = cluster.Submit(options);
  std::string command = "/usr/bin/sqlite3 " + cluster.db_path() + " > /dev/null";
  FILE* reader = ::popen(command.c_str(), "w");
  REQUIRE(reader != nullptr);
  std::fputs("BEGIN;\nSELECT COUNT(*) FROM trials;\n", reader);
  std::fflush(reader);
  for (int i = 0; i < 32; ++i) cluster.StartWorker("w" + std::to_string(i));
  // 20-55 s under ctest -j2 on 2 cores; about 110 s beside 5 busy processes (a cap, not a wait).
  REQUIRE(cluster.WaitForEnd(id, 300s) == v1::STUDY_STATE_COMPLETE);
  std::fputs("COMMIT;\n.quit\n", reader);
  CHECK(::pclose(reader) == 0);
  CHECK(cluster.Query("SELECT COUNT(*) FROM trial_summary WHERE state = 'complete'") == "65");
  // What an attempt that did not complete says, should one not have.
  INFO(
      cluster.Query("SELECT group_concat(trial_id || '/' || attempt || ' ' || state || ' on ' || "
                    "worker_id || ': ' || error, ' | ') FROM trial_attempts WHERE state != "
                    "'complete'"));
  CHECK(cluster.Query("SELECT COUNT(*) FROM trial_attempts WHERE state != 'complete'") == "0");
  std::string logs = cluster.coordinator().Stderr();
  for (auto& worker : cluster.worker_processes()) logs += worker->Stderr();
  CHECK(logs.find("locked") == std::string::npos);
  CHECK(logs.find("error") == std::string::npos);
}

TEST_CASE("Bad commands end FAILED or retried with their stderr tail kept",
          "[integration][faults]") {
  Cluster cluster;
  cluster.StartWorker("a");
  cluster.StartWorker("b");
  struct Case {
    std::string mode;
    double timeout;
    std::string expected;
  };
  std::vector<Case> cases = {
      {"fail", 0, "exited with status 3"},
      {"garbage", 0, "without any epoch reporting the objective metric"},
      {"nan", 0, "is not one (NaN and Infinity are not JSON"},
      {"silent", 1.0, "timed out"},
  };
  std::vector<std::string> ids;
  for (const Case& c : cases) {
    StudyOptions options;
    options.name = "bad-" + c.mode;
    options.n_trials = 1;
    options.parallelism = 1;
    options.max_retries = 1;
    options.mode = c.mode;
    options.trial_timeout_seconds = c.timeout;
    ids.push_back(cluster.Submit(options));
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    INFO(cases[i].mode);
    REQUIRE(cluster.WaitForEnd(ids[i], 60s) == v1::STUDY_STATE_FAILED);
    auto trial = cluster.GetTrial(ids[i], 0);
    REQUIRE(trial.has_value());
    CHECK(trial->state() == v1::TRIAL_STATE_FAILED);
    CHECK(trial->error().find(cases[i].expected) != std::string::npos);
    CHECK(cluster.GetStudy(ids[i]).state_reason().find("no search trial completed") !=
          std::string::npos);
  }
  // The failing command's own words are kept; the timed-out one was retried once before failing.
  CHECK(cluster.GetTrial(ids[0], 0)->error().find("the input is broken beyond repair") !=
        std::string::npos);
  CHECK(cluster.GetTrial(ids[0], 0)->attempt() == 1);
  CHECK(cluster.GetTrial(ids[3], 0)->attempt() == 2);
}

TEST_CASE("A worker stopped with SIGTERM fails its trial as retryable and exits cleanly",
          "[integration][faults]") {
  Cluster cluster;
  StudyOptions options;
  options.name = "sigterm";
  options.n_trials = 1;
  options.parallelism = 1;
  options.epochs = 20;
  options.epoch_seconds = 0.5;
  options.final_stage = false;
  std::string id = cluster.Submit(options);
  ChildProcess& worker = cluster.StartWorker("w");
  auto give_up = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < give_up) {
    auto trial = cluster.GetTrial(id, 0);
    if (trial && trial->epochs_size() >= 1) break;
    std::this_thread::sleep_for(20ms);
  }
  worker.Kill(SIGTERM);
  CHECK(worker.Wait(10s) == 0);
  auto trial = cluster.GetTrial(id, 0);
  REQUIRE(trial.has_value());
  CHECK(trial->state() == v1::TRIAL_STATE_WAITING);
  CHECK(trial->attempt() == 2);
  CHECK(trial->error().find("received SIGTERM") != std::string::npos);
}

// Raw WorkerService calls against a real coordinator: each bad request gets a precise status.
TEST_CASE("Bad reports and specs over gRPC get precise statuses", "[integration][faults][grpc]") {
  Cluster cluster;
  StudyOptions options;
  options.name = "grpc";
  options.n_trials = 2;
  std::string id = cluster.Submit(options);
  auto call_context = [] {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return context;
  };
  v1::RegisterRequest reg;
  reg.mutable_info()->set_name("raw");
  v1::RegisterResponse registered;
  REQUIRE(cluster.workers->Register(call_context().get(), reg, &registered).ok());
  v1::AcquireTrialRequest acquire;
  acquire.set_worker_id(registered.worker_id());
  acquire.set_wait_ms(1000);
  v1::AcquireTrialResponse acquired;
  REQUIRE(cluster.workers->AcquireTrial(call_context().get(), acquire, &acquired).ok());
  REQUIRE_FALSE(acquired.trial().lease_id().empty());
  const std::string lease = acquired.trial().lease_id();

  auto report = [&](const std::string& lease_id, int epoch, double accuracy,
                    v1::ReportEpochResponse* response) {
    v1::ReportEpochRequest request;
    request.set_lease_id(lease_id);
    request.set_worker_id(registered.worker_id());
    request.mutable_metrics()->set_epoch(epoch);
    request.mutable_metrics()->set_val_accuracy(accuracy);
    return cluster.workers->ReportEpoch(call_context().get(), request, response);
  };
  v1::ReportEpochResponse response;
  REQUIRE(report(lease, 1, 0.5, &response).ok());
  CHECK_FALSE(response.duplicate());
  REQUIRE(report(lease, 1, 0.5, &response).ok());
  CHECK(response.duplicate());
  CHECK(report(lease, 3, 0.5, &response).error_code() == grpc::StatusCode::OUT_OF_RANGE);
  grpc::Status nan = report(lease, 2, std::nan(""), &response);
  CHECK(nan.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(nan.error_message().find("NaN") != std::string::npos);
  CHECK(report("ls-unknown", 1, 0.5, &response).error_code() == grpc::StatusCode::NOT_FOUND);

  v1::SubmitStudyRequest bad;
  bad.mutable_spec()->set_name("bad spec!");
  v1::SubmitStudyResponse submitted;
  grpc::Status refused = cluster.studies->SubmitStudy(call_context().get(), bad, &submitted);
  CHECK(refused.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(refused.error_message().find("name") != std::string::npos);

  v1::CancelStudyRequest cancel;
  cancel.set_study(id);
  v1::Study cancelled;
  REQUIRE(cluster.studies->CancelStudy(call_context().get(), cancel, &cancelled).ok());
  grpc::Status after_cancel = report(lease, 2, 0.6, &response);
  CHECK(after_cancel.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(after_cancel.error_message().find("cancelled") != std::string::npos);
  // Nothing was corrupted: the one accepted epoch is stored once.
  CHECK(cluster.Query("SELECT COUNT(*) FROM epochs") == "1");
}

TEST_CASE("hpsearch submit --resume refuses a study whose data file changed, naming it",
          "[integration][submit]") {
  Cluster cluster;
  StudyOptions options;
  options.name = "hashed";
  options.n_trials = 1;
  std::string study = cluster.WriteStudy(options);
  // The study trains on a copy of the training file that the test can change.
  std::filesystem::path train = cluster.dir() / "train.csv";
  std::filesystem::copy_file(SourceDir() / "data/banking77/train.csv", train);
  std::string yaml = ReadText(study);
  std::string original = (SourceDir() / "data/banking77/train.csv").string();
  REQUIRE(yaml.find(original) != std::string::npos);
  yaml.replace(yaml.find(original), original.size(), train.string());
  std::ofstream(study) << yaml;
  auto submit = [&](bool resume) {
    std::vector<std::string> argv = {(BinDir() / "hpsearch").string(), "submit", study,
                                     "--coordinator", cluster.address()};
    if (resume) argv.push_back("--resume");
    return RunProcess(argv);
  };
  ProcessResult first = submit(false);
  INFO(first.err);
  REQUIRE(first.exit_code == 0);
  CHECK(cluster.Query(("SELECT length(json_extract(data_sha256, '$.\"" + train.string() +
                       "\"')) FROM studies")
                          .c_str()) == "64");
  ProcessResult same = submit(true);
  INFO(same.err);
  CHECK(same.exit_code == 0);
  CHECK(same.err.find("resumed") != std::string::npos);

  std::ofstream(train, std::ios::app) << "one more row,card_arrival\n";
  ProcessResult changed = submit(true);
  INFO(changed.err);
  CHECK(changed.exit_code != 0);
  CHECK(changed.err.find("FAILED_PRECONDITION") != std::string::npos);
  CHECK(changed.err.find("data: " + train.string() + ": sha256 ") != std::string::npos);
  CHECK(cluster.Query("SELECT COUNT(*) FROM studies") == "1");
}

TEST_CASE("A second coordinator on the same database is refused", "[integration][faults]") {
  Cluster cluster;
  ProcessResult second = RunProcess({(BinDir() / "hpsearch").string(), "serve", "--db",
                                     cluster.db_path(), "--listen", "127.0.0.1:0"});
  CHECK(second.exit_code == 1);
  CHECK(second.err.find("another coordinator") != std::string::npos);
}

}  // namespace
}  // namespace hpsearch::testing
