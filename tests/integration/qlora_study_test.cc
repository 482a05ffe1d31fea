// Real QLoRA studies through real processes: the coordinator, workers running the built-in trainer
// on a tiny random-init GPT-2 over Banking77 texts, the final retrain and the test evaluation; a
// worker SIGKILLed mid-trial; a worker whose trial runs out of memory and goes on to the next.
#include <catch2/catch.hpp>

#include <fstream>
#include <regex>

#include "integration/cluster.h"

namespace hpsearch::testing {
namespace {

using namespace std::chrono_literals;

// Three Banking77 intents, five texts each (train), two test texts.
void WriteData(const std::filesystem::path& dir) {
  std::ofstream train(dir / "train.csv", std::ios::binary);
  train << "text,category\r\n"
           "I still have not received my new card,card_arrival\r\n"
           "When will my card arrive?,card_arrival\r\n"
           "How long does card delivery take?,card_arrival\r\n"
           "my card has not come yet,card_arrival\r\n"
           "Where is the card you sent me?,card_arrival\r\n"
           "Is there a fee for topping up?,top_up_fee\r\n"
           "How much does a top up cost,top_up_fee\r\n"
           "\"Why was I charged for topping up, by card?\",top_up_fee\r\n"
           "top-up fees?,top_up_fee\r\n"
           "what does it cost to add money,top_up_fee\r\n"
           "I want to change my PIN,change_pin\r\n"
           "How do I reset my pin code?,change_pin\r\n"
           "Can I pick a new PIN at an ATM?,change_pin\r\n"
           "change pin please,change_pin\r\n"
           "\"I forgot my PIN, can I set another one\",change_pin\r\n";
  std::ofstream test(dir / "test.csv", std::ios::binary);
  test << "text,category\r\nmy card is late,card_arrival\r\nnew pin,change_pin\r\n";
}

TEST_CASE("A QLoRA study runs on two workers, retrains the best trial exactly and tests it",
          "[integration][qlora]") {
  Cluster cluster;
  WriteData(cluster.dir().path());
  const std::string study = (cluster.dir() / "qlora.yaml").string();
  std::ofstream(study)
      << "name: qlora-e2e\n"
         "seed: 3\n"
         "model:\n"
         "  random_init: {n_layer: 1, n_embd: 64, n_head: 2, n_positions: 32}\n"
         "  tokenizer: "
      << (SourceDir() / "data/gpt2").string()
      << "\n"
         "data: {train_file: train.csv, test_file: test.csv, label_column: category,\n"
         "       max_length: 32, eval_batch_size: 4}\n"
         "training: {epochs: 2}\n"
         "fine_tune: {method: qlora, lora: {r: 4, target_modules: all-linear}}\n"
         "search_space:\n"
         "  learning_rate: {type: float, low: 1.0e-3, high: 5.0e-3, log: true}\n"
         "  batch_size: {choices: [2, 4]}\n"
         "budget: {n_trials: 2, parallelism: 2}\n"
         // A real retrain, which would otherwise run as reuse (final_stage_reuse_test.cc).
         "final_stage: {reuse_if_exact: false}\n";
  cluster.StartWorker("a");
  cluster.StartWorker("b");
  ProcessResult submit = RunProcess({(BinDir() / "hpsearch").string(), "submit", study,
                                     "--coordinator", cluster.address(), "--wait"});
  INFO(submit.err);
  REQUIRE(submit.exit_code == 0);
  REQUIRE(submit.err.find("study qlora-e2e: complete") != std::string::npos);

  CHECK(
      cluster.Query("SELECT COUNT(*) FROM trial_summary WHERE study_name = 'qlora-e2e' AND state = "
                    "'complete'") == "3");
  CHECK(cluster.Query("SELECT COUNT(*) FROM epoch_metrics WHERE kind = 'search'") == "4");
  // The final trial retrains the best search trial with its parameters and seed: the same epochs,
  // exactly.
  CHECK(
      cluster.Query("SELECT COUNT(*) FROM epoch_metrics f JOIN trial_summary t ON t.kind = 'final' "
                    "AND f.trial_number = t.trial_number JOIN epoch_metrics s ON s.kind = 'search' "
                    "AND s.trial_number = t.source_trial_number AND s.epoch = f.epoch "
                    "WHERE f.train_loss = s.train_loss AND f.val_loss = s.val_loss "
                    "AND f.val_accuracy = s.val_accuracy AND f.val_f1 = s.val_f1 "
                    "AND f.val_f1_macro = s.val_f1_macro AND f.step = s.step") == "2");
  CHECK(cluster.Query(
            "SELECT r.global_steps > 0 AND r.total_flos > 0 AND r.test_accuracy IS NOT NULL "
            "AND r.test_f1_macro IS NOT NULL AND r.test_samples_per_second > 0 "
            "FROM final_results r JOIN trials t USING (trial_id) WHERE t.kind = 'final'") == "1");
  CHECK(cluster.Query(
            "SELECT COUNT(*) FROM epoch_metrics WHERE val_loss IS NULL OR train_loss IS NULL") ==
        "0");
}

// Every 20th record of the real Banking77 training file (~500 texts over all 77 intents), whole
// single-line records only.
void WriteBanking77Subset(const std::filesystem::path& path) {
  std::ifstream in(SourceDir() / "data/banking77/train.csv", std::ios::binary);
  std::ofstream out(path, std::ios::binary);
  std::string line;
  std::getline(in, line);
  out << line << "\n";
  const std::regex record(R"(^[^"]*("[^"]*"[^"]*)*,[A-Za-z_]+\r?$)");
  for (int i = 0; std::getline(in, line); ++i) {
    if (i % 20 == 0 && std::regex_match(line, record)) out << line << "\n";
  }
}

std::string QloraStudy(const Cluster& cluster, const std::string& name, const std::string& extra,
                       const std::string& architecture = "", int n_embd = 64) {
  const std::string path = (cluster.dir() / (name + ".yaml")).string();
  std::ofstream(path) << "name: " << name
                      << "\nseed: 5\n"
                         "model:\n"
                         "  random_init: {n_layer: 1, n_embd: "
                      << n_embd << ", n_head: 2, n_positions: 64" << architecture
                      << "}\n"
                         "  tokenizer: "
                      << (SourceDir() / "data/gpt2").string()
                      << "\n"
                         "fine_tune: {method: qlora, lora: {r: 4, target_modules: all-linear}}\n"
                         "final_stage: {enabled: false}\n"
                      << extra;
  return path;
}

TEST_CASE("A worker SIGKILLed during a QLoRA trial: another re-runs it and the study completes",
          "[integration][qlora][faults]") {
  Cluster cluster;
  WriteBanking77Subset(cluster.dir() / "subset.csv");
  const std::string id =
      cluster.SubmitFile(QloraStudy(cluster, "qlora-kill",
                                    "data: {train_file: subset.csv, label_column: category, "
                                    "max_length: 48, eval_batch_size: 32}\n"
                                    "training: {epochs: 2, batch_size: 4, learning_rate: 2.0e-3}\n"
                                    "search_space:\n"
                                    "  weight_decay: {type: float, low: 0.0, high: 0.1}\n"
                                    "budget: {n_trials: 1, parallelism: 1, max_retries: 2}\n"));
  cluster.StartWorker("a");
  cluster.StartWorker("b");
  // Kill the worker running the trial once it is training (its first progress line), well before
  // its first epoch ends: no epoch checkpoint exists yet, so the re-run starts over.
  int victim_index = -1;
  auto give_up = std::chrono::steady_clock::now() + 120s;
  while (victim_index < 0 && std::chrono::steady_clock::now() < give_up) {
    for (int i = 0; i < 2; ++i) {
      if (cluster.worker_processes()[i]->Stderr().find("trial 0 | epoch 1/2 step 1/") !=
          std::string::npos) {
        victim_index = i;
      }
    }
    std::this_thread::sleep_for(10ms);
  }
  REQUIRE(victim_index >= 0);
  ChildProcess& victim = *cluster.worker_processes()[victim_index];
  victim.Kill(SIGKILL);
  REQUIRE(victim.Wait(10s) == 128 + SIGKILL);
  auto running = cluster.GetTrial(id, 0);
  REQUIRE(running.has_value());
  const std::string holder = running->worker_id();
  CHECK(running->epochs_size() == 0);  // killed mid-epoch

  const v1::StudyState end = cluster.WaitForEnd(id, 240s);
  auto trial = cluster.GetTrial(id, 0);
  REQUIRE(trial.has_value());
  INFO(cluster.GetStudy(id).state_reason()
       << "\n"
       << trial->error() << "\nworker a:\n"
       << cluster.worker_processes()[0]->Stderr() << "\nworker b:\n"
       << cluster.worker_processes()[1]->Stderr());
  REQUIRE(end == v1::STUDY_STATE_COMPLETE);
  CHECK(trial->state() == v1::TRIAL_STATE_COMPLETE);
  CHECK(trial->attempt() == 2);
  CHECK(trial->worker_id() != holder);
  REQUIRE(trial->epochs_size() >= 1);
  CHECK(trial->epochs(trial->epochs_size() - 1).epoch() == 2);
  // The killed attempt is kept as history, with why it ended.
  REQUIRE(trial->attempts_size() == 1);
  CHECK(trial->attempts(0).worker_id() == holder);
  CHECK(trial->attempts(0).error().find("lease expired") != std::string::npos);
  CHECK(cluster.Query("SELECT COUNT(*) FROM trial_attempts WHERE state = 'complete'") == "1");
  CHECK(cluster.Query("SELECT COUNT(*) FROM trials WHERE state = 'complete'") == "1");
  CHECK(cluster.Query("SELECT group_concat(attempt || ':' || epoch) FROM epoch_metrics") ==
        "2:1,2:2");
  // The survivor logged its progress (epoch lines at the default log level).
  const std::string survivor_log = cluster.worker_processes()[1 - victim_index]->Stderr();
  CHECK(survivor_log.find("trial 0 | epoch 1/2 step 1/") != std::string::npos);
  CHECK(survivor_log.find("trial 0 | epoch 2/2 done: train loss ") != std::string::npos);
}

TEST_CASE("A trial that runs out of memory fails as retryable and its worker takes the next trial",
          "[integration][qlora][faults]") {
  Cluster cluster;
  WriteData(cluster.dir().path());
  const std::string small_data =
      "data: {train_file: train.csv, label_column: category, max_length: 32, eval_batch_size: 4}\n"
      "training: {epochs: 1, batch_size: 4, learning_rate: 1.0e-3}\n"
      "search_space:\n"
      "  weight_decay: {type: float, low: 0.0, high: 0.1}\n";
  // A vocabulary of 16M x 2048 float embeddings (128 GB; within core/gpt2_config.h's shape limits)
  // cannot be allocated.
  const std::string oom_id = cluster.SubmitFile(QloraStudy(
      cluster, "oom", small_data + "budget: {n_trials: 1, parallelism: 1, max_retries: 1}\n",
      ", vocab_size: 16000000", 2048));
  const std::string ok_id = cluster.SubmitFile(
      QloraStudy(cluster, "after-oom",
                 small_data + "budget: {n_trials: 1, parallelism: 1, max_retries: 0}\n"));
  // One worker, its address space capped a few GiB above a worker's needs, so the allocation
  // fails whatever the machine's overcommit policy.
  ChildProcess& worker =
      cluster.StartWorker("only", {"/bin/bash", "-c", "ulimit -v 12000000 && exec \"$@\"", "bash"});

  REQUIRE(cluster.WaitForEnd(oom_id, 120s) == v1::STUDY_STATE_FAILED);
  REQUIRE(cluster.WaitForEnd(ok_id, 120s) == v1::STUDY_STATE_COMPLETE);
  auto failed = cluster.GetTrial(oom_id, 0);
  REQUIRE(failed.has_value());
  INFO(failed->error());
  CHECK(failed->state() == v1::TRIAL_STATE_FAILED);
  // Retryable: the coordinator gave it its second attempt; the message is kept for both.
  CHECK(failed->attempt() == 2);
  CHECK(failed->error().find("out of memory (retryable): ") != std::string::npos);
  CHECK(failed->error().find("can't allocate memory") != std::string::npos);
  CHECK(failed->error().find("no retry left") != std::string::npos);
  REQUIRE(failed->attempts_size() == 1);
  CHECK(failed->attempts(0).error().find("out of memory (retryable): ") != std::string::npos);
  // The same worker process then trained the other study's trial to the end.
  auto done = cluster.GetTrial(ok_id, 0);
  REQUIRE(done.has_value());
  CHECK(done->state() == v1::TRIAL_STATE_COMPLETE);
  CHECK(done->worker_id() == failed->worker_id());
  CHECK(done->epochs_size() == 1);
  CHECK(worker.running());
  CHECK(cluster.Query("SELECT COUNT(DISTINCT worker_id) FROM workers") == "1");
}

}  // namespace
}  // namespace hpsearch::testing
