// Seeded train/validation split of a training set. n_validation = ceil(fraction * n)
// (scikit-learn's and Hugging Face's rule; Banking77: 10,003 -> 8,002 train / 2,001 validation).
// The result depends only on the labels, the fraction, the stratify flag and the seed, and is the
// same on every platform (core/seeded_rng.h).
//
// Stratified: class c holds out v_c examples with sum v_c = n_validation exactly. v_c is its
// proportional quota n_validation * n_c / n rounded down, and the examples left over go one each to
// the classes with the largest remainders (ties in seeded random order), never taking a class's
// last training example: a class with n_c examples gives at most n_c - 1 to validation (a
// single-example class stays in train). Which examples of a class are held out is a seeded random
// choice. Not stratified: a seeded random choice of n_validation examples.
//
// Thread-safety: free functions; safe to call concurrently.
#pragma once

#include <cstdint>
#include <vector>

#include "formats/data_options.h"
#include "formats/dataset.h"

namespace hpsearch::core {

struct DataSplit {
  std::vector<int64_t> train;       // example indices, ascending
  std::vector<int64_t> validation;  // example indices, ascending
};

// The number of examples held out: ceil(fraction * n), computed in double as scikit-learn does.
// Throws kInvalidArgument unless 0 < fraction < 1 and both parts are non-empty.
int64_t ValidationCount(int64_t n, double fraction);

// Splits examples whose class ids are `labels` (each in [0, num_classes)).
// Throws kInvalidArgument for a bad fraction, or when a stratified split cannot hold out
// n_validation examples while keeping one training example per class.
DataSplit SplitTrainValidation(const std::vector<int64_t>& labels, int64_t num_classes,
                               double fraction, bool stratify, uint64_t seed);

// Splits `dataset` with options.validation_fraction, options.stratify_split and options.split_seed.
DataSplit SplitTrainValidation(const formats::LabelledDataset& dataset,
                               const formats::DataOptions& options);

}  // namespace hpsearch::core
