#include "formats/dataset.h"

#include <algorithm>

#include "formats/csv.h"
#include "formats/error.h"
#include "formats/jsonl.h"

namespace hpsearch::formats {
namespace {

// One record's text and label name before label ids are known.
struct RawExample {
  std::string text;
  std::string label_name;
  int64_t line = 0;
};

std::string At(const std::string& source, int64_t line) {
  return source + ":" + std::to_string(line) + ": ";
}

std::vector<RawExample> ReadCsvExamples(const std::filesystem::path& path,
                                        const DataOptions& options) {
  CsvTable table = ReadCsvFile(path);
  const size_t text_index = table.ColumnIndex(options.text_column);
  const size_t label_index = table.ColumnIndex(options.label_column);
  std::vector<RawExample> raw;
  raw.reserve(table.records.size());
  for (CsvRecord& record : table.records) {
    raw.push_back(RawExample{std::move(record.fields[text_index]),
                             std::move(record.fields[label_index]), record.line});
  }
  return raw;
}

std::vector<std::string> KeysOf(const nlohmann::json& object) {
  std::vector<std::string> keys;
  for (const auto& item : object.items()) keys.push_back(item.key());
  return keys;
}

const nlohmann::json& Field(const JsonRecord& record, const std::string& key,
                            const std::string& source) {
  auto it = record.object.find(key);
  if (it == record.object.end()) {
    Fail(ErrorCode::kNotFound, At(source, record.line) + "record has no key \"" + key +
                                   "\"; its keys are " + JoinNames(KeysOf(record.object)) +
                                   " (set the column name in the data options)");
  }
  return *it;
}

std::vector<RawExample> ReadJsonExamples(const std::filesystem::path& path,
                                         const DataOptions& options) {
  const std::string source = path.string();
  std::vector<JsonRecord> records = ReadJsonRecordsFile(path);
  std::vector<RawExample> raw;
  raw.reserve(records.size());
  for (const JsonRecord& record : records) {
    const nlohmann::json& text = Field(record, options.text_column, source);
    const nlohmann::json& label = Field(record, options.label_column, source);
    if (!text.is_string()) {
      Fail(ErrorCode::kInvalidArgument, At(source, record.line) + "\"" + options.text_column +
                                            "\" is " + text.type_name() + ", expected a string");
    }
    std::string label_name;
    if (label.is_string()) {
      label_name = label.get<std::string>();
    } else if (label.is_number_integer()) {
      label_name = label.dump();
    } else {
      Fail(ErrorCode::kInvalidArgument, At(source, record.line) + "\"" + options.label_column +
                                            "\" is " + label.type_name() +
                                            ", expected a string or an integer");
    }
    raw.push_back(RawExample{text.get<std::string>(), std::move(label_name), record.line});
  }
  return raw;
}

LabelledDataset Load(const std::filesystem::path& path, const DataOptions& options,
                     const LabelSet* given_labels) {
  const std::string source = path.string();
  std::vector<RawExample> raw = ResolveDataFormat(path, options.format) == DataFormat::kCsv
                                    ? ReadCsvExamples(path, options)
                                    : ReadJsonExamples(path, options);
  if (raw.empty()) {
    Fail(ErrorCode::kDataLoss,
         source + ": the file holds no examples; expected at least one record");
  }
  std::vector<std::string> observed;
  observed.reserve(raw.size());
  for (const RawExample& example : raw) {
    if (example.text.empty()) {
      Fail(ErrorCode::kDataLoss, At(source, example.line) + "empty text in column \"" +
                                     options.text_column +
                                     "\"; remove the record or fill in its text");
    }
    if (example.label_name.empty()) {
      Fail(ErrorCode::kDataLoss, At(source, example.line) + "empty label in column \"" +
                                     options.label_column + "\"; every example needs a class");
    }
    observed.push_back(example.label_name);
  }
  LabelledDataset dataset;
  dataset.source = source;
  dataset.labels = given_labels != nullptr ? *given_labels : LabelSet::FromObserved(observed);
  dataset.examples.reserve(raw.size());
  for (RawExample& example : raw) {
    const int64_t id = dataset.labels.Find(example.label_name);
    if (id < 0) {
      Fail(ErrorCode::kInvalidArgument, At(source, example.line) + "unknown label \"" +
                                            example.label_name + "\"; it is not one of the " +
                                            std::to_string(dataset.labels.size()) +
                                            " classes of the training data (labels must match the "
                                            "training file exactly, case included)");
    }
    dataset.examples.push_back(LabelledExample{std::move(example.text), id, example.line});
  }
  return dataset;
}

}  // namespace

std::vector<int64_t> LabelledDataset::LabelIds() const {
  std::vector<int64_t> ids;
  ids.reserve(examples.size());
  for (const LabelledExample& example : examples) ids.push_back(example.label);
  return ids;
}

std::vector<int64_t> LabelledDataset::ClassCounts() const {
  std::vector<int64_t> counts(static_cast<size_t>(labels.size()), 0);
  for (const LabelledExample& example : examples) ++counts[static_cast<size_t>(example.label)];
  return counts;
}

DataFormat ResolveDataFormat(const std::filesystem::path& path, DataFormat format) {
  if (format != DataFormat::kAuto) return format;
  std::string extension = path.extension().string();
  for (char& c : extension) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  if (extension == ".csv") return DataFormat::kCsv;
  if (extension == ".jsonl" || extension == ".json") return DataFormat::kJson;
  Fail(ErrorCode::kInvalidArgument,
       path.string() + ": cannot tell the data format from the extension \"" + extension +
           "\"; use .csv, .jsonl or .json, or set DataOptions::format");
}

LabelledDataset LoadLabelledDataset(const std::filesystem::path& path, const DataOptions& options) {
  return Load(path, options, nullptr);
}

LabelledDataset LoadLabelledDataset(const std::filesystem::path& path, const DataOptions& options,
                                    const LabelSet& labels) {
  if (labels.size() == 0) {
    Fail(ErrorCode::kInvalidArgument, path.string() + ": the given label set is empty");
  }
  return Load(path, options, &labels);
}

LabelledDataset SelectExamples(const LabelledDataset& dataset,
                               const std::vector<int64_t>& indices) {
  LabelledDataset subset;
  subset.source = dataset.source;
  subset.labels = dataset.labels;
  subset.examples.reserve(indices.size());
  for (int64_t index : indices) {
    if (index < 0 || index >= dataset.size()) {
      Fail(ErrorCode::kInvalidArgument, dataset.source + ": example index " +
                                            std::to_string(index) + " is out of range [0, " +
                                            std::to_string(dataset.size()) + ")");
    }
    subset.examples.push_back(dataset.examples[static_cast<size_t>(index)]);
  }
  return subset;
}

}  // namespace hpsearch::formats
