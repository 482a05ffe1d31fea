// `hpsearch run` end to end through real processes: the embedded coordinator, two hpsearch-worker
// processes training a tiny random-init GPT-2 (LoRA) on a Banking77 subset, the final retrain and
// test, the uploaded adapter exported and re-run by `hpsearch-core predict` with the same logits,
// resume refused on a changed spec or data, and Ctrl-C leaving a database a rerun completes.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "integration/certificates.h"
#include "integration/cluster.h"

namespace hpsearch::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// `per_class` texts of each of five Banking77 intents (lines without quotes, so a plain split
// reads them), from the committed train or test file.
std::vector<std::pair<std::string, std::string>> Banking77Subset(const std::string& file,
                                                                 int per_class) {
  static const char* kClasses[] = {"card_arrival", "exchange_rate", "lost_or_stolen_card",
                                   "pin_blocked", "top_up_failed"};
  std::ifstream in(SourceDir() / "data" / "banking77" / file);
  std::map<std::string, int> taken;
  std::vector<std::pair<std::string, std::string>> rows;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const size_t comma = line.rfind(',');
    if (line.find('"') != std::string::npos || comma == std::string::npos) continue;
    const std::string text = line.substr(0, comma), label = line.substr(comma + 1);
    for (const char* c : kClasses) {
      if (label == c && taken[label] < per_class) {
        ++taken[label];
        rows.emplace_back(text, label);
      }
    }
  }
  return rows;
}

void WriteCsv(const fs::path& path, const std::vector<std::pair<std::string, std::string>>& rows) {
  std::ofstream out(path, std::ios::binary);
  out << "text,category\n";
  for (const auto& [text, label] : rows) out << text << "," << label << "\n";
}

std::string StudyYaml(const std::string& name, int n_trials, int epochs) {
  std::ostringstream yaml;
  yaml << "name: " << name << "\nseed: 5\n"
       << "model:\n  random_init: {n_layer: 1, n_embd: 32, n_head: 2, n_positions: 64}\n"
       << "  tokenizer: " << (SourceDir() / "data/gpt2").string() << "\n"
       << "data: {train_file: train.csv, test_file: test.csv, label_column: category,\n"
       << "       max_length: 32, eval_batch_size: 16}\n"
       << "training: {epochs: " << epochs << "}\n"
       << "fine_tune: {method: lora, lora: {r: 4, target_modules: all-linear}}\n"
       << "search_space:\n"
       << "  learning_rate: {type: float, low: 3.0e-3, high: 1.0e-2, log: true}\n"
       << "  batch_size: {choices: [4, 8]}\n"
       << "budget: {n_trials: " << n_trials << ", parallelism: 2}\n";
  return yaml.str();
}

std::string Query(const fs::path& db_path, const std::string& sql) {
  db::DatabaseOptions options;
  options.read_only = true;
  auto db = db::Database::Open(db_path.string(), options);
  REQUIRE(db.ok());
  auto stmt = (*db)->GetCachedStatement(sql.c_str());
  INFO(sql);
  REQUIRE(stmt.ok());
  auto row = (*stmt)->Step();
  REQUIRE(row.ok());
  if (!*row) return "<no row>";
  return (*stmt)->IsNull(0) ? "<null>" : (*stmt)->ColumnText(0);
}

// The same, while another process may still be creating the file: nullopt until it can answer.
std::optional<std::string> TryQuery(const fs::path& db_path, const char* sql) {
  if (!fs::exists(db_path)) return std::nullopt;
  db::DatabaseOptions options;
  options.read_only = true;
  auto db = db::Database::Open(db_path.string(), options);
  if (!db.ok()) return std::nullopt;
  auto stmt = (*db)->GetCachedStatement(sql);
  if (!stmt.ok()) return std::nullopt;
  auto row = (*stmt)->Step();
  if (!row.ok() || !*row) return std::nullopt;
  return (*stmt)->ColumnText(0);
}

std::vector<nlohmann::json> JsonLines(const std::string& text) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  }
  return lines;
}

TEST_CASE("hpsearch run runs a study with two local workers, and its adapter exports and predicts",
          "[integration][run]") {
  TempDir dir;
  WriteCsv(dir / "train.csv", Banking77Subset("train.csv", 16));
  const auto test_rows = Banking77Subset("test.csv", 8);
  WriteCsv(dir / "test.csv", test_rows);
  const fs::path study = dir / "study.yaml";
  std::ofstream(study) << StudyYaml("run-e2e", 2, 1);
  const fs::path db = dir / "out" / "results.db";

  ProcessResult run = HpsearchCli({"run", study.string(), "--workers", "2", "--db", db.string()});
  INFO(run.out << run.err);
  REQUIRE(run.exit_code == 0);
  // The coordinator's address comes first, in `hpsearch serve`'s shape.
  CHECK(run.out.rfind("hpsearch run: listening on 127.0.0.1:", 0) == 0);
  CHECK(run.out.find("== study run-e2e: complete") != std::string::npos);
  CHECK(run.out.find("best trial: ") != std::string::npos);
  CHECK(run.out.find("test: accuracy ") != std::string::npos);
  CHECK(fs::exists(dir / "out" / "run-e2e-report" / "report.md"));
  CHECK(fs::exists(dir / "out" / "run-e2e-logs" / "run-1.log"));

  // Trials and epochs in the database; the two workers both ran trials.
  CHECK(Query(db, "SELECT COUNT(*) FROM trial_summary WHERE state = 'complete'") == "3");
  CHECK(Query(db, "SELECT COUNT(*) FROM epoch_metrics WHERE kind = 'search'") == "2");
  // retrain_on: train would repeat the best trial exactly: the final trial reused its stored model
  // (no epoch) and only evaluated it, so the test figures below are the best trial's model's.
  CHECK(Query(db, "SELECT COUNT(*) FROM epoch_metrics WHERE kind = 'final'") == "0");
  CHECK(Query(db,
              "SELECT COUNT(*) FROM final_results r JOIN trials t USING (trial_id) WHERE "
              "t.kind = 'final' AND r.global_steps IS NULL") == "1");
  CHECK(Query(db, "SELECT COUNT(*) FROM workers") == "2");
  const std::string test_accuracy =
      Query(db,
            "SELECT r.test_accuracy FROM final_results r JOIN trials t USING (trial_id) "
            "WHERE t.kind = 'final'");
  REQUIRE(test_accuracy != "<null>");
  // Every completed trial uploaded its adapter and metrics.
  CHECK(Query(db, "SELECT COUNT(*) FROM artifacts") == "3");
  CHECK(Query(db, "SELECT COUNT(*) FROM artifact_files WHERE name = 'metrics.json'") == "3");

  // The final trial's adapter, exported from the database alone.
  const fs::path exported = dir / "adapter";
  ProcessResult export_run =
      HpsearchCli({"export", "run-e2e", "--db", db.string(), "-o", exported.string()});
  INFO(export_run.err);
  REQUIRE(export_run.exit_code == 0);
  for (const char* file :
       {"adapter_config.json", "adapter_model.safetensors", "hpsearch_model.json", "metrics.json",
        "vocab.json", "merges.txt", "README.md"}) {
    INFO(file);
    CHECK(fs::exists(exported / file));
  }
  std::ifstream readme_in(exported / "README.md");
  const std::string readme((std::istreambuf_iterator<char>(readme_in)), {});
  CHECK(readme.find("hpsearch-core predict --adapter") != std::string::npos);
  CHECK(readme.find("Learning Rate") != std::string::npos);
  // Exporting into a folder that holds files is refused, nothing touched.
  CHECK(
      HpsearchCli({"export", "run-e2e", "--db", db.string(), "-o", exported.string()}).exit_code ==
      2);

  // The exported adapter gives the logits the trial's own saved model gives, and its predictions
  // on the test texts score the test accuracy the trial reported.
  std::ofstream texts(dir / "texts.jsonl");
  for (const auto& [text, label] : test_rows)
    texts << nlohmann::json{{"text", text}}.dump() << "\n";
  texts.close();
  const std::string final_number = Query(db, "SELECT number FROM trials WHERE kind = 'final'");
  char leaf[32];
  std::snprintf(leaf, sizeof(leaf), "final-%04d", std::stoi(final_number));
  // The worker deleted its own copy once the coordinator had stored the upload; the stored one is
  // the trial's model.
  CHECK_FALSE(fs::exists(dir / "out" / "artifacts" / "run-e2e" / leaf / "model"));
  fs::path trained = Query(db,
                           "SELECT a.dir FROM artifacts a JOIN trials t ON t.trial_id = a.trial_id "
                           "WHERE t.kind = 'final'");
  if (trained.is_relative()) trained = db.parent_path() / trained;
  REQUIRE(fs::exists(trained / "adapter_model.safetensors"));
  auto predict = [&](const fs::path& adapter) {
    ProcessResult result = RunProcess(
        {(BinDir() / "hpsearch-core").string(), "predict", "--adapter", adapter.string(), "--input",
         (dir / "texts.jsonl").string(), "--max-length", "32", "--batch-size", "16", "--logits"});
    INFO(result.err);
    REQUIRE(result.exit_code == 0);
    return JsonLines(result.out);
  };
  const std::vector<nlohmann::json> from_export = predict(exported);
  const std::vector<nlohmann::json> from_trial = predict(trained);
  REQUIRE(from_export.size() == test_rows.size());
  REQUIRE(from_trial.size() == test_rows.size());
  int correct = 0;
  for (size_t i = 0; i < test_rows.size(); ++i) {
    CHECK(from_export[i]["logits"] == from_trial[i]["logits"]);
    correct += from_export[i]["label"] == test_rows[i].second ? 1 : 0;
  }
  CHECK(static_cast<double>(correct) / static_cast<double>(test_rows.size()) ==
        Approx(std::stod(test_accuracy)).margin(1e-12));

  // The same database resumes only the same study on the same data.
  ProcessResult again = HpsearchCli({"run", study.string(), "--workers", "2", "--db", db.string()});
  INFO(again.err);
  CHECK(again.exit_code == 0);
  CHECK(again.out.find("== resuming study run-e2e") != std::string::npos);
  // --n-trials extends the finished study: its trials stay, one more search trial runs, and the
  // final stage runs again on the best.
  ProcessResult grown = HpsearchCli(
      {"run", study.string(), "--workers", "2", "--db", db.string(), "--n-trials", "3"});
  INFO(grown.out << grown.err);
  CHECK(grown.exit_code == 0);
  CHECK(grown.out.find("== resuming study run-e2e") != std::string::npos);
  CHECK(grown.out.find("== study run-e2e: complete") != std::string::npos);
  CHECK(Query(db, "SELECT COUNT(*) FROM trials WHERE kind = 'search'") == "3");
  CHECK(Query(db, "SELECT COUNT(*) FROM trials WHERE kind = 'final' AND state = 'complete'") ==
        "2");
  // Without --n-trials a different budget is a changed spec.
  const fs::path changed = dir / "changed.yaml";
  std::ofstream(changed) << StudyYaml("run-e2e", 4, 1);
  ProcessResult changed_spec =
      HpsearchCli({"run", changed.string(), "--workers", "2", "--db", db.string()});
  CHECK(changed_spec.exit_code == 2);
  CHECK(changed_spec.err.find("differs from this submission in spec") != std::string::npos);
  std::ofstream(dir / "test.csv", std::ios::app) << "where is my card,card_arrival\n";
  ProcessResult changed_data =
      HpsearchCli({"run", study.string(), "--workers", "2", "--db", db.string()});
  INFO(changed_data.err);
  CHECK(changed_data.exit_code == 2);
  CHECK(changed_data.err.find("test.csv") != std::string::npos);
  CHECK(changed_data.err.find("sha256") != std::string::npos);
  CHECK(Query(db, "SELECT COUNT(*) FROM studies") == "1");
}

TEST_CASE("hpsearch run on a GPU with a worker that cannot train there stops at once, saying why",
          "[integration][run][devices]") {
  // What each build's worker registers with: the CPU always trains; a GPU only with CUDA LibTorch.
  ProcessResult cpu =
      RunProcess({(BinDir() / "hpsearch-worker").string(), "--device", "cpu", "--print-runners"});
  CHECK(cpu.exit_code == 0);
  CHECK(cpu.out == "command qlora\n");
  ProcessResult gpu = RunProcess(
      {(BinDir() / "hpsearch-worker").string(), "--device", "cuda:0", "--print-runners"});
  CHECK(gpu.exit_code == 0);
#ifndef HPSEARCH_TEST_TORCH_CUDA
  CHECK(gpu.out == "command\n");
  // Its workers would never be leased the study's built-in trials: refused before any starts.
  TempDir dir;
  WriteCsv(dir / "train.csv", Banking77Subset("train.csv", 4));
  WriteCsv(dir / "test.csv", Banking77Subset("test.csv", 2));
  const fs::path study = dir / "study.yaml";
  std::ofstream(study) << StudyYaml("run-no-cuda", 1, 1);
  const fs::path db = dir / "results.db";
  ProcessResult run =
      HpsearchCli({"run", study.string(), "--devices", "cuda:0", "--db", db.string()});
  INFO(run.out << run.err);
  CHECK(run.exit_code == 2);
  CHECK(run.err.find("was built without a CUDA LibTorch: it runs no built-in (qlora) trial on "
                     "cuda:0") != std::string::npos);
  CHECK_FALSE(fs::exists(db));  // refused before anything was written
#else
  CHECK(gpu.out == "command qlora\n");
#endif
}

TEST_CASE("Ctrl-C stops hpsearch run cleanly and a rerun resumes from the checkpoints",
          "[integration][run]") {
  TempDir dir;
  // Six epochs of 400 texts: a trial interrupted after its first epoch has several to go.
  WriteCsv(dir / "train.csv", Banking77Subset("train.csv", 80));
  WriteCsv(dir / "test.csv", Banking77Subset("test.csv", 4));
  const fs::path study = dir / "study.yaml";
  std::ofstream(study) << StudyYaml("run-sigint", 2, 6);
  const fs::path db = dir / "results.db";
  const std::vector<std::string> argv = {(BinDir() / "hpsearch").string(),
                                         "run",
                                         study.string(),
                                         "--workers",
                                         "2",
                                         "--db",
                                         db.string()};
  {
    ChildProcess run(argv, (dir / "first").string());
    // Interrupt once a trial has finished an epoch (so it has a checkpoint) and is training on.
    bool epoch_seen = false;
    for (int i = 0; i < 2400 && !epoch_seen && run.running(); ++i) {
      std::this_thread::sleep_for(25ms);
      epoch_seen = TryQuery(db, "SELECT COUNT(*) FROM epochs").value_or("0") != "0";
    }
    REQUIRE(epoch_seen);
    run.Kill(SIGINT);
    const int exit_code = run.Wait(90s);
    INFO(run.Stdout() << run.Stderr());
    REQUIRE(exit_code == 130);
    CHECK(run.Stderr().find("Resume it with:") != std::string::npos);
  }
  // Consistent: no trial left running, every interrupted attempt ended with its reason.
  CHECK(Query(db, "SELECT COUNT(*) FROM trials WHERE state = 'running'") == "0");
  CHECK(Query(db, "SELECT COUNT(*) FROM trial_attempts WHERE ended_ms IS NULL") == "0");
  CHECK(Query(db, "SELECT COUNT(*) FROM trial_attempts WHERE error LIKE '%SIGTERM%'") != "0");
  // Recorded as a stop by the user, never as a lost worker; it costs the trial none of its retries.
  CHECK(Query(db,
              "SELECT COUNT(*) FROM trial_attempts WHERE stopped = 1 AND error LIKE "
              "'stopped by the user%'") != "0");
  CHECK(Query(db, "SELECT COUNT(*) FROM trial_attempts WHERE stopped = 0 AND state = 'failed'") ==
        "0");
  CHECK(Query(db, "SELECT COUNT(*) FROM trial_attempts WHERE error LIKE '%died or lost%'") == "0");
  CHECK(Query(db, "SELECT COUNT(*) FROM events WHERE kind = 'trial_stopped'") != "0");

  ProcessResult rerun = RunProcess(argv);
  INFO(rerun.out << rerun.err);
  REQUIRE(rerun.exit_code == 0);
  CHECK(rerun.out.find("== resuming study run-sigint") != std::string::npos);
  CHECK(Query(db, "SELECT state FROM studies") == "complete");
  // The interrupted trial resumed from its checkpoint: the event says so, and its new attempt
  // re-reported the restored epoch 1 exactly as the first attempt measured it.
  CHECK(Query(db, "SELECT COUNT(*) FROM events WHERE kind = 'resumed_from_checkpoint'") != "0");
  CHECK(Query(db,
              "SELECT COUNT(*) FROM epochs a JOIN epochs b ON a.trial_id = b.trial_id AND "
              "a.epoch = b.epoch AND b.attempt = a.attempt + 1 WHERE a.epoch = 1 AND "
              "a.val_loss = b.val_loss AND a.train_loss = b.train_loss") != "0");
  CHECK(Query(db,
              "SELECT COUNT(*) FROM artifacts a JOIN trials t USING (trial_id) WHERE "
              "t.kind = 'final'") == "1");
}

TEST_CASE("hpsearch run serves its dashboard beyond loopback only with a token and TLS",
          "[integration][run][dashboard]") {
  TempDir dir;
  WriteCsv(dir / "train.csv", Banking77Subset("train.csv", 8));
  WriteCsv(dir / "test.csv", Banking77Subset("test.csv", 2));
  const fs::path study = dir / "study.yaml";
  std::ofstream(study) << StudyYaml("run-dashboard", 1, 1);
  const fs::path db = dir / "results.db";
  const std::vector<std::string> base = {(BinDir() / "hpsearch").string(),
                                         "run",
                                         study.string(),
                                         "--workers",
                                         "1",
                                         "--db",
                                         db.string(),
                                         "--dashboard-listen",
                                         "0.0.0.0:0"};
  // Without them it is refused before the database exists.
  ProcessResult refused = RunProcess(base);
  INFO(refused.out << refused.err);
  CHECK(refused.exit_code == 2);
  CHECK(refused.err.find("--dashboard-auth-token-file") != std::string::npos);
  CHECK_FALSE(fs::exists(db));

  // With the token and a certificate it serves HTTPS and the study runs.
  const TestCertificates certs = MakeCertificates(dir);
  const fs::path token = dir / "token";
  std::ofstream(token) << "a-long-enough-dashboard-token-0123456789\n";
  fs::permissions(token, fs::perms::owner_read | fs::perms::owner_write);
  std::vector<std::string> argv = base;
  for (const std::string& arg : {std::string("--dashboard-auth-token-file"), token.string(),
                                 std::string("--dashboard-tls-cert"), certs.cert,
                                 std::string("--dashboard-tls-key"), certs.key}) {
    argv.push_back(arg);
  }
  ProcessResult served = RunProcess(argv);
  INFO(served.out << served.err);
  REQUIRE(served.exit_code == 0);
  CHECK(served.out.find("dashboard: https://") != std::string::npos);
}

}  // namespace
}  // namespace hpsearch::testing
