#include "core/data_split.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/catch_torch.h"

#include "core/error.h"
#include "testing/subprocess.h"
#include "testing/testing.h"

namespace hpsearch::core {
namespace {

formats::LabelledDataset LoadBanking77Train() {
  formats::DataOptions options;
  options.label_column = "category";
  return formats::LoadLabelledDataset(testing::SourceDir() / "data" / "banking77" / "train.csv",
                                      options);
}

// FNV-1a over the indices: a compact fingerprint of a split for golden comparisons.
uint64_t Fingerprint(const std::vector<int64_t>& indices) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (int64_t index : indices) {
    for (int byte = 0; byte < 8; ++byte) {
      hash ^= static_cast<uint64_t>(index >> (8 * byte)) & 0xFF;
      hash *= 0x100000001b3ULL;
    }
  }
  return hash;
}

void RequirePartition(const DataSplit& split, int64_t n) {
  std::vector<int64_t> all = split.train;
  all.insert(all.end(), split.validation.begin(), split.validation.end());
  std::sort(all.begin(), all.end());
  REQUIRE(static_cast<int64_t>(all.size()) == n);
  for (int64_t i = 0; i < n; ++i) REQUIRE(all[static_cast<size_t>(i)] == i);
  REQUIRE(std::is_sorted(split.train.begin(), split.train.end()));
  REQUIRE(std::is_sorted(split.validation.begin(), split.validation.end()));
}

TEST_CASE("ValidationCount is ceil(fraction * n) and refuses empty parts", "[core][split]") {
  REQUIRE(ValidationCount(10003, 0.2) == 2001);
  REQUIRE(ValidationCount(10, 0.2) == 2);
  REQUIRE(ValidationCount(10, 0.25) == 3);
  REQUIRE(ValidationCount(3, 0.01) == 1);
  for (double bad : {0.0, 1.0, -0.1, 1.5, std::nan("")}) {
    REQUIRE_THROWS_AS(ValidationCount(100, bad), Error);
  }
  REQUIRE_THROWS_AS(ValidationCount(1, 0.5), Error);   // nothing left for train
  REQUIRE_THROWS_AS(ValidationCount(2, 0.99), Error);  // ceil(1.98) = 2 = n
}

TEST_CASE("Banking77 splits 8,002 / 2,001, stratified or not", "[core][split]") {
  const formats::LabelledDataset train = LoadBanking77Train();
  formats::DataOptions options;
  for (bool stratify : {true, false}) {
    options.stratify_split = stratify;
    const DataSplit split = SplitTrainValidation(train, options);
    REQUIRE(split.train.size() == 8002);
    REQUIRE(split.validation.size() == 2001);
    RequirePartition(split, train.size());
  }
}

TEST_CASE("Split is deterministic for a seed and changes with the seed", "[core][split]") {
  const formats::LabelledDataset train = LoadBanking77Train();
  for (bool stratify : {true, false}) {
    formats::DataOptions options;
    options.stratify_split = stratify;
    const DataSplit first = SplitTrainValidation(train, options);
    const DataSplit again = SplitTrainValidation(train, options);
    REQUIRE(first.validation == again.validation);
    options.split_seed = 43;
    const DataSplit other = SplitTrainValidation(train, options);
    REQUIRE(other.validation != first.validation);
    REQUIRE(other.validation.size() == first.validation.size());
  }
}

TEST_CASE("Split of Banking77 with seed 42 matches its recorded fingerprint", "[core][split]") {
  // Recorded from this implementation; SeededRng is specified to give the same numbers everywhere,
  // so a change here means the split (and every result that depends on it) changed.
  const formats::LabelledDataset train = LoadBanking77Train();
  formats::DataOptions options;
  const DataSplit stratified = SplitTrainValidation(train, options);
  options.stratify_split = false;
  const DataSplit plain = SplitTrainValidation(train, options);
  CHECK(Fingerprint(stratified.validation) == 0x9e0d11865bec55a5ULL);
  CHECK(Fingerprint(plain.validation) == 0x4c1bf2da7b5bca22ULL);
  CHECK(stratified.validation[0] == 6);
  CHECK(plain.validation[0] == 4);
}

TEST_CASE("Stratified split holds out each class in proportion", "[core][split]") {
  const formats::LabelledDataset train = LoadBanking77Train();
  formats::DataOptions options;
  options.split_seed = 7;
  const DataSplit split = SplitTrainValidation(train, options);
  const std::vector<int64_t> counts = train.ClassCounts();
  std::vector<int64_t> held_out(counts.size(), 0);
  for (int64_t index : split.validation)
    ++held_out[static_cast<size_t>(train.examples[index].label)];
  for (size_t c = 0; c < counts.size(); ++c) {
    const double quota = 2001.0 * static_cast<double>(counts[c]) / 10003.0;
    REQUIRE(std::abs(static_cast<double>(held_out[c]) - quota) < 1.0);
    REQUIRE(held_out[c] < counts[c]);
  }
  // The plain split drifts further from the proportions than one example per class.
  options.stratify_split = false;
  const DataSplit plain = SplitTrainValidation(train, options);
  std::vector<int64_t> plain_held_out(counts.size(), 0);
  for (int64_t index : plain.validation)
    ++plain_held_out[static_cast<size_t>(train.examples[index].label)];
  double worst = 0.0;
  for (size_t c = 0; c < counts.size(); ++c) {
    worst = std::max(worst, std::abs(static_cast<double>(plain_held_out[c]) -
                                     2001.0 * static_cast<double>(counts[c]) / 10003.0));
  }
  REQUIRE(worst > 1.0);
}

TEST_CASE("Stratified split keeps one training example of every class", "[core][split]") {
  // Class 0: 1 example, class 1: 2, class 2: 3, class 3: 14 -> 20 examples.
  std::vector<int64_t> labels = {0, 1, 1, 2, 2, 2};
  labels.insert(labels.end(), 14, 3);
  const DataSplit split = SplitTrainValidation(labels, 4, 0.5, true, 11);
  REQUIRE(split.validation.size() == 10);
  RequirePartition(split, 20);
  std::vector<int64_t> train_counts(4, 0);
  for (int64_t index : split.train) ++train_counts[static_cast<size_t>(labels[index])];
  for (int64_t count : train_counts) REQUIRE(count >= 1);
  REQUIRE(train_counts[0] == 1);

  // 0.9 * 20 = 18 held out would need the last example of some class: refused.
  REQUIRE_THROWS_WITH(SplitTrainValidation(labels, 4, 0.9, true, 11),
                      Catch::Matchers::Contains("without a training example"));
  // Not stratified, the same request is allowed.
  REQUIRE(SplitTrainValidation(labels, 4, 0.9, false, 11).validation.size() == 18);
  REQUIRE_THROWS_AS(SplitTrainValidation({0, 5}, 2, 0.5, true, 1), Error);
}

}  // namespace
}  // namespace hpsearch::core

namespace hpsearch::core {
namespace {

// bench/peer/tfidf_logreg_baseline.py re-implements the split (and the label order) in Python so
// that its baseline trains and tests on exactly a study's texts; it must agree with this code.
TEST_CASE("The TF-IDF baseline's Python split equals the core's, stratified or not",
          "[core][split][peer]") {
  if (!std::filesystem::exists("/usr/bin/python3")) testing::Skip("no /usr/bin/python3");
  testing::TempDir dir;
  const formats::LabelledDataset banking = LoadBanking77Train();
  for (bool stratify : {false, true}) {
    INFO("stratify " << stratify);
    const std::string study = (dir / "study.yaml").string();
    std::ofstream(study) << "name: peer\nseed: 7\ndata:\n  train_file: "
                         << (testing::SourceDir() / "data/banking77/train.csv").string()
                         << "\n  label_column: category\n  validation_fraction: 0.2\n"
                         << "  stratify: " << (stratify ? "true" : "false") << "\n";
    const std::string dump = (dir / "split.json").string();
    testing::ProcessResult run = testing::RunProcess(
        {"/usr/bin/python3",
         (testing::SourceDir() / "bench/peer/tfidf_logreg_baseline.py").string(), study,
         "--dump-split", dump});
    INFO(run.err);
    REQUIRE(run.exit_code == 0);
    std::ifstream in(dump);
    const nlohmann::json python = nlohmann::json::parse(in);
    formats::DataOptions options;
    options.validation_fraction = 0.2;
    options.stratify_split = stratify;
    options.split_seed = 7;
    const DataSplit split = SplitTrainValidation(banking, options);
    CHECK(python["labels"].get<std::vector<std::string>>() == banking.labels.names());
    CHECK(python["train"].get<std::vector<int64_t>>() == split.train);
    CHECK(python["validation"].get<std::vector<int64_t>>() == split.validation);
  }
}

}  // namespace
}  // namespace hpsearch::core
