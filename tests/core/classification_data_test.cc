#include "core/classification_data.h"

#include <fstream>

#include "core/catch_torch.h"

#include "core/core_test_files.h"
#include "core/data_split.h"
#include "core/error.h"
#include "testing/testing.h"

namespace hpsearch::core {
namespace {

TEST_CASE("LoadClassificationData splits Banking77 train and loads its test set",
          "[core][dataset]") {
  DataFiles files;
  files.train = testing::Banking77File("train.csv");
  files.test = testing::Banking77File("test.csv");
  const ClassificationData data = LoadClassificationData(files, testing::Banking77Options());
  REQUIRE(data.validation_is_split);
  REQUIRE(data.train.size() == 8002);
  REQUIRE(data.validation.size() == 2001);
  REQUIRE(data.has_test());
  REQUIRE(data.test.size() == 3080);
  REQUIRE(data.labels.size() == 77);
  REQUIRE(data.validation.labels.names() == data.labels.names());
  // The validation examples are exactly the ones SplitTrainValidation picks.
  const formats::LabelledDataset full =
      formats::LoadLabelledDataset(files.train, testing::Banking77Options());
  const DataSplit split = SplitTrainValidation(full, testing::Banking77Options());
  for (size_t i = 0; i < split.validation.size(); i += 250) {
    REQUIRE(data.validation.examples[i].line == full.examples[split.validation[i]].line);
    REQUIRE(data.validation.examples[i].text == full.examples[split.validation[i]].text);
  }
}

TEST_CASE("LoadClassificationData uses a validation file and checks its labels",
          "[core][dataset]") {
  testing::TempDir dir;
  std::ofstream(dir / "train.csv") << "text,label\nx,b\ny,a\nz,a\n";
  std::ofstream(dir / "val.csv") << "text,label\nq,a\nr,c\n";
  DataFiles files;
  files.train = dir / "train.csv";
  files.validation = dir / "val.csv";
  REQUIRE_THROWS_WITH(LoadClassificationData(files, formats::DataOptions()),
                      Catch::Matchers::Contains("val.csv:3: unknown label \"c\""));
  std::ofstream(dir / "val.csv") << "text,label\nq,a\nr,b\n";
  const ClassificationData data = LoadClassificationData(files, formats::DataOptions());
  REQUIRE(!data.validation_is_split);
  REQUIRE(data.train.size() == 3);
  REQUIRE(data.validation.LabelIds() == std::vector<int64_t>{0, 1});
  REQUIRE(!data.has_test());
  REQUIRE_THROWS_AS(LoadClassificationData(DataFiles(), formats::DataOptions()), Error);
}

}  // namespace
}  // namespace hpsearch::core
