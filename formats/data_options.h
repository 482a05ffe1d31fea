// DataOptions: how a labelled-text data set is read, split and tokenised. A plain value type; the
// CLI maps flags and study files onto it and nothing below reads flags. Each default is the one the
// Banking77 reference runs use unless noted (Banking77's CSV names its label column "category", so
// those runs set label_column).
#pragma once

#include <cstdint>
#include <string>

namespace hpsearch::formats {

enum class DataFormat {
  kAuto,  // from the file extension: .csv -> kCsv; .jsonl, .json -> kJson; anything else is an
          // error
  kCsv,   // RFC 4180 CSV with a header row (formats/csv.h)
  kJson,  // JSON Lines or a JSON array of objects (formats/jsonl.h)
};

struct DataOptions {
  // File layout. kAuto trusts the extension; force a format for files named otherwise.
  DataFormat format = DataFormat::kAuto;

  // Column (CSV header name or JSON key) holding the input text. Texts must be non-empty strings.
  std::string text_column = "text";

  // Column holding the class. CSV values are names; JSON values may be strings or integers (an
  // integer is read as its decimal name, so 7 and "7" are the same class).
  std::string label_column = "label";

  // Share of the training file held out for validation: n_validation = ceil(fraction * n), the rule
  // of scikit-learn's train_test_split and Hugging Face's train_test_split (Banking77: 10,003 ->
  // 8,002 / 2,001). Must lie in (0, 1).
  double validation_fraction = 0.2;

  // Stratified split: every class is held out in proportion to its size (exact totals; a class with
  // at least two examples always keeps one in train). Off: a plain seeded random split.
  bool stratify_split = true;

  // Seed of the train/validation split; the split is identical on every platform for one seed.
  uint64_t split_seed = 42;

  // Longest token sequence fed to the model; longer texts are cut to their first max_length tokens.
  // 128 covers every Banking77 text (the longest is 94 GPT-2 tokens).
  int64_t max_length = 128;

  // Token id written into padding positions (masked out by attention_mask). GPT-2 has no pad token;
  // 50256
  // (<|endoftext|>) is what Hugging Face sets as pad_token_id for GPT-2 classification.
  int64_t pad_token_id = 50256;
};

}  // namespace hpsearch::formats
