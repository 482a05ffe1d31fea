// The study report over a real results database: the study, trials, attempts, epochs and final
// results are written through db::ResultsStore (as the coordinator writes them), then the report is
// read back through the read-only loader `hpsearch report --db` uses.
#include "server/report/study_report.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "db/results_store.h"
#include "testing/testing.h"
#include "testing/xml.h"

namespace hpsearch::server {
namespace {

using hpsearch::testing::TempDir;
using hpsearch::testing::XmlElement;
using hpsearch::testing::XmlReader;

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

v1::EpochMetrics Epoch(int epoch, double train_loss, std::optional<double> val_loss,
                       std::optional<double> accuracy, std::optional<double> f1) {
  v1::EpochMetrics e;
  e.set_epoch(epoch);
  e.set_train_loss(train_loss);
  if (val_loss) e.set_val_loss(*val_loss);
  if (accuracy) e.set_val_accuracy(*accuracy);
  if (f1) e.set_val_f1(*f1);
  e.set_step(100 * epoch);
  return e;
}

v1::ParamValue Double(double v) {
  v1::ParamValue p;
  p.set_double_value(v);
  return p;
}
v1::ParamValue Int(int64_t v) {
  v1::ParamValue p;
  p.set_int_value(v);
  return p;
}

// A study shaped like the seed's: a log learning rate, a categorical batch size, an int warmup;
// trials 0 (complete after a lost first attempt), 1 (complete), 2 (pruned after one epoch),
// 3 (failed, no epoch), 4 (complete, the best); final trial 5 retrains trial 4.
class SeedLikeDb {
 public:
  explicit SeedLikeDb(const std::string& path, v1::RetrainOn retrain_on = v1::RETRAIN_ON_TRAIN,
                      bool finished = true) {
    db::DatabaseOptions options;
    options.exclusive_lock = true;
    auto opened = db::ResultsStore::Open(path, options);
    REQUIRE(opened.ok());
    store_ = std::move(*opened);

    study_.set_id("st-0123456789abcdef");
    study_.set_state(finished ? v1::STUDY_STATE_COMPLETE : v1::STUDY_STATE_SEARCHING);
    study_.set_created_unix_ms(1700000000000);
    v1::StudySpec* spec = study_.mutable_spec();
    spec->set_name("seed-like");
    spec->set_seed(7);
    spec->mutable_model()->mutable_random_init()->set_n_layer(2);
    spec->mutable_model()->mutable_random_init()->set_n_embd(128);
    spec->mutable_model()->mutable_random_init()->set_n_head(2);
    spec->mutable_model()->mutable_random_init()->set_n_positions(128);
    spec->mutable_model()->set_tokenizer("/data/gpt2");
    spec->mutable_data()->set_train_file("/data/banking77/train.csv");
    spec->mutable_data()->set_test_file("/data/banking77/test.csv");
    spec->mutable_data()->set_validation_fraction(0.2);
    spec->mutable_data()->set_split_seed(7);
    spec->mutable_data()->set_stratify(false);
    spec->mutable_data()->set_label_column("category");
    spec->mutable_training()->set_max_grad_norm(1.0);
    spec->mutable_fine_tune()->set_method(v1::FINE_TUNE_METHOD_QLORA);
    spec->mutable_fine_tune()->mutable_lora()->set_r(8);
    spec->mutable_fine_tune()->mutable_lora()->add_target_modules("c_attn");
    auto* lr = spec->add_search_space();
    lr->set_name("learning_rate");
    lr->mutable_float_range()->set_low(1e-5);
    lr->mutable_float_range()->set_high(1e-3);
    lr->mutable_float_range()->set_log(true);
    auto* bs = spec->add_search_space();
    bs->set_name("batch_size");
    *bs->mutable_categorical()->add_choices() = Int(8);
    *bs->mutable_categorical()->add_choices() = Int(16);
    auto* warmup = spec->add_search_space();
    warmup->set_name("warmup_steps");
    warmup->mutable_int_range()->set_low(0);
    warmup->mutable_int_range()->set_high(400);
    spec->mutable_sampler()->set_type(v1::SAMPLER_TYPE_RANDOM);
    spec->mutable_pruner()->set_type(v1::PRUNER_TYPE_MEDIAN);
    spec->mutable_pruner()->set_n_startup_trials(2);
    spec->mutable_pruner()->set_n_warmup_epochs(0);
    spec->mutable_objective()->set_metric("val_accuracy");
    spec->mutable_objective()->set_direction(v1::DIRECTION_MAXIMIZE);
    spec->mutable_objective()->set_from_epoch(v1::EPOCH_SELECTION_LAST);
    spec->mutable_budget()->set_n_trials(5);
    spec->mutable_budget()->set_parallelism(2);
    spec->mutable_budget()->set_max_retries(2);
    spec->mutable_final_stage()->set_enabled(true);
    spec->mutable_final_stage()->set_retrain_on(retrain_on);
    REQUIRE(store_->PutStudy(study_).ok());

    const std::vector<v1::EpochMetrics> best_epochs = {Epoch(1, 0.5477, 0.5826, 0.8466, 0.8426),
                                                       Epoch(2, 0.2797, 0.3837, 0.9110, 0.9106)};
    // Trial 0: the first attempt's worker was killed after one epoch; the second completed.
    Search(0, 1.2454e-05, 16, 399, v1::TRIAL_STATE_COMPLETE, 2,
           {Epoch(1, 4.2668, 4.2282, 0.0380, 0.0254), Epoch(2, 3.9922, 3.8808, 0.1339, 0.1041)},
           {Epoch(1, 4.2668, 4.2282, 0.0380, 0.0254)});
    Search(1, 3.1661e-05, 16, 238, v1::TRIAL_STATE_COMPLETE, 1,
           {Epoch(1, 3.4718, 3.1212, 0.3063, 0.2715), Epoch(2, 1.6773, 1.2909, 0.7136, 0.7009)});
    Search(2, 8.0804e-05, 16, 182, v1::TRIAL_STATE_PRUNED, 1, {Epoch(1, 4.1, 4.0, 0.0500, 0.0300)});
    Search(3, 0.000434, 8, 219, v1::TRIAL_STATE_FAILED, 1, {});
    if (finished) {
      Search(4, 0.000462, 8, 389, v1::TRIAL_STATE_COMPLETE, 1, best_epochs);
      study_.set_best_trial_number(4);
      study_.set_best_objective_value(0.9110);
      study_.set_final_trial_number(5);
      study_.set_state_reason("trial 4 is the best: val_accuracy 0.911 (maximize, last epoch)");
      study_.set_ended_unix_ms(1700000123400);
      REQUIRE(store_->PutStudy(study_).ok());
      const bool on_validation = retrain_on == v1::RETRAIN_ON_TRAIN_VALIDATION;
      std::vector<v1::EpochMetrics> final_epochs = best_epochs;
      if (on_validation) {
        final_epochs = {Epoch(1, 0.5012, std::nullopt, std::nullopt, std::nullopt),
                        Epoch(2, 0.2600, std::nullopt, std::nullopt, std::nullopt)};
      }
      Final(5, 4, final_epochs, on_validation);
    } else {
      Search(4, 0.000462, 8, 389, v1::TRIAL_STATE_RUNNING, 1, {best_epochs[0]});
    }
    REQUIRE(store_->SyncAll().ok());
    store_.reset();  // the report reads the file, as `hpsearch report --db` does
  }

 private:
  v1::Trial NewTrial(int number, v1::TrialKind kind) {
    v1::Trial t;
    t.set_study_id(study_.id());
    t.set_number(number);
    t.set_kind(kind);
    t.set_state(v1::TRIAL_STATE_WAITING);
    t.set_attempt(1);
    t.set_seed(7 + number);
    t.set_source_trial_number(-1);
    t.set_created_unix_ms(1700000000000 + number);
    return t;
  }

  void Search(int number, double lr, int64_t batch, int64_t warmup, v1::TrialState state,
              int attempts, const std::vector<v1::EpochMetrics>& epochs,
              const std::vector<v1::EpochMetrics>& lost_epochs = {}) {
    v1::Trial t = NewTrial(number, v1::TRIAL_KIND_SEARCH);
    v1::ParamAssignment* p = t.add_params();
    p->set_name("learning_rate");
    *p->mutable_value() = Double(lr);
    p = t.add_params();
    p->set_name("batch_size");
    *p->mutable_value() = Int(batch);
    p = t.add_params();
    p->set_name("warmup_steps");
    *p->mutable_value() = Int(warmup);
    auto id = store_->InsertTrial(t);
    REQUIRE(id.ok());
    for (int a = 1; a <= attempts; ++a) {
      v1::TrialAttempt attempt;
      attempt.set_attempt(a);
      attempt.set_worker_id(a == attempts ? "wk-b" : "wk-a");
      attempt.set_started_unix_ms(1700000001000 + 1000 * number);
      const std::string lease = "ls-" + std::to_string(number) + "-" + std::to_string(a);
      const bool last = a == attempts;
      if (!last) {
        attempt.set_state(v1::TRIAL_STATE_FAILED);
        attempt.set_error("lease expired: worker wk-a sent no heartbeat for 2.0 s");
        attempt.set_ended_unix_ms(1700000002000 + 1000 * number);
      } else {
        attempt.set_state(state);
        if (state != v1::TRIAL_STATE_RUNNING) attempt.set_ended_unix_ms(1700000009000);
      }
      REQUIRE(store_->PutAttempt(*id, attempt, lease).ok());  // epochs refer to their attempt
      for (const v1::EpochMetrics& e : last ? epochs : lost_epochs) {
        REQUIRE(store_->InsertEpoch(*id, a, lease, e, 1).ok());
      }
    }
    t.set_state(state);
    t.set_attempt(attempts);
    t.set_worker_id("wk-b");
    t.set_started_unix_ms(1700000001000 + 1000 * number);
    if (state != v1::TRIAL_STATE_RUNNING) t.set_ended_unix_ms(1700000009000 + 1000 * number);
    if (state == v1::TRIAL_STATE_COMPLETE) t.set_objective_value(epochs.back().val_accuracy());
    if (state == v1::TRIAL_STATE_FAILED) {
      t.set_error("training core (invalid argument): data.max_length: 0 is not positive\ndetail");
    }
    REQUIRE(store_->UpdateTrial(*id, t, "", 0).ok());
    if (state == v1::TRIAL_STATE_COMPLETE || state == v1::TRIAL_STATE_PRUNED) {
      v1::TrialResult result;
      (*result.mutable_extra())["train_examples"] = 8002;
      (*result.mutable_extra())["validation_examples"] = 2001;
      (*result.mutable_extra())["num_labels"] = 77;
      REQUIRE(store_->PutResultExtra(*id, result).ok());
    }
  }

  void Final(int number, int source, const std::vector<v1::EpochMetrics>& epochs,
             bool on_validation) {
    v1::Trial t = NewTrial(number, v1::TRIAL_KIND_FINAL);
    t.set_seed(7 + source);
    t.set_source_trial_number(source);
    auto id = store_->InsertTrial(t);
    REQUIRE(id.ok());
    v1::TrialAttempt attempt;
    attempt.set_attempt(1);
    attempt.set_state(v1::TRIAL_STATE_COMPLETE);
    attempt.set_worker_id("wk-a");
    attempt.set_started_unix_ms(1700000100000);
    attempt.set_ended_unix_ms(1700000120000);
    REQUIRE(store_->PutAttempt(*id, attempt, "ls-final").ok());
    for (const v1::EpochMetrics& e : epochs) {
      REQUIRE(store_->InsertEpoch(*id, 1, "ls-final", e, 1).ok());
    }
    t.set_state(v1::TRIAL_STATE_COMPLETE);
    t.set_started_unix_ms(1700000100000);
    t.set_ended_unix_ms(1700000120000);
    REQUIRE(store_->UpdateTrial(*id, t, "", 0).ok());
    v1::TrainSummary train;
    train.set_global_steps(2002);
    train.set_train_loss(0.4137);
    train.set_runtime_seconds(18.25);
    train.set_samples_per_second(876.9);
    train.set_steps_per_second(109.7);
    train.set_total_flos(7.5417e12);
    train.set_epochs(2);
    REQUIRE(store_->PutTrainSummary(*id, train).ok());
    v1::TestMetrics test;
    test.set_test_loss(0.3129);
    test.set_test_accuracy(0.9351);
    test.set_test_f1(0.9350);
    test.set_test_f1_macro(0.9347);
    test.set_runtime_seconds(1.8);
    test.set_samples_per_second(1711.1);
    test.set_steps_per_second(26.7);
    REQUIRE(store_->PutTestMetrics(*id, test).ok());
    v1::TrialResult result;
    (*result.mutable_extra())["train_examples"] = on_validation ? 10003 : 8002;
    (*result.mutable_extra())["test_examples"] = 3080;
    REQUIRE(store_->PutResultExtra(*id, result).ok());
  }

  std::unique_ptr<db::ResultsStore> store_;
  v1::Study study_;
};

std::unique_ptr<XmlElement> ParseSvg(const std::filesystem::path& path) {
  XmlReader reader;
  std::unique_ptr<XmlElement> root = reader.Parse(ReadFile(path));
  INFO(path.string() << ": " << reader.error());
  REQUIRE(root != nullptr);
  CHECK(root->name == "svg");
  return root;
}

void CheckContains(const std::string& text, const std::vector<std::string>& needles) {
  for (const std::string& needle : needles) {
    INFO(needle);
    CHECK(text.find(needle) != std::string::npos);
  }
}

TEST_CASE("The report of a finished study has every section of the seed write-up and its pictures",
          "[server][report]") {
  TempDir dir;
  const std::string db_path = (dir.path() / "results.db").string();
  SeedLikeDb db(db_path);
  const std::filesystem::path out = dir.path() / "report";
  absl::StatusOr<std::string> written = WriteStudyReportFromDatabase(db_path, "seed-like", out);
  INFO(written.status().message());
  REQUIRE(written.ok());
  CHECK(*written == (out / "report.md").string());
  const std::string md = ReadFile(out / "report.md");
  INFO(md);

  CheckContains(
      md,
      {
          "# Study report: seed-like",
          "## Experimental Setup",
          "initialised at random (2 layers, 128 wide, 2 heads, 128 positions)",
          "- **Method**: QLoRA: frozen base linear weights stored in NF4",
          "r 8",
          "on c_attn",
          "learning_rate searched",
          "max_grad_norm 1",
          "Train file: `/data/banking77/train.csv` (10,003 examples)",
          "20% of the train file split off",
          "split seed 7",
          "not stratified",
          "Split sizes: 8,002 train / 2,001 validation / 3,080 test",
          "77 classes",
          "  | learning_rate | float | 1e-05 – 0.001 | log |",
          "  | batch_size | categorical | 8, 16 | — |",
          "  | warmup_steps | int | 0 – 400 | step 1 |",
          "- **Sampler**: random",
          "- **Pruner**: median (n_startup_trials 2, n_warmup_epochs 0)",
          "- **Objective**: maximize `val_accuracy` at each trial's last epoch",
          "- **Budget**: 5 search trials, 2 at a time, up to 2 retries per trial",
          "- **Seed**: 7; search trial k trains with seed 7 + k",
          "## Trial Results",
          "5 search trials were run: 3 complete, 1 pruned, 1 failed.",
          "![Optimisation history",
          "(optimization_history.svg)",
          "(learning_curves.svg)",
          // The seed's per-trial shape.
          "### Trial 0\n- **Parameters**:\n  - Learning Rate: 1.2454e-05\n  - Batch Size: 16\n"
          "  - Warmup Steps: 399\n",
          "  | Epoch | Training Loss | Validation Loss | Accuracy | F1 Score |\n",
          "  | 1 | 4.2668 | 4.2282 | 0.0380 | 0.0254 |\n  | 2 | 3.9922 | 3.8808 | 0.1339 | 0.1041 "
          "|",
          "- **Final Accuracy**: 0.1339",
          // The killed attempt is history, with its epoch count and why it ended.
          "- **Earlier attempts** (kept as history):\n  - attempt 1 on wk-a: failed after 1 epoch "
          "— "
          "lease expired: worker wk-a sent no heartbeat for 2.0 s",
          "- **State**: pruned",
          "- **Pruned** after epoch 1",
          "- **State**: failed",
          "- **Error**:\n  ```\n  training core (invalid argument): data.max_length: 0 is not "
          "positive\n  detail\n  ```\n",
          "![Trial 4 learning curves](trial_4_curves.svg)",
          "## Parameters vs Objective",
          "(param_learning_rate.svg)",
          "(param_batch_size.svg)",
          "(param_warmup_steps.svg)",
          "## Best Trial\nTrial 4.\n",
          "- **Best Accuracy**: 0.9110",
          "It has the highest `val_accuracy` (the objective is to maximize it, taking each trial's "
          "last epoch) among the 3 complete search trials; 1 pruned and 1 failed trials are not "
          "candidates.",
          "No other trial tied (a tie would go to the lowest trial number). The runner-up, trial "
          "1, "
          "reached 0.7136 (0.1974 lower).",
          "## Final Model Training",
          "with the best hyperparameters from Trial 4 and its seed 11 on train.",
          "confirming the reproducibility",
          "  - Global Steps: 2002\n  - Training Loss: 0.4137\n  - Train Runtime: 18.25 seconds\n"
          "  - Train Samples per Second: 876.900\n  - Train Steps per Second: 109.700\n"
          "  - Total FLOPs: 7.5417e+12\n  - Epochs: 2.0\n",
          "## Test Set Evaluation\nThe final model was evaluated on the test set (3080 texts)",
          "  - Evaluation Loss: 0.3129\n  - Evaluation Accuracy: 0.9351\n"
          "  - Evaluation F1 Score (weighted): 0.9350\n  - Evaluation F1 Score (macro): 0.9347\n"
          "  - Evaluation Runtime: 1.8000 seconds\n  - Samples per Second: 1711.1000\n"
          "  - Steps per Second: 26.7000\n",
          "validation accuracy 0.9110 (trial 4), test accuracy 0.9351 (+0.0241)",
          "## Summary",
      });
  // Trials appear in number order and the final trial only in its own section.
  CHECK(md.find("### Trial 0") < md.find("### Trial 4"));
  CHECK(md.find("### Trial 5") == std::string::npos);

  // Every picture report.md links exists and is well-formed SVG; no file is linked twice or left
  // unlinked.
  std::set<std::string> linked;
  std::smatch m;
  std::string rest = md;
  while (std::regex_search(rest, m, std::regex(R"(\]\(([^)]+\.svg)\))"))) {
    linked.insert(m[1]);
    rest = m.suffix();
  }
  std::set<std::string> on_disk;
  for (const auto& entry : std::filesystem::directory_iterator(out)) {
    if (entry.path().extension() == ".svg") on_disk.insert(entry.path().filename().string());
    CHECK(entry.path().filename().string().find(".tmp") == std::string::npos);
  }
  CHECK(linked == on_disk);
  // history, curves, 5 trials with epochs (0,1,2,4,5), 3 params, importance
  CHECK(on_disk.size() == 2 + 5 + 3 + 1);
  for (const std::string& name : on_disk) ParseSvg(out / name);

  // Optimisation history: three complete trials, the pruned one distinct, the failed one without a
  // value on the axis, the best as a diamond, and the best-so-far line.
  auto history = ParseSvg(out / "optimization_history.svg");
  CHECK(history->ByClass("complete").size() == 1 + 3);  // the series group + 3 points
  std::vector<const XmlElement*> pruned_points;
  for (const XmlElement* e : history->ByClass("pruned")) {
    if (e->HasClass("point")) pruned_points.push_back(e);
  }
  REQUIRE(pruned_points.size() == 1);
  CHECK(pruned_points[0]->ByName("title")[0]->text.find("trial 2 (pruned)") != std::string::npos);
  CHECK(!pruned_points[0]->ByName("path").empty());  // a triangle, not a circle
  std::vector<const XmlElement*> failed_points;
  for (const XmlElement* e : history->ByClass("failed")) {
    if (e->HasClass("point")) failed_points.push_back(e);
  }
  REQUIRE(failed_points.size() == 1);
  CHECK(failed_points[0]->ByName("title")[0]->text.find("val_accuracy none") != std::string::npos);
  REQUIRE(history->ByClass("best").size() == 2);  // series + one point
  CHECK(history->ByClass("best")[1]->ByName("title")[0]->text.find("trial 4") != std::string::npos);
  std::vector<const XmlElement*> best_line = history->ByClass("best-so-far");
  REQUIRE(best_line.size() == 2);  // series group + polyline
  CHECK(best_line[1]->name == "polyline");

  // Parameter plots: log axis for the log parameter, bands for the categorical one.
  auto lr = ParseSvg(out / "param_learning_rate.svg");
  CHECK(lr->ByClass("x-axis")[0]->AllText().find("(log scale)") != std::string::npos);
  auto bs = ParseSvg(out / "param_batch_size.svg");
  CHECK(bs->ByClass("band").size() == 2);
  auto warmup = ParseSvg(out / "param_warmup_steps.svg");
  CHECK(warmup->ByClass("band").empty());
  CHECK(warmup->ByClass("x-axis")[0]->AllText().find("(log scale)") == std::string::npos);
  // Issue 20: the log axis is labelled in short exponents, an int parameter in whole numbers.
  for (const XmlElement* label : lr->ByClass("x-axis")[0]->ByClass("tick-label")) {
    INFO(label->text);
    CHECK((label->text.find("e-") != std::string::npos || label->text.find("0.0") == 0));
    CHECK(label->text.find("0.000") == std::string::npos);
  }
  for (const XmlElement* label : warmup->ByClass("x-axis")[0]->ByClass("tick-label")) {
    INFO(label->text);
    CHECK(label->text.find('.') == std::string::npos);
  }

  // Parameter importance: a table of the three parameters, most important first, and its bars.
  const size_t importance_at = md.find("## Parameter Importance\n");
  REQUIRE(importance_at != std::string::npos);
  CHECK(importance_at < md.find("## Best Trial"));
  CHECK(md.find("fitted to the 3 complete search trials", importance_at) != std::string::npos);
  CHECK(md.find("| Parameter | Importance |", importance_at) != std::string::npos);
  std::vector<double> shares;
  for (const char* name : {"learning_rate", "batch_size", "warmup_steps"}) {
    INFO(name);
    std::smatch row;
    std::string section = md.substr(importance_at);
    REQUIRE(std::regex_search(section, row,
                              std::regex(std::string("\\| ") + name + " \\| ([0-9.]+) \\|")));
    shares.push_back(std::stod(row[1]));
  }
  CHECK(shares[0] + shares[1] + shares[2] == Approx(1.0).margin(0.001));
  CHECK(md.find("(importance.svg)", importance_at) != std::string::npos);
  auto importance = ParseSvg(out / "importance.svg");
  CHECK(importance->ByClass("bar").size() == 3);

  // A trial's own curves: accuracy and F1 on the left, both losses on the right.
  auto curves = ParseSvg(out / "trial_0_curves.svg");
  CHECK(curves->ByClass("y2-axis").size() == 1);
  for (const char* series : {"val_accuracy", "val_f1", "train_loss", "val_loss"}) {
    INFO(series);
    CHECK(curves->ByClass(series).size() == 1 + 1 + 2);  // group, polyline, 2 epochs
  }
  // ... and a legend group per axis that says so.
  REQUIRE(curves->ByClass("legend-y2").size() == 1);
  CHECK(curves->ByClass("legend-y")[0]->AllText().find("left axis: accuracy / F1") !=
        std::string::npos);
  CHECK(curves->ByClass("legend-y2")[0]->AllText().find("right axis: loss") != std::string::npos);
  CHECK(curves->ByClass("legend-y2")[0]->AllText().find("train_loss") != std::string::npos);
  CHECK(curves->ByClass("legend-y")[0]->AllText().find("train_loss") == std::string::npos);

  // The same database gives byte-identical files.
  const std::filesystem::path again = dir.path() / "again";
  REQUIRE(WriteStudyReportFromDatabase(db_path, "st-0123456789abcdef", again).ok());
  for (const std::string& name : on_disk) {
    INFO(name);
    CHECK(ReadFile(out / name) == ReadFile(again / name));
  }
  CHECK(ReadFile(out / "report.md") == ReadFile(again / "report.md"));
}

TEST_CASE("A retrain on train + validation explains its empty validation columns",
          "[server][report]") {
  TempDir dir;
  const std::string db_path = (dir.path() / "results.db").string();
  SeedLikeDb db(db_path, v1::RETRAIN_ON_TRAIN_VALIDATION);
  REQUIRE(WriteStudyReportFromDatabase(db_path, "seed-like", (dir.path() / "r").string()).ok());
  const std::string md = ReadFile(dir.path() / "r" / "report.md");
  INFO(md);
  CheckContains(md, {"on train + validation.",
                     "The validation columns are empty (—): the validation texts were part of "
                     "the training data",
                     "  | 1 | 0.5012 | — | — | — |\n  | 2 | 0.2600 | — | — | — |\n",
                     "the best search trial is retrained with its parameters and seed on train + "
                     "validation"});
  CHECK(md.find("confirming the reproducibility") == std::string::npos);
  // Its curves show the training loss alone.
  auto curves = ParseSvg(dir.path() / "r" / "trial_5_curves.svg");
  CHECK(curves->ByClass("train_loss").size() == 4);
  CHECK(curves->ByClass("val_accuracy").empty());
}

TEST_CASE("A report written mid-search names the best trial so far and marks running trials",
          "[server][report]") {
  TempDir dir;
  const std::string db_path = (dir.path() / "results.db").string();
  SeedLikeDb db(db_path, v1::RETRAIN_ON_TRAIN, /*finished=*/false);
  REQUIRE(WriteStudyReportFromDatabase(db_path, "seed-like", (dir.path() / "r").string()).ok());
  const std::string md = ReadFile(dir.path() / "r" / "report.md");
  INFO(md);
  CheckContains(md, {"The study is **searching**", "2 complete, 1 pruned, 1 failed, 1 unfinished",
                     "The search is still running; the best trial so far is trial 1.",
                     "- **State**: running"});
  CHECK(md.find("## Final Model Training") == std::string::npos);
  auto curves = ParseSvg(dir.path() / "r" / "learning_curves.svg");
  CHECK(curves->ByClass("running").size() >= 2);  // the unfinished trial 4, drawn dotted
}

TEST_CASE("A study without trials still gets a report and empty pictures", "[server][report]") {
  TempDir dir;
  v1::Study study;
  study.set_id("st-empty");
  study.mutable_spec()->set_name("empty");
  auto* x = study.mutable_spec()->add_search_space();
  x->set_name("x");
  x->mutable_float_range()->set_high(1);
  StudyReport report = BuildStudyReport(study, {});
  REQUIRE(WriteStudyReport(report, (dir.path() / "r").string()).ok());
  CHECK(report.markdown.find("No search trial completed") != std::string::npos);
  CHECK(report.markdown.find("## Parameter Importance\nNot computed: parameter importance needs at "
                             "least 2 complete search trials") != std::string::npos);
  REQUIRE(report.figures.size() == 3);  // history, learning curves, x
  for (const ReportFigure& f : report.figures) {
    auto root = ParseSvg(dir.path() / "r" / f.file_name);
    CHECK(root->ByClass("empty").size() == 1);
    CHECK(root->ByClass("point").empty());
  }
}

TEST_CASE("Ties go to the lowest trial number and the report says so", "[server][report]") {
  v1::Study study;
  study.set_id("st-tie");
  study.mutable_spec()->set_name("tie");
  study.set_state(v1::STUDY_STATE_COMPLETE);
  study.set_best_trial_number(1);
  study.set_best_objective_value(0.5);
  std::vector<v1::Trial> trials;
  for (int i = 0; i < 4; ++i) {
    v1::Trial t;
    t.set_number(i);
    t.set_kind(v1::TRIAL_KIND_SEARCH);
    t.set_state(v1::TRIAL_STATE_COMPLETE);
    const double value = i == 0 ? 0.25 : i == 2 ? 0.4 : 0.5;  // trials 1 and 3 tie
    t.set_objective_value(value);
    *t.add_epochs() = Epoch(1, 1.0, 1.0, value, value);
    trials.push_back(t);
  }
  const std::string md = RenderStudyReport(study, trials);
  INFO(md);
  CheckContains(md, {"## Best Trial\nTrial 1.",
                     "Trials 1, 3 tie at 0.5; a tie goes to the lowest "
                     "trial number.",
                     "The runner-up, trial 2, reached 0.4000 (0.1000 lower)."});
}

TEST_CASE("WriteStudyReport refuses a folder it cannot create and names it", "[server][report]") {
  TempDir dir;
  const std::filesystem::path blocker = dir.path() / "file";
  std::ofstream(blocker) << "not a folder";
  absl::StatusOr<std::string> written =
      WriteStudyReport(StudyReport{"# x\n", {}}, (blocker / "report").string());
  REQUIRE_FALSE(written.ok());
  CHECK(std::string(written.status().message()).find((blocker / "report").string()) !=
        std::string::npos);
  absl::StatusOr<std::string> missing =
      WriteStudyReportFromDatabase((dir.path() / "none.db").string(), "x", dir.path().string());
  CHECK_FALSE(missing.ok());
}

}  // namespace
}  // namespace hpsearch::server
