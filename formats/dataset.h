// LabelledDataset: the texts and class ids of one data file (train, validation or test), read from
// CSV or JSON records (formats/csv.h, formats/jsonl.h) with the columns DataOptions names. Every
// example remembers the line its record starts on, so later stages (tokenisation) can point at the
// offending record.
//
// Label ids: a training file derives them from its own labels (formats/labels.h order) unless the
// caller passes a LabelSet; validation and test files are loaded with the training set's LabelSet,
// and a label outside it is an error naming file, line and label.
//
// Errors (formats::Error): kNotFound for a missing file or column (naming the columns / keys that
// exist), kDataLoss for malformed files, empty files and empty texts or labels, kInvalidArgument
// for an unknown label, an unrecognised extension or a value of the wrong JSON type.
//
// Ownership: plain values. Thread-safety: free functions; safe to call concurrently.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "formats/data_options.h"
#include "formats/labels.h"

namespace hpsearch::formats {

struct LabelledExample {
  std::string text;   // the text column's bytes, unchanged (no trimming)
  int64_t label = 0;  // id in LabelledDataset::labels
  int64_t line = 0;   // 1-based line of the source file on which the record starts
};

struct LabelledDataset {
  std::string source;                     // file path, for messages
  LabelSet labels;                        // id <-> class name
  std::vector<LabelledExample> examples;  // file order

  int64_t size() const { return static_cast<int64_t>(examples.size()); }

  // Label ids of every example, in order.
  std::vector<int64_t> LabelIds() const;

  // Examples per class id (size labels.size()).
  std::vector<int64_t> ClassCounts() const;
};

// The format `options.format` asks for, resolving kAuto from the extension of `path`
// (case-insensitive). Throws kInvalidArgument for kAuto with an extension other than .csv, .jsonl
// or .json.
DataFormat ResolveDataFormat(const std::filesystem::path& path, DataFormat format);

// Loads a file and derives the label ids from the labels it contains.
LabelledDataset LoadLabelledDataset(const std::filesystem::path& path, const DataOptions& options);

// Loads a file whose labels must all be in `labels` (validation/test files: pass the training set's
// labels). REQUIRES: labels.size() > 0.
LabelledDataset LoadLabelledDataset(const std::filesystem::path& path, const DataOptions& options,
                                    const LabelSet& labels);

// The examples at `indices` (in that order), sharing `dataset`'s labels and source.
// REQUIRES: every index in [0, dataset.size()).
LabelledDataset SelectExamples(const LabelledDataset& dataset, const std::vector<int64_t>& indices);

}  // namespace hpsearch::formats
