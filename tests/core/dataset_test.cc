#include "formats/dataset.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>
#include "core/catch_torch.h"

#include "core/core_test_files.h"
#include "core/error.h"
#include "core/error_matchers.h"
#include "testing/testing.h"

namespace hpsearch::core {
namespace {

using testing::CoreErrorMessage;

using Catch::Matchers::Contains;

std::filesystem::path WriteDataFile(const testing::TempDir& dir, const std::string& name,
                                    const std::string& contents) {
  const auto path = dir / name;
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

// id -> name from the committed TSV (header "id<TAB>name").
std::vector<std::string> HuggingFaceLabelOrder() {
  std::ifstream in(testing::SourceDir() / "tests" / "data" / "banking77" / "labels_hf_order.tsv");
  REQUIRE(in);
  std::string line;
  std::getline(in, line);
  REQUIRE(line == "id\tname");
  std::vector<std::string> names;
  while (std::getline(in, line)) {
    const size_t tab = line.find('\t');
    REQUIRE(std::stoll(line.substr(0, tab)) == static_cast<int64_t>(names.size()));
    names.push_back(line.substr(tab + 1));
  }
  return names;
}

TEST_CASE("Banking77 train loads 10,003 examples in 77 classes with Hugging Face ids",
          "[core][dataset]") {
  const formats::LabelledDataset train = formats::LoadLabelledDataset(
      testing::Banking77File("train.csv"), testing::Banking77Options());
  REQUIRE(train.size() == 10003);
  REQUIRE(train.labels.size() == 77);
  REQUIRE(train.labels.names() == HuggingFaceLabelOrder());
  REQUIRE(train.labels.Name(51) == "Refund_not_showing_up");
  REQUIRE(train.labels.Name(53) == "reverted_card_payment?");

  nlohmann::json categories;
  std::ifstream(testing::Banking77File("categories.json")) >> categories;
  std::set<std::string> category_set(categories.begin(), categories.end());
  REQUIRE(category_set ==
          std::set<std::string>(train.labels.names().begin(), train.labels.names().end()));

  const std::vector<int64_t> counts = train.ClassCounts();
  REQUIRE(*std::min_element(counts.begin(), counts.end()) == 35);
  REQUIRE(*std::max_element(counts.begin(), counts.end()) == 187);
  REQUIRE(train.examples.front().text == "I am still waiting on my card?");
  REQUIRE(train.labels.Name(train.examples.front().label) == "card_arrival");
  REQUIRE(train.examples.front().line == 2);
  REQUIRE(train.examples.back().line == 10017);
}

TEST_CASE("Banking77 train keeps the 10 texts with embedded newlines intact", "[core][dataset]") {
  const formats::LabelledDataset train = formats::LoadLabelledDataset(
      testing::Banking77File("train.csv"), testing::Banking77Options());
  // (index, starting line) of every record whose text holds a line feed, found with Python's csv
  // module.
  const std::vector<std::pair<int64_t, int64_t>> expected = {
      {1290, 1292}, {1710, 1716}, {1722, 1729}, {3116, 3124}, {4476, 4485},
      {4576, 4586}, {4595, 4606}, {6965, 6977}, {6984, 6997}, {7602, 7616}};
  std::vector<std::pair<int64_t, int64_t>> found;
  for (int64_t i = 0; i < train.size(); ++i) {
    const formats::LabelledExample& example = train.examples[static_cast<size_t>(i)];
    if (example.text.find('\n') != std::string::npos) found.emplace_back(i, example.line);
  }
  REQUIRE(found == expected);
  REQUIRE(train.examples[1290].text == "\nI can't seem to be able to use my card\n\n\n");
  REQUIRE(train.labels.Name(train.examples[1290].label) == "card_not_working");
  REQUIRE(
      train.examples[7602].text ==
      "I have an account at another bank, but I want to transfer some of the money to my account "
      "here.\n.");
}

TEST_CASE("Banking77 test loads 3,080 examples, 40 per class, with train's labels",
          "[core][dataset]") {
  const formats::LabelledDataset train = formats::LoadLabelledDataset(
      testing::Banking77File("train.csv"), testing::Banking77Options());
  const formats::LabelledDataset test = formats::LoadLabelledDataset(
      testing::Banking77File("test.csv"), testing::Banking77Options(), train.labels);
  REQUIRE(test.size() == 3080);
  REQUIRE(test.labels.names() == train.labels.names());
  const std::vector<int64_t> counts = test.ClassCounts();
  REQUIRE(std::all_of(counts.begin(), counts.end(), [](int64_t c) { return c == 40; }));
  // Loaded on its own, the test file derives the same ids.
  REQUIRE(
      formats::LoadLabelledDataset(testing::Banking77File("test.csv"), testing::Banking77Options())
          .labels.names() == train.labels.names());
}

TEST_CASE("SortLabelNames orders case-insensitively, then by bytes, and integers numerically",
          "[core][dataset]") {
  REQUIRE(formats::SortLabelNames({"beta", "Alpha", "alpha", "gamma", "Beta", "alpha"}) ==
          std::vector<std::string>{"Alpha", "alpha", "Beta", "beta", "gamma"});
  REQUIRE(formats::SortLabelNames({"10", "2", "0", "1", "2"}) ==
          std::vector<std::string>{"0", "1", "2", "10"});
  REQUIRE(formats::SortLabelNames({"10", "2", "02"}) == std::vector<std::string>{"02", "10", "2"});
  REQUIRE(formats::SortLabelNames({"_x", "a", "Z"}) == std::vector<std::string>{"_x", "a", "Z"});
}

TEST_CASE("LabelSet refuses duplicate and empty name lists", "[core][dataset]") {
  CoreErrorMessage([] { formats::LabelSet({"a", "b", "a"}); }, ErrorCode::kInvalidArgument);
  CoreErrorMessage([] { formats::LabelSet(std::vector<std::string>{}); },
                   ErrorCode::kInvalidArgument);
  const formats::LabelSet labels({"x", "y"});
  REQUIRE(labels.Find("y") == 1);
  REQUIRE(labels.Find("z") == -1);
}

TEST_CASE("LoadLabelledDataset rejects empty files", "[core][dataset]") {
  testing::TempDir dir;
  formats::DataOptions options;
  REQUIRE_THAT(
      CoreErrorMessage(
          [&] { formats::LoadLabelledDataset(WriteDataFile(dir, "zero.csv", ""), options); },
          ErrorCode::kDataLoss),
      Contains("zero.csv: empty CSV"));
  REQUIRE_THAT(CoreErrorMessage(
                   [&] {
                     formats::LoadLabelledDataset(
                         WriteDataFile(dir, "header.csv", "text,label\r\n"), options);
                   },
                   ErrorCode::kDataLoss),
               Contains("header.csv: the file holds no examples"));
  REQUIRE_THAT(
      CoreErrorMessage(
          [&] { formats::LoadLabelledDataset(WriteDataFile(dir, "blank.jsonl", "\n\n"), options); },
          ErrorCode::kDataLoss),
      Contains("blank.jsonl: the file holds no examples"));
}

TEST_CASE("LoadLabelledDataset names the columns that exist when one is missing",
          "[core][dataset]") {
  // Banking77's label column is "category", not the default "label".
  const std::string message = CoreErrorMessage(
      [] {
        formats::LoadLabelledDataset(testing::Banking77File("train.csv"), formats::DataOptions());
      },
      ErrorCode::kNotFound);
  REQUIRE_THAT(message, Contains("train.csv"));
  REQUIRE_THAT(message, Contains("no column \"label\""));
  REQUIRE_THAT(message, Contains("\"text\", \"category\""));

  testing::TempDir dir;
  const auto path =
      WriteDataFile(dir, "keys.jsonl",
                    "{\"text\": \"a\", \"label\": \"x\"}\n{\"txt\": \"b\", \"label\": \"y\"}\n");
  const std::string json_message = CoreErrorMessage(
      [&] { formats::LoadLabelledDataset(path, formats::DataOptions()); }, ErrorCode::kNotFound);
  REQUIRE_THAT(json_message, Contains("keys.jsonl:2: record has no key \"text\""));
  REQUIRE_THAT(json_message, Contains("\"label\", \"txt\""));
}

TEST_CASE("LoadLabelledDataset names file, line and label of an unknown label", "[core][dataset]") {
  const formats::LabelledDataset train = formats::LoadLabelledDataset(
      testing::Banking77File("train.csv"), testing::Banking77Options());
  testing::TempDir dir;
  const auto path = WriteDataFile(
      dir, "test.csv",
      "text,category\r\nwhere is my card?,card_arrival\r\n\"two\nlines\",card_arrival\r\n"
      "refund please,refund_not_showing_up\r\n");
  const std::string message = CoreErrorMessage(
      [&] { formats::LoadLabelledDataset(path, testing::Banking77Options(), train.labels); },
      ErrorCode::kInvalidArgument);
  REQUIRE_THAT(message, Contains("test.csv:5: unknown label \"refund_not_showing_up\""));
  // Without a given label set the same file is fine: its labels define the classes.
  REQUIRE(formats::LoadLabelledDataset(path, testing::Banking77Options()).labels.size() == 2);
}

TEST_CASE("LoadLabelledDataset rejects empty texts and labels with their line", "[core][dataset]") {
  testing::TempDir dir;
  REQUIRE_THAT(CoreErrorMessage(
                   [&] {
                     formats::LoadLabelledDataset(
                         WriteDataFile(dir, "t.csv", "text,label\nok,a\n\"\",b\n"),
                         formats::DataOptions());
                   },
                   ErrorCode::kDataLoss),
               Contains("t.csv:3: empty text"));
  REQUIRE_THAT(CoreErrorMessage(
                   [&] {
                     formats::LoadLabelledDataset(WriteDataFile(dir, "l.csv", "text,label\nok,\n"),
                                                  formats::DataOptions());
                   },
                   ErrorCode::kDataLoss),
               Contains("l.csv:2: empty label"));
}

TEST_CASE("LoadLabelledDataset reads JSON Lines with custom columns and integer labels",
          "[core][dataset]") {
  testing::TempDir dir;
  const auto path =
      WriteDataFile(dir, "d.JSONL",
                    "{\"sentence\": \"ten\", \"y\": 10}\n{\"sentence\": \"two\", \"y\": 2}\n"
                    "{\"sentence\": \"zero\", \"y\": \"0\", \"extra\": [1]}\n");
  formats::DataOptions options;
  options.text_column = "sentence";
  options.label_column = "y";
  const formats::LabelledDataset data = formats::LoadLabelledDataset(path, options);
  REQUIRE(data.labels.names() == std::vector<std::string>{"0", "2", "10"});
  REQUIRE(data.LabelIds() == std::vector<int64_t>{2, 1, 0});
  REQUIRE(data.examples[2].text == "zero");
  REQUIRE(data.examples[2].line == 3);

  const auto bad = WriteDataFile(dir, "bad.jsonl", "{\"sentence\": 5, \"y\": 1}\n");
  REQUIRE_THAT(CoreErrorMessage([&] { formats::LoadLabelledDataset(bad, options); },
                                ErrorCode::kInvalidArgument),
               Contains("bad.jsonl:1: \"sentence\" is number"));
}

TEST_CASE("ResolveDataFormat follows the extension unless forced", "[core][dataset]") {
  REQUIRE(formats::ResolveDataFormat("a/b.CSV", formats::DataFormat::kAuto) ==
          formats::DataFormat::kCsv);
  REQUIRE(formats::ResolveDataFormat("b.json", formats::DataFormat::kAuto) ==
          formats::DataFormat::kJson);
  REQUIRE(formats::ResolveDataFormat("b.txt", formats::DataFormat::kCsv) ==
          formats::DataFormat::kCsv);
  REQUIRE_THAT(
      CoreErrorMessage([] { formats::ResolveDataFormat("b.tsv", formats::DataFormat::kAuto); },
                       ErrorCode::kInvalidArgument),
      Contains("DataOptions::format"));
  testing::TempDir dir;
  formats::DataOptions options;
  options.format = formats::DataFormat::kCsv;
  REQUIRE(formats::LoadLabelledDataset(WriteDataFile(dir, "data.txt", "text,label\nx,y\n"), options)
              .size() == 1);
  REQUIRE_THAT(CoreErrorMessage([&] { formats::LoadLabelledDataset(dir / "absent.csv", options); },
                                ErrorCode::kNotFound),
               Contains("absent.csv"));
}

TEST_CASE("SelectExamples keeps order, labels and source", "[core][dataset]") {
  formats::LabelledDataset data;
  data.source = "s.csv";
  data.labels = formats::LabelSet({"a", "b"});
  data.examples = {{"x", 0, 2}, {"y", 1, 3}, {"z", 0, 4}};
  const formats::LabelledDataset subset = formats::SelectExamples(data, {2, 0});
  REQUIRE(subset.source == "s.csv");
  REQUIRE(subset.labels.names() == data.labels.names());
  REQUIRE(subset.examples[0].text == "z");
  REQUIRE(subset.examples[1].line == 2);
  CoreErrorMessage([&] { formats::SelectExamples(data, {3}); }, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace hpsearch::core
