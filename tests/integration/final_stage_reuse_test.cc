// The final stage's `reuse` through real processes: a coordinator, workers and the CLI. A built-in
// study's `retrain_on: train` runs as reuse (no epoch in the final trial) and scores on test
// exactly what a real retrain of the same study scores; a command study with `retrain_on: reuse`
// starts its command evaluate-only on the best trial's fetched files; the report says what the
// stage did.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "integration/cluster.h"

namespace hpsearch::testing {
namespace {

using namespace std::chrono_literals;

// Three Banking77 intents, five texts each, and four test texts.
void WriteReuseData(const std::filesystem::path& dir) {
  std::ofstream train(dir / "train.csv", std::ios::binary);
  train << "text,category\n"
           "I still have not received my new card,card_arrival\n"
           "When will my card arrive?,card_arrival\n"
           "How long does card delivery take?,card_arrival\n"
           "my card has not come yet,card_arrival\n"
           "Where is the card you sent me?,card_arrival\n"
           "Is there a fee for topping up?,top_up_fee\n"
           "How much does a top up cost,top_up_fee\n"
           "what is the charge for a top up,top_up_fee\n"
           "top-up fees?,top_up_fee\n"
           "what does it cost to add money,top_up_fee\n"
           "I want to change my PIN,change_pin\n"
           "How do I reset my pin code?,change_pin\n"
           "Can I pick a new PIN at an ATM?,change_pin\n"
           "change pin please,change_pin\n"
           "I forgot my PIN and want another one,change_pin\n";
  std::ofstream test(dir / "test.csv", std::ios::binary);
  test << "text,category\nmy card is late,card_arrival\nnew pin,change_pin\n"
          "top up fee,top_up_fee\nwhere is my card,card_arrival\n";
}

// A tiny built-in study; `final_stage` is its final_stage line.
std::string WriteBuiltInStudy(const Cluster& cluster, const std::string& name,
                              const std::string& final_stage) {
  const std::string path = (cluster.dir() / (name + ".yaml")).string();
  std::ofstream(path) << "name: " << name
                      << "\nseed: 3\n"
                         "model:\n"
                         "  random_init: {n_layer: 1, n_embd: 64, n_head: 2, n_positions: 32}\n"
                         "  tokenizer: "
                      << (SourceDir() / "data/gpt2").string()
                      << "\n"
                         "data: {train_file: train.csv, test_file: test.csv, label_column: "
                         "category,\n"
                         "       max_length: 32, eval_batch_size: 4}\n"
                         "training: {epochs: 2}\n"
                         "fine_tune: {method: qlora, lora: {r: 4, target_modules: all-linear}}\n"
                         "search_space:\n"
                         "  learning_rate: {type: float, low: 1.0e-3, high: 5.0e-3, log: true}\n"
                         "  batch_size: {choices: [2, 4]}\n"
                         "budget: {n_trials: 2, parallelism: 2}\n"
                      << final_stage;
  return path;
}

std::string ReportText(const Cluster& cluster, const std::string& study) {
  const std::string out = (cluster.dir() / ("report-" + study)).string();
  ProcessResult report = HpsearchCli({"report", study, "--db", cluster.db_path(), "-o", out});
  INFO(report.err);
  REQUIRE(report.exit_code == 0);
  return ReadFileBytes(std::filesystem::path(out) / "report.md");
}

// The final trial of a stored study, as a query's single value.
std::string FinalValue(Cluster& cluster, const std::string& study, const std::string& column) {
  const std::string sql = "SELECT " + column +
                          " FROM final_results r JOIN trials t USING (trial_id) JOIN studies s "
                          "USING (study_id) WHERE t.kind = 'final' AND s.name = '" +
                          study + "'";
  return cluster.Query(sql.c_str());
}

TEST_CASE(
    "A built-in study's final stage reuses the best trial's model: no epoch, and the test "
    "figures of a real retrain",
    "[integration][qlora][final_stage]") {
  Cluster cluster;
  WriteReuseData(cluster.dir().path());
  // The same study twice: one retrains for real, the other runs train as reuse.
  const std::string retrain = cluster.SubmitFile(
      WriteBuiltInStudy(cluster, "retrained", "final_stage: {reuse_if_exact: false}\n"));
  const std::string reuse = cluster.SubmitFile(WriteBuiltInStudy(cluster, "reused", ""));
  cluster.StartWorker("a");
  cluster.StartWorker("b");
  REQUIRE(cluster.WaitForEnd(retrain, 300s) == v1::STUDY_STATE_COMPLETE);
  REQUIRE(cluster.WaitForEnd(reuse, 300s) == v1::STUDY_STATE_COMPLETE);
  REQUIRE(WaitForStoredState(cluster, "retrained", "complete"));
  REQUIRE(WaitForStoredState(cluster, "reused", "complete"));

  const v1::Study study = cluster.GetStudy(reuse);
  REQUIRE(study.has_final_trial_number());
  INFO(study.state_reason());
  CHECK(study.state_reason().find("reuses trial " + std::to_string(study.best_trial_number()) +
                                  "'s stored model instead of retraining it") != std::string::npos);
  CHECK(cluster.GetStudy(retrain).best_trial_number() == study.best_trial_number());
  // The reused final trial trained nothing: no epoch, no train summary, yet test figures.
  CHECK(cluster.Query("SELECT COUNT(*) FROM epoch_metrics WHERE study_name = 'reused' AND kind = "
                      "'final'") == "0");
  CHECK(FinalValue(cluster, "reused", "global_steps") == "<null>");
  CHECK(FinalValue(cluster, "retrained", "global_steps") != "<null>");
  CHECK(cluster.Query("SELECT COUNT(*) FROM epoch_metrics WHERE study_name = 'retrained' AND "
                      "kind = 'final'") == "2");
  // The retrain repeats the best trial exactly, so its model scores what the stored one scores.
  const std::string accuracy = FinalValue(cluster, "reused", "test_accuracy");
  REQUIRE(accuracy != "<null>");
  CHECK(accuracy == FinalValue(cluster, "retrained", "test_accuracy"));
  CHECK(FinalValue(cluster, "reused", "test_loss") ==
        FinalValue(cluster, "retrained", "test_loss"));
  CHECK(FinalValue(cluster, "reused", "test_f1_macro") ==
        FinalValue(cluster, "retrained", "test_f1_macro"));
  // The final trial stores the model it evaluated, so export works as after a retrain.
  CHECK(cluster.Query("SELECT COUNT(*) FROM trial_artifacts WHERE study_name = 'reused' AND kind "
                      "= 'final'") != "0");

  const std::string report = ReportText(cluster, "reused");
  CHECK(report.find("final stage reused trial " + std::to_string(study.best_trial_number()) +
                    "'s model instead of retraining it: a retrain on the same data with the same "
                    "seed would repeat it exactly") != std::string::npos);
  CHECK(ReportText(cluster, "retrained").find("reused trial") == std::string::npos);
}

TEST_CASE(
    "A command study with retrain_on: reuse runs its command evaluate-only on the best "
    "trial's stored files",
    "[integration][final_stage]") {
  Cluster cluster;
  const std::string source = SourceDir().string();
  const std::string path = (cluster.dir() / "command-reuse.yaml").string();
  std::ofstream(path) << "name: command-reuse\nseed: 11\n"
                      << "data: {train_file: " << source
                      << "/data/banking77/train.csv, test_file: " << source
                      << "/data/banking77/test.csv}\n"
                      << "runner:\n  type: command\n  command: [/usr/bin/python3, " << source
                      << "/tests/data/control/fake_trial.py, --epochs, '2', --save_model]\n"
                      << "  supports_evaluate: true\n  kill_grace_seconds: 1\n"
                      << "search_space:\n  x: {type: float, low: 0.0, high: 1.0}\n"
                      << "objective: {metric: val_accuracy, direction: maximize}\n"
                      << "budget: {n_trials: 3, parallelism: 2}\n"
                      << "final_stage: {retrain_on: reuse}\n";
  const std::string id = cluster.SubmitFile(path);
  cluster.StartWorker("a");
  cluster.StartWorker("b");
  REQUIRE(cluster.WaitForEnd(id, 120s) == v1::STUDY_STATE_COMPLETE);
  const v1::Study study = cluster.GetStudy(id);
  REQUIRE(study.has_final_trial_number());
  const int best = study.best_trial_number();
  auto best_trial = cluster.GetTrial(id, best);
  auto final_trial = cluster.GetTrial(id, study.final_trial_number());
  REQUIRE(best_trial.has_value());
  REQUIRE(final_trial.has_value());
  INFO(final_trial->DebugString());
  // fake_trial.py in evaluate mode prints only a test line computed from the model.json the best
  // trial left; started as a final trial it would have printed epochs and a train summary.
  CHECK(final_trial->epochs_size() == 0);
  CHECK_FALSE(final_trial->result().has_train());
  const double x = best_trial->params(0).value().double_value();
  CHECK(final_trial->result().test().test_accuracy() == Approx(0.5 + x / 4).margin(1e-6));
  CHECK(final_trial->result().test().extra().at("model_trial") == best);
  CHECK(final_trial->source_trial_number() == best);
  // The fetched copy is gone once the command ended.
  for (const auto& entry : std::filesystem::recursive_directory_iterator(cluster.dir().path())) {
    INFO(entry.path().string());
    CHECK(entry.path().filename().string().find(".model-of-trial-") == std::string::npos);
  }
  REQUIRE(WaitForStoredState(cluster, "command-reuse", "complete"));
  CHECK(ReportText(cluster, "command-reuse")
            .find("reused trial " + std::to_string(best) +
                  "'s stored model without retraining it (`retrain_on: reuse`)") !=
        std::string::npos);
}

}  // namespace
}  // namespace hpsearch::testing
