// ClassificationData: the train, validation and (optional) test sets of one text-classification
// task, loaded in one call with consistent label ids. The training file defines the classes
// (formats/labels.h order); the validation and test files must use only those classes. Without a
// validation file, the validation set is a seeded split of the training file (core/data_split.h)
// under DataOptions' validation_fraction, stratify_split and split_seed.
//
// Ownership: plain values. Thread-safety: LoadClassificationData is safe to call concurrently.
#pragma once

#include <filesystem>

#include "formats/data_options.h"
#include "formats/dataset.h"

namespace hpsearch::core {

struct DataFiles {
  std::filesystem::path train;       // required
  std::filesystem::path validation;  // empty: split the validation set off the training file
  std::filesystem::path test;        // empty: no test set
};

struct ClassificationData {
  formats::LabelSet labels;             // shared by the three sets (id -> class name)
  formats::LabelledDataset train;       // what the model trains on (after the split, if any)
  formats::LabelledDataset validation;  // what hyperparameter search scores
  formats::LabelledDataset test;        // empty (size 0) when DataFiles::test is empty
  bool validation_is_split = false;     // true when validation came from the training file

  bool has_test() const { return test.size() > 0; }
};

// Loads and splits as described above. Errors as LoadLabelledDataset and SplitTrainValidation.
// REQUIRES: files.train non-empty.
ClassificationData LoadClassificationData(const DataFiles& files,
                                          const formats::DataOptions& options);

}  // namespace hpsearch::core
