// External clients and the study file's samplers against real processes: a trial run by Ask,
// Heartbeat and Tell over gRPC, an ask/tell study submitted as text, and the grid sampler with the
// median pruner driving real workers.
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

TEST_CASE("An external client runs a trial with Ask, Heartbeat and Tell over gRPC",
          "[integration][ask]") {
  Cluster cluster;
  StudyOptions options;
  options.name = "asktell";
  options.n_trials = 1;
  options.final_stage = false;
  std::string id = cluster.Submit(options);
  auto context = [] {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return c;
  };
  v1::AskRequest ask;
  ask.set_study("asktell");
  ask.set_client_name("notebook");
  v1::TrialSpec trial;
  REQUIRE(cluster.studies->Ask(context().get(), ask, &trial).ok());
  CHECK(trial.params(0).name() == "x");
  // The lease outlives its ttl (2 s) as long as the client heartbeats.
  for (int i = 0; i < 8; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    v1::HeartbeatRequest heartbeat;
    heartbeat.set_worker_id("client:notebook");
    heartbeat.add_lease_ids(trial.lease_id());
    v1::HeartbeatResponse beat;
    REQUIRE(cluster.workers->Heartbeat(context().get(), heartbeat, &beat).ok());
    REQUIRE(beat.leases(0).order() == v1::LEASE_ORDER_CONTINUE);
  }
  v1::TellRequest tell;
  tell.set_lease_id(trial.lease_id());
  tell.set_client_name("notebook");
  tell.set_state(v1::TRIAL_STATE_COMPLETE);
  for (int epoch = 1; epoch <= 2; ++epoch) {
    auto* metrics = tell.add_epochs();
    metrics->set_epoch(epoch);
    metrics->set_val_accuracy(0.4 + 0.1 * epoch);
  }
  v1::Trial told;
  REQUIRE(cluster.studies->Tell(context().get(), tell, &told).ok());
  CHECK(told.state() == v1::TRIAL_STATE_COMPLETE);
  CHECK(told.attempt() == 1);
  CHECK(told.objective_value() == Approx(0.6));
  CHECK(cluster.WaitForEnd(id, 10s) == v1::STUDY_STATE_COMPLETE);
  CHECK(cluster.Query("SELECT COUNT(*) FROM epoch_metrics") == "2");
}

TEST_CASE("The study file's grid sampler and median pruner drive real workers",
          "[integration][sampler][pruner]") {
  Cluster cluster;
  cluster.StartWorker("a");
  cluster.StartWorker("b");
  StudyOptions options;
  options.name = "gridmedian";
  options.n_trials = 20;  // more than the grid's 11 points: the exhausted grid ends the search
  options.epochs = 3;
  options.epoch_seconds = 0.2;  // time for the prune reply to stop the command mid-trial
  options.search_space = "  x: {type: float, low: 0.0, high: 1.0, step: 0.1}\n";
  options.extra_yaml = "sampler: grid\npruner: {type: median, n_startup_trials: 2}\n";
  const std::string id = cluster.Submit(options);
  REQUIRE(cluster.WaitForEnd(id, 120s) == v1::STUDY_STATE_COMPLETE);

  CHECK(cluster.Query("SELECT sampler || ',' || pruner FROM studies") == "grid,median");
  // Exactly the grid, each point once, and no more search trials than it has points.
  CHECK(cluster.Query("SELECT COUNT(*) FROM trials WHERE kind = 'search'") == "11");
  CHECK(cluster.Query("SELECT group_concat(v, ',') FROM (SELECT printf('%.1f', p.value) AS v "
                      "FROM trial_params p JOIN trials t USING (trial_id) "
                      "WHERE t.kind = 'search' ORDER BY p.value)") ==
        "0.0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0");
  // The fake trial's accuracy falls with |x - 0.3|: the median pruner stopped some trials before
  // their last epoch, and each pruned trial keeps the epochs it reported.
  CHECK(std::stoi(cluster.Query("SELECT COUNT(*) FROM trial_summary WHERE state = 'pruned' AND "
                                "epochs < 3")) >= 1);
  CHECK(cluster.Query("SELECT COUNT(*) FROM trial_summary WHERE state = 'pruned' AND epochs < 1") ==
        "0");
  CHECK(cluster.Query("SELECT COUNT(*) FROM trial_summary WHERE state = 'complete' AND kind = "
                      "'search' AND epochs != 3") == "0");
  CHECK(cluster.Query("SELECT printf('%.1f', json_extract(params, '$.x')) FROM best_trial") ==
        "0.3");
}

TEST_CASE("An ask/tell study (runner none) submitted as text is asked and told by value over gRPC",
          "[integration][ask]") {
  Cluster cluster;
  auto context = [] {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return c;
  };
  v1::SubmitStudyRequest submit;
  // No model, no data, parameter names the built-in trainer does not know.
  submit.set_study_file_text(
      "name: notebook\nrunner: none\nsearch_space:\n"
      "  momentum: {type: float, low: 0.0, high: 1.0}\n  layers: {type: int, low: 1, high: 4}\n"
      "budget: {n_trials: 2}\n");
  v1::SubmitStudyResponse submitted;
  grpc::Status status = cluster.studies->SubmitStudy(context().get(), submit, &submitted);
  INFO(status.error_message());
  REQUIRE(status.ok());
  v1::AskRequest ask;
  ask.set_study("notebook");
  ask.set_client_name("nb");
  v1::TrialSpec first, second, third;
  REQUIRE(cluster.studies->Ask(context().get(), ask, &first).ok());
  CHECK(first.params_size() == 2);
  REQUIRE(cluster.studies->Ask(context().get(), ask, &second).ok());
  // The budget is handed out: a non-retryable answer that says so, not UNAVAILABLE.
  status = cluster.studies->Ask(context().get(), ask, &third);
  CHECK(status.error_code() == grpc::StatusCode::OUT_OF_RANGE);
  CHECK(status.error_message().find("exhausted") != std::string::npos);

  auto tell = [&](const v1::TrialSpec& trial, double value, v1::Trial* told) {
    v1::TellRequest request;
    request.set_lease_id(trial.lease_id());
    request.set_client_name("nb");
    request.set_state(v1::TRIAL_STATE_COMPLETE);
    request.set_value(value);
    return cluster.studies->Tell(context().get(), request, told);
  };
  v1::Trial told;
  REQUIRE(tell(first, 0.5, &told).ok());
  CHECK(told.objective_value() == 0.5);
  // While the study searches, `best` answers with the best so far, marked as such, from the
  // coordinator and from the database alike.
  for (const std::vector<std::string>& where :
       {std::vector<std::string>{"--coordinator", cluster.address()},
        std::vector<std::string>{"--db", cluster.db_path()}}) {
    std::vector<std::string> args{"best", "notebook"};
    args.insert(args.end(), where.begin(), where.end());
    ProcessResult best = HpsearchCli(args);
    INFO(best.out << best.err);
    CHECK(best.exit_code == 0);
    CHECK(best.out.rfind("best so far: trial " + std::to_string(first.trial_number()), 0) == 0);
    CHECK(best.out.find("picks its best trial when the search ends") != std::string::npos);
  }
  status = tell(first, 0.75, &told);
  CHECK(status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(status.error_message().find("already told complete with value 0.5") != std::string::npos);
  REQUIRE(tell(second, 0.25, &told).ok());
  CHECK(cluster.WaitForEnd(submitted.study_id(), 10s) == v1::STUDY_STATE_COMPLETE);
  status = cluster.studies->Ask(context().get(), ask, &third);
  CHECK(status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(status.error_message().find("is complete") != std::string::npos);
  v1::Study study = cluster.GetStudy(submitted.study_id());
  CHECK(study.best_objective_value() == 0.25);  // minimised, the default of runner none
  CHECK(cluster.Query("SELECT group_concat(objective_value, ',') FROM "
                      "(SELECT objective_value FROM trials ORDER BY number)") == "0.5,0.25");
}

}  // namespace
}  // namespace hpsearch::testing
