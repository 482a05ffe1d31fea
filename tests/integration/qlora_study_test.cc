// A real QLoRA study through real processes: the coordinator, two workers running the built-in
// trainer on a tiny random-init GPT-2 over Banking77 texts, the final retrain and the test
// evaluation.
#include <catch2/catch.hpp>

#include <fstream>

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
         "budget: {n_trials: 2, parallelism: 2}\n";
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
                    "AND f.val_accuracy = s.val_accuracy") == "2");
  CHECK(cluster.Query(
            "SELECT r.global_steps > 0 AND r.total_flos > 0 AND r.test_accuracy IS NOT NULL "
            "AND r.test_f1_macro IS NOT NULL AND r.test_samples_per_second > 0 "
            "FROM final_results r JOIN trials t USING (trial_id) WHERE t.kind = 'final'") == "1");
  CHECK(cluster.Query(
            "SELECT COUNT(*) FROM epoch_metrics WHERE val_loss IS NULL OR train_loss IS NULL") ==
        "0");
}

}  // namespace
}  // namespace hpsearch::testing
