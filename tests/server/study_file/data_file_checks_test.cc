// `hpsearch validate` looking inside the data files and the checkpoint's config.json, through the
// real binary on real files: wrong columns and labels are refused naming the file, the line and
// what it found; files it cannot read here are reported as not checked instead of failing.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "testing/subprocess.h"
#include "testing/testing.h"

namespace hpsearch {
namespace {

using testing::RunProcess;
using testing::TempDir;

void WriteDataFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

testing::ProcessResult RunValidate(const std::filesystem::path& study,
                                   const std::string& flag = "") {
  std::vector<std::string> args = {(testing::BinDir() / "hpsearch").string(), "validate"};
  if (!flag.empty()) args.push_back(flag);
  args.push_back(study.string());
  return RunProcess(args);
}

// A built-in study over train.csv / test.csv in `dir`; `data_extra` adds keys to `data`.
void WriteBuiltInStudy(const TempDir& dir, const std::string& data_extra,
                       const std::string& model = "model: {path: model}\n") {
  WriteDataFile(
      dir / "study.yaml",
      "name: t\n" + model + "data:\n  train_file: train.csv\n  test_file: test.csv\n" + data_extra);
}

TEST_CASE("validate refuses a label column the data file does not have", "[cli][validate][data]") {
  TempDir dir;
  WriteDataFile(dir / "train.csv", "text,category\nhello,a\nbye,b\n");
  WriteDataFile(dir / "test.csv", "text,category\nhi,a\n");
  WriteBuiltInStudy(dir, "  label_column: label\n");
  testing::ProcessResult result = RunValidate(dir / "study.yaml");
  INFO(result.err);
  REQUIRE(result.exit_code == 2);
  // Located at the key (line 6 of the study file), naming the data file, its line and columns.
  CHECK(result.err.find((dir / "study.yaml").string() + ":6:") != std::string::npos);
  CHECK(result.err.find("error: data.label_column: " + (dir / "train.csv").string() +
                        " line 1: no column 'label'; the columns are: text, category. Fix: set "
                        "data.label_column to one of them") != std::string::npos);
  CHECK(result.out.empty());
}

TEST_CASE("validate refuses a text key the JSON Lines records lack, naming the keys",
          "[cli][validate][data]") {
  TempDir dir;
  WriteDataFile(dir / "train.jsonl", "\n{\"sentence\": \"hello\", \"label\": 1}\n");
  WriteDataFile(dir / "study.yaml",
                "name: t\nmodel: {path: model}\ndata: {train_file: train.jsonl}\n"
                "final_stage: {enabled: false}\n");
  testing::ProcessResult result = RunValidate(dir / "study.yaml");
  INFO(result.err);
  REQUIRE(result.exit_code == 2);
  CHECK(result.err.find("error: data.text_column: " + (dir / "train.jsonl").string() +
                        " line 2: no key 'text' in the first record; the keys are: label, "
                        "sentence. Fix: set data.text_column") != std::string::npos);
}

TEST_CASE("validate refuses test labels the training data does not have, and accepts a subset",
          "[cli][validate][data]") {
  TempDir dir;
  WriteDataFile(dir / "train.csv", "text,label\nhello,a\nbye,b\nagain,c\n");
  WriteBuiltInStudy(dir, "");
  SECTION("a label outside the training classes") {
    WriteDataFile(dir / "test.csv", "text,label\nhi,a\nho,z\nhe,A\nyo,z\n");
    testing::ProcessResult result = RunValidate(dir / "study.yaml");
    INFO(result.err);
    REQUIRE(result.exit_code == 2);
    CHECK(result.err.find("error: data.test_file: " + (dir / "test.csv").string() +
                          ": labels that the training data does not have: 'A' (line 4), 'z' "
                          "(line 3)") != std::string::npos);
  }
  SECTION("a subset of the training classes") {
    WriteDataFile(dir / "test.csv", "text,label\nhi,a\nho,c\n");
    testing::ProcessResult result = RunValidate(dir / "study.yaml", "-q");
    INFO(result.err);
    CHECK(result.exit_code == 0);
    CHECK(result.err.find("error") == std::string::npos);
  }
  SECTION("a training label outside the study's own list of classes") {
    WriteDataFile(dir / "test.csv", "text,label\nhi,a\n");
    WriteBuiltInStudy(dir, "  labels: [a, b]\n");
    testing::ProcessResult result = RunValidate(dir / "study.yaml");
    INFO(result.err);
    REQUIRE(result.exit_code == 2);
    CHECK(result.err.find("error: data.train_file: " + (dir / "train.csv").string() +
                          ":4: unknown label \"c\"") != std::string::npos);
  }
  SECTION("an empty text, as the trial would refuse it") {
    WriteDataFile(dir / "test.csv", "text,label\n\"\",a\n");
    testing::ProcessResult result = RunValidate(dir / "study.yaml");
    INFO(result.err);
    REQUIRE(result.exit_code == 2);
    CHECK(result.err.find("error: data.test_file: " + (dir / "test.csv").string() +
                          ":2: empty text") != std::string::npos);
  }
}

TEST_CASE("validate says which files it did not read instead of failing on them",
          "[cli][validate][data]") {
  TempDir dir;
  // Files for another machine: with file checks off nothing is read, and each file is named as
  // not checked; the model folder that is not here is still only a warning.
  WriteDataFile(dir / "study.yaml",
                "name: t\nmodel: {path: /on/the/workers/model}\ndata:\n  train_file: "
                "/on/the/workers/train.csv\n  test_file: /on/the/workers/test.csv\n");
  testing::ProcessResult result = RunValidate(dir / "study.yaml", "--no-file-checks");
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  CHECK(result.err.find("note: --no-file-checks: not read here, so not checked: "
                        "'/on/the/workers/train.csv', '/on/the/workers/test.csv', "
                        "'/on/the/workers/model/config.json'") != std::string::npos);
  CHECK(result.err.find("warning: model.path") != std::string::npos);
}

TEST_CASE("validate reads the checkpoint's config.json with the core's reader",
          "[cli][validate][data]") {
  TempDir dir;
  WriteDataFile(dir / "train.csv", "text,label\nhello,a\nbye,b\n");
  WriteDataFile(dir / "test.csv", "text,label\nhi,a\n");
  std::filesystem::create_directories(dir / "model");
  WriteDataFile(dir / "model" / "vocab.json", "{}");
  WriteDataFile(dir / "model" / "merges.txt", "#version: 0.2\n");
  WriteBuiltInStudy(dir, "");
  SECTION("a config without n_head") {
    WriteDataFile(dir / "model" / "config.json",
                  R"({"n_layer": 2, "n_embd": 64, "n_positions": 128, "vocab_size": 100})");
    testing::ProcessResult result = RunValidate(dir / "study.yaml");
    INFO(result.err);
    REQUIRE(result.exit_code == 2);
    CHECK(result.err.find("error: model.path: " + (dir / "model" / "config.json").string() +
                          ": key \"n_head\"") != std::string::npos);
  }
  SECTION("a complete config") {
    WriteDataFile(
        dir / "model" / "config.json",
        R"({"n_layer": 2, "n_embd": 64, "n_head": 2, "n_positions": 128, "vocab_size": 100})");
    testing::ProcessResult result = RunValidate(dir / "study.yaml", "-q");
    INFO(result.err);
    CHECK(result.exit_code == 0);
  }
}

TEST_CASE("validate leaves a command study's data files to its command", "[cli][validate][data]") {
  TempDir dir;
  WriteDataFile(dir / "train.csv", "question,answer\nwhy,because\n");
  WriteDataFile(
      dir / "study.yaml",
      "name: t\ndata: {train_file: train.csv}\nrunner: {type: command, command: [/bin/true]}\n"
      "search_space:\n  x: {type: float, low: 0.0, high: 1.0}\nfinal_stage: {enabled: "
      "false}\n");
  testing::ProcessResult result = RunValidate(dir / "study.yaml", "-q");
  INFO(result.err);
  CHECK(result.exit_code == 0);
}

}  // namespace
}  // namespace hpsearch
