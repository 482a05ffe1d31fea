// The study validator's look inside the files a study names: the data files' columns and labels and
// the checkpoint's config.json, read with the readers the training core itself uses (formats/), so
// that a study that validates does not fail every trial on a wrong column name. Only files that can
// be read here are checked; the others (on the workers' machines only) are reported as not checked.
#include <algorithm>
#include <fstream>
#include <map>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "formats/csv.h"
#include "formats/dataset.h"
#include "formats/error.h"
#include "formats/hf_config.h"
#include "formats/jsonl.h"
#include "server/study_file/study_view.h"
#include "server/study_file/validation_context.h"

namespace hpsearch::server::internal {
namespace {

namespace fs = std::filesystem;

constexpr char kNotChecked[] =
    "its columns and labels were not checked (the worker checks them when a trial loads it)";

formats::DataOptions DataOptionsOf(const v1::DataSpec& data) {
  formats::DataOptions options;
  options.format = data.format() == v1::DATA_FORMAT_CSV     ? formats::DataFormat::kCsv
                   : data.format() == v1::DATA_FORMAT_JSONL ? formats::DataFormat::kJson
                                                            : formats::DataFormat::kAuto;
  options.text_column = data.text_column();
  options.label_column = data.label_column();
  return options;
}

// The column names the reader sees in `path` (a CSV header, or the keys of the first JSON record)
// and the line they are on. Throws formats::Error as the readers do.
struct FoundColumns {
  std::vector<std::string> names;
  int64_t line = 1;
};

FoundColumns ReadColumns(const std::string& path, const formats::DataOptions& options) {
  FoundColumns found;
  if (formats::ResolveDataFormat(path, options.format) == formats::DataFormat::kCsv) {
    formats::CsvTable table = formats::ReadCsvFile(path);
    found.names = std::move(table.columns);
    found.line = table.header_line;
    return found;
  }
  std::vector<formats::JsonRecord> records = formats::ReadJsonRecordsFile(path);
  if (records.empty()) {
    formats::Fail(formats::ErrorCode::kDataLoss,
                  path + ": the file holds no examples; expected at least one record");
  }
  for (const auto& item : records.front().object.items()) found.names.push_back(item.key());
  found.line = records.front().line;
  return found;
}

// Errors under data.text_column / data.label_column when the file lacks either column; true when
// both are there.
bool CheckColumns(const std::string& field, const std::string& path,
                  const formats::DataOptions& options, ValidationContext* ctx) {
  const FoundColumns found = ReadColumns(path, options);
  const bool csv = formats::ResolveDataFormat(path, options.format) == formats::DataFormat::kCsv;
  bool ok = true;
  for (const auto& [column, key] : {std::pair{options.text_column, "data.text_column"},
                                    std::pair{options.label_column, "data.label_column"}}) {
    if (std::find(found.names.begin(), found.names.end(), column) != found.names.end()) continue;
    ok = false;
    ctx->Error(
        key, absl::StrCat(path, " line ", found.line, ": no ", csv ? "column" : "key", " '", column,
                          "'", csv ? "" : " in the first record", "; the ",
                          csv ? "columns are: " : "keys are: ", absl::StrJoin(found.names, ", "),
                          ". Fix: set ", key, " to one of them (", field, " names this file)"));
  }
  return ok;
}

// Whether `path` can be opened for reading here; says why not (as a warning) when it cannot.
bool Readable(const std::string& field, const std::string& path, ValidationContext* ctx) {
  if (!ctx->FileExists(path)) return false;  // RequireFile has reported it
  std::ifstream in(path, std::ios::binary);
  if (in) return true;
  ctx->Warning(field, "'" + path + "' cannot be read here: " + kNotChecked);
  return false;
}

// The labels of `path` that are not among `known`, each with the first line it is on.
std::map<std::string, int64_t> LabelsOutside(const formats::LabelledDataset& dataset,
                                             const formats::LabelSet& known) {
  std::map<std::string, int64_t> outside;
  for (const formats::LabelledExample& example : dataset.examples) {
    const std::string& name = dataset.labels.Name(example.label);
    if (known.Find(name) < 0) outside.emplace(name, example.line);
  }
  return outside;
}

}  // namespace

void CheckDataFiles(const v1::StudySpec& spec, ValidationContext* ctx) {
  const v1::DataSpec& data = spec.data();
  // With file checks off nothing is read (the CLI names what it did not check).
  if (!UsesBuiltInTrainer(spec) || data.train_file().empty() || !ctx->options().check_files) {
    return;
  }
  const std::vector<std::pair<std::string, std::string>> files = [&] {
    std::vector<std::pair<std::string, std::string>> all = {{"data.train_file", data.train_file()}};
    if (!data.validation_file().empty()) {
      all.emplace_back("data.validation_file", data.validation_file());
    }
    if (!data.test_file().empty()) all.emplace_back("data.test_file", data.test_file());
    return all;
  }();
  const formats::DataOptions options = DataOptionsOf(data);
  // The classes: the study's list when it gives one, else the training file's.
  std::optional<formats::LabelSet> classes;
  if (!data.labels().empty()) {
    classes.emplace(std::vector<std::string>(data.labels().begin(), data.labels().end()));
  }
  for (const auto& [field, path] : files) {
    if (!Readable(field, path, ctx)) continue;
    try {
      if (!CheckColumns(field, path, options, ctx)) continue;
      const bool train = field == "data.train_file";
      if (train && classes) {
        // The trial loads the training file against the study's list: an unknown label fails it.
        formats::LoadLabelledDataset(path, options, *classes);
        continue;
      }
      formats::LabelledDataset dataset = formats::LoadLabelledDataset(path, options);
      if (train) {
        classes = dataset.labels;
        continue;
      }
      if (!classes) continue;  // the training file could not be read here
      const std::map<std::string, int64_t> outside = LabelsOutside(dataset, *classes);
      if (outside.empty()) continue;
      std::vector<std::string> named;
      for (const auto& [name, line] : outside) {
        if (named.size() == 5) {
          named.push_back(absl::StrCat("and ", outside.size() - 5, " more"));
          break;
        }
        named.push_back(absl::StrCat("'", name, "' (line ", line, ")"));
      }
      ctx->Error(field,
                 absl::StrCat(path, ": ", outside.size() == 1 ? "a label" : "labels",
                              " that the training data does not have: ", absl::StrJoin(named, ", "),
                              data.labels().empty() ? "" : " (data.labels lists the classes)",
                              ". Every class of this file must be one of the ", classes->size(),
                              " training classes (case included)"));
    } catch (const formats::Error& e) {
      ctx->Error(field, e.what());
    }
  }
}

void CheckModelConfig(const v1::StudySpec& spec, ValidationContext* ctx) {
  if (!UsesBuiltInTrainer(spec) || !spec.model().has_path() || !ctx->options().check_files) return;
  const std::string config = (fs::path(spec.model().path()) / "config.json").string();
  if (!ctx->FileExists(config)) return;  // ValidateModel has said it is not there (yet)
  std::ifstream in(config, std::ios::binary);
  if (!in) {
    ctx->Warning("model.path",
                 "'" + config + "' cannot be read here: the checkpoint's config was not checked");
    return;
  }
  try {
    formats::LoadHfGpt2Config(config);
  } catch (const formats::Error& e) {
    ctx->Error("model.path", std::string(e.what()) +
                                 ": every trial would fail loading this checkpoint; fix or "
                                 "replace its config.json");
  }
}

}  // namespace hpsearch::server::internal
