#include "core/classification_data.h"

#include "core/data_split.h"
#include "core/error.h"

namespace hpsearch::core {

ClassificationData LoadClassificationData(const DataFiles& files,
                                          const formats::DataOptions& options) {
  if (files.train.empty()) {
    Fail(ErrorCode::kInvalidArgument, "no training file given; set the train data path");
  }
  formats::LabelledDataset full_train = formats::LoadLabelledDataset(files.train, options);
  ClassificationData data;
  data.labels = full_train.labels;
  if (files.validation.empty()) {
    const DataSplit split = SplitTrainValidation(full_train, options);
    data.train = formats::SelectExamples(full_train, split.train);
    data.validation = formats::SelectExamples(full_train, split.validation);
    data.validation_is_split = true;
  } else {
    data.train = std::move(full_train);
    data.validation = formats::LoadLabelledDataset(files.validation, options, data.labels);
  }
  if (!files.test.empty())
    data.test = formats::LoadLabelledDataset(files.test, options, data.labels);
  data.test.labels = data.labels;
  return data;
}

}  // namespace hpsearch::core
