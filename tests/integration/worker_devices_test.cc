// Devices end to end through real processes: the coordinator leases each worker only the runner
// types it registered (an older worker that names none runs every type), and a worker's --device
// and --threads reach its command trials (CUDA_VISIBLE_DEVICES = its one GPU, taken from an
// inherited mask when it has one; HPSEARCH_DEVICE; the thread variables). The worker here is the
// CPU-only build CI has: given cuda:1 it runs command trials and is never leased a qlora trial.
// Under `--devices all` with a job's mask of two GPU UUIDs, each supervised worker's trials see its
// own.
#include <signal.h>

#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "integration/cluster.h"

namespace hpsearch::testing {
namespace {

using namespace std::chrono_literals;

// A valid built-in (qlora) study that nothing here runs: submitted to be passed over.
std::string SubmitUnrunQloraStudy(Cluster& cluster, const std::string& name) {
  std::ofstream(cluster.dir() / "train.csv", std::ios::binary)
      << "text,category\n"
         "I still have not received my new card,card_arrival\n"
         "When will my card arrive?,card_arrival\n"
         "How long does card delivery take?,card_arrival\n"
         "my card has not come yet,card_arrival\n"
         "Where is the card you sent me?,card_arrival\n"
         "I want to change my PIN,change_pin\n"
         "How do I reset my pin code?,change_pin\n"
         "Can I pick a new PIN at an ATM?,change_pin\n"
         "change pin please,change_pin\n"
         "I forgot my PIN,change_pin\n";
  const std::string path = (cluster.dir() / (name + ".yaml")).string();
  std::ofstream(path) << "name: " << name << "\nseed: 3\nmodel:\n"
                      << "  random_init: {n_layer: 1, n_embd: 32, n_head: 2, n_positions: 32}\n"
                      << "  tokenizer: " << (SourceDir() / "data/gpt2").string() << "\n"
                      << "data: {train_file: train.csv, label_column: category, max_length: 32}\n"
                      << "training: {epochs: 1}\n"
                      << "fine_tune: {method: lora, lora: {r: 4, target_modules: all-linear}}\n"
                      << "search_space:\n"
                      << "  learning_rate: {type: float, low: 1.0e-3, high: 5.0e-3, log: true}\n"
                      << "budget: {n_trials: 2, parallelism: 2}\n"
                      << "final_stage: {enabled: false}\n";
  ProcessResult submit = RunProcess(
      {(BinDir() / "hpsearch").string(), "submit", path, "--coordinator", cluster.address()});
  INFO(submit.err);
  REQUIRE(submit.exit_code == 0);
  std::string id = submit.out.substr(0, submit.out.find('\n'));
  REQUIRE(id.rfind("st-", 0) == 0);
  return id;
}

std::unique_ptr<grpc::ClientContext> DevicesCallContext() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return context;
}

// Registers a worker over gRPC that says it runs `types` (none: an older worker).
std::string RegisterDevicesWorker(Cluster& cluster, const std::string& name,
                                  const std::vector<v1::RunnerType>& types) {
  v1::RegisterRequest request;
  request.mutable_info()->set_name(name);
  request.mutable_info()->set_device("cuda:0");
  for (v1::RunnerType type : types) request.add_runner_types(type);
  v1::RegisterResponse response;
  grpc::Status status = cluster.workers->Register(DevicesCallContext().get(), request, &response);
  INFO(status.error_message());
  REQUIRE(status.ok());
  return response.worker_id();
}

// The study id of the trial AcquireTrial leases `worker_id` within `wait_ms`; empty for none.
std::string AcquireStudyOf(Cluster& cluster, const std::string& worker_id, int64_t wait_ms) {
  v1::AcquireTrialRequest request;
  request.set_worker_id(worker_id);
  request.set_wait_ms(wait_ms);
  v1::AcquireTrialResponse response;
  grpc::Status status =
      cluster.workers->AcquireTrial(DevicesCallContext().get(), request, &response);
  INFO(status.error_message());
  REQUIRE(status.ok());
  return response.trial().lease_id().empty() ? "" : response.trial().study_id();
}

std::vector<nlohmann::json> DevicesEnvLog(const std::filesystem::path& path) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  }
  return lines;
}

TEST_CASE("The coordinator leases a worker only the runner types it registered",
          "[integration][devices]") {
  Cluster cluster;
  const std::string qlora = SubmitUnrunQloraStudy(cluster, "lease-qlora");  // first in line
  StudyOptions options;
  options.name = "lease-command";
  options.n_trials = 4;
  options.parallelism = 4;
  const std::string command = cluster.Submit(options);

  // Leases last 2 s here without heartbeats: a trial may come back for a retry while this runs,
  // so each check says what a worker must never get rather than that nothing is left.
  // A worker older than runner_types names none: it runs every type, qlora included.
  const std::string older = RegisterDevicesWorker(cluster, "older", {});
  CHECK(AcquireStudyOf(cluster, older, 1000) == qlora);
  // A command-only worker (a CPU-only build given a GPU) passes over the qlora study, which still
  // has a trial to start.
  const std::string command_only =
      RegisterDevicesWorker(cluster, "command-only", {v1::RUNNER_TYPE_COMMAND});
  CHECK(AcquireStudyOf(cluster, command_only, 1000) == command);
  CHECK(AcquireStudyOf(cluster, command_only, 1000) == command);
  // A qlora-only worker gets the qlora study's other trial, and never a command trial.
  const std::string qlora_only =
      RegisterDevicesWorker(cluster, "qlora-only", {v1::RUNNER_TYPE_QLORA});
  CHECK(AcquireStudyOf(cluster, qlora_only, 1000) == qlora);
  CHECK(AcquireStudyOf(cluster, qlora_only, 300) != command);
  // A worker that names both gets a trial.
  const std::string both =
      RegisterDevicesWorker(cluster, "both", {v1::RUNNER_TYPE_QLORA, v1::RUNNER_TYPE_COMMAND});
  CHECK_FALSE(AcquireStudyOf(cluster, both, 1000).empty());
  // What the results file says each worker ran.
  CHECK(cluster.Query(
            "SELECT COUNT(*) FROM trial_attempts a JOIN trials t ON t.trial_id = a.trial_id "
            "JOIN studies s ON s.study_id = t.study_id "
            "JOIN workers w ON w.worker_id = a.worker_id "
            "WHERE w.name = 'command-only' AND s.name = 'lease-command'") == "2");
  CHECK(cluster.Query(
            "SELECT COUNT(*) FROM trial_attempts a JOIN trials t ON t.trial_id = a.trial_id "
            "JOIN studies s ON s.study_id = t.study_id "
            "JOIN workers w ON w.worker_id = a.worker_id "
            "WHERE (w.name = 'command-only' AND s.name != 'lease-command') "
            "OR (w.name = 'qlora-only' AND s.name != 'lease-qlora')") == "0");
}

TEST_CASE("A CPU-only worker given --device cuda:1 runs command trials on GPU 1, no qlora trial",
          "[integration][devices]") {
  Cluster cluster;
#ifndef HPSEARCH_TEST_TORCH_CUDA
  // Submitted first, so first in line for any worker that can run it.
  SubmitUnrunQloraStudy(cluster, "never-qlora");
#endif
  const std::filesystem::path env_log = cluster.dir() / "env.jsonl";
  StudyOptions options;
  options.n_trials = 2;
  options.parallelism = 1;
  options.epochs = 1;
  options.final_stage = false;
  options.command_args = {"--env_log", env_log.string()};

  // No mask inherited: the trial's GPU is the node's GPU 1.
  ChildProcess& plain = cluster.StartWorker(
      "gpu1", {"/usr/bin/env", "-u", "CUDA_VISIBLE_DEVICES", "FAKE_TRIAL_WORKER=plain"},
      {"--device", "cuda:1", "--threads", "2"});
  options.name = "on-gpu1";
  std::string study = cluster.Submit(options);
  REQUIRE(cluster.WaitForEnd(study, 120s) == v1::STUDY_STATE_COMPLETE);
  plain.Kill(SIGTERM);
  CHECK(plain.Wait(30s) == 0);
#ifndef HPSEARCH_TEST_TORCH_CUDA
  // A CPU-only build says so at start-up, and no attempt of the earlier qlora study was its.
  CHECK(plain.Stderr().find("runs command trials only") != std::string::npos);
  CHECK(cluster.Query(
            "SELECT COUNT(*) FROM trial_attempts a JOIN trials t ON t.trial_id = a.trial_id "
            "JOIN studies s ON s.study_id = t.study_id WHERE s.name = 'never-qlora'") == "0");
#endif

  // Slurm's mask (UUIDs here) inherited: cuda:1 is its second entry.
  cluster.StartWorker("gpu1-masked",
                      {"/usr/bin/env", "CUDA_VISIBLE_DEVICES=GPU-aaaa1111,GPU-bbbb2222",
                       "FAKE_TRIAL_WORKER=masked"},
                      {"--device", "cuda:1", "--threads", "3"});
  options.name = "on-gpu1-masked";
  study = cluster.Submit(options);
  REQUIRE(cluster.WaitForEnd(study, 120s) == v1::STUDY_STATE_COMPLETE);

  std::vector<nlohmann::json> seen = DevicesEnvLog(env_log);
  REQUIRE(seen.size() == 4);
  for (const nlohmann::json& trial : seen) {
    INFO(trial.dump());
    const bool masked = trial["FAKE_TRIAL_WORKER"] == "masked";
    const std::string threads = masked ? "3" : "2";
    CHECK(trial["CUDA_VISIBLE_DEVICES"] == (masked ? "GPU-bbbb2222" : "1"));
    CHECK(trial["HPSEARCH_DEVICE"] == "cuda:0");
    CHECK(trial["OMP_NUM_THREADS"] == threads);
    CHECK(trial["OPENBLAS_NUM_THREADS"] == threads);
    CHECK(trial["MKL_NUM_THREADS"] == threads);
  }
  CHECK(seen[0]["FAKE_TRIAL_WORKER"] == "plain");
  CHECK(seen[1]["FAKE_TRIAL_WORKER"] == "plain");
  CHECK(seen[3]["FAKE_TRIAL_WORKER"] == "masked");
}

TEST_CASE("With --devices all under an inherited mask each worker's command trials see its own GPU",
          "[integration][devices][supervisor]") {
  Cluster cluster;
  // A Slurm job's two GPUs: the supervisor starts cuda:0 and cuda:1, each a worker of one of them.
  ChildProcess& node = cluster.StartWorker(
      "node", {"/usr/bin/env", "CUDA_VISIBLE_DEVICES=GPU-aaaa1111,GPU-bbbb2222"},
      {"--devices", "all", "--threads", "1"});
  // Both registered before the study comes, so its two concurrent trials go one to each worker.
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  while (cluster.Query("SELECT COUNT(*) FROM workers") != "2" &&
         std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(50ms);
  }
  REQUIRE(cluster.Query("SELECT COUNT(*) FROM workers") == "2");
  const std::filesystem::path env_log = cluster.dir() / "env.jsonl";
  StudyOptions options;
  options.name = "slurm-node";
  options.n_trials = 2;
  options.parallelism = 2;
  options.epochs = 1;
  options.epoch_seconds = 1;  // each worker holds its trial while the other is leased one
  options.final_stage = false;
  options.command_args = {"--env_log", env_log.string()};
  const std::string study = cluster.Submit(options);
  REQUIRE(cluster.WaitForEnd(study, 120s) == v1::STUDY_STATE_COMPLETE);
  node.Kill(SIGTERM);
  CHECK(node.Wait(30s) == 0);

  std::vector<nlohmann::json> seen = DevicesEnvLog(env_log);
  REQUIRE(seen.size() == 2);
  std::set<std::string> gpus;
  for (const nlohmann::json& trial : seen) {
    INFO(trial.dump());
    CHECK(trial["HPSEARCH_DEVICE"] == "cuda:0");
    CHECK(trial["OMP_NUM_THREADS"] == "1");
    gpus.insert(trial["CUDA_VISIBLE_DEVICES"].get<std::string>());
  }
  CHECK(gpus == std::set<std::string>{"GPU-aaaa1111", "GPU-bbbb2222"});
  CHECK(cluster.Query("SELECT group_concat(device, ',') FROM (SELECT device FROM workers ORDER BY "
                      "device)") == "cuda:0,cuda:1");
}

}  // namespace
}  // namespace hpsearch::testing
