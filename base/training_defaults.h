// The built-in trainer's defaults and the rule each setting must meet: one home for both, read by
// the study validator (which fills the defaults into a StudySpec and reports a broken rule against
// its field) and by core/ (RunConfig and TrainerOptions start from the same values and refuse the
// same inputs). Header-only and free of every library, so core/ may include it.
//
// Each Check* returns nullptr when `value` is valid, else the rule it breaks, phrased to follow the
// field's name ("training.learning_rate must be ..."). NaN and infinities break every rule.
#pragma once

#include <cmath>
#include <cstdint>

namespace hpsearch::training_defaults {

// training.*
inline constexpr double kLearningRate = 5e-5;
inline constexpr int64_t kBatchSize = 8;
inline constexpr int64_t kEpochs = 3;
inline constexpr double kWeightDecay = 0.0;
inline constexpr int64_t kWarmupSteps = 0;
inline constexpr double kMaxGradNorm = 1.0;  // 0 disables clipping
inline constexpr bool kGradientCheckpointing = false;
inline constexpr double kAdamBeta1 = 0.9;
inline constexpr double kAdamBeta2 = 0.999;
inline constexpr double kAdamEpsilon = 1e-8;
// data.*
inline constexpr int64_t kMaxLength = 128;
inline constexpr int64_t kEvalBatchSize = 8;
inline constexpr double kValidationFraction = 0.2;
// fine_tune.lora.*
inline constexpr int64_t kLoraR = 8;
inline constexpr double kLoraAlpha = 16;
inline constexpr double kLoraDropout = 0.05;

inline const char* CheckLearningRate(double value) {
  return std::isfinite(value) && value > 0 ? nullptr : "must be a finite number above 0, e.g. 5e-5";
}
inline const char* CheckBatchSize(int64_t value) {
  return value >= 1 ? nullptr : "must be at least 1, e.g. 8";
}
inline const char* CheckEpochs(int64_t value) {
  return value >= 1 ? nullptr : "must be at least 1";
}
inline const char* CheckWeightDecay(double value) {
  return std::isfinite(value) && value >= 0 ? nullptr : "must be a finite number, 0 or more";
}
inline const char* CheckWarmupSteps(int64_t value) {
  return value >= 0 ? nullptr : "must be 0 or more";
}
inline const char* CheckMaxGradNorm(double value) {
  return std::isfinite(value) && value >= 0 ? nullptr
                                            : "must be a finite number, 0 (no clipping) or more";
}
inline const char* CheckAdamBeta(double value) {
  return std::isfinite(value) && value >= 0 && value < 1 ? nullptr : "must be in [0, 1)";
}
inline const char* CheckAdamEpsilon(double value) {
  return std::isfinite(value) && value > 0 ? nullptr : "must be a finite number above 0, e.g. 1e-8";
}
inline const char* CheckMaxLength(int64_t value) {
  return value >= 1 ? nullptr : "must be at least 1, e.g. 128";
}
inline const char* CheckEvalBatchSize(int64_t value) {
  return value >= 1 ? nullptr : "must be at least 1, e.g. 8";
}
inline const char* CheckLoraR(int64_t value) {
  return value >= 1 ? nullptr : "must be at least 1, e.g. 8";
}
inline const char* CheckLoraAlpha(double value) {
  return std::isfinite(value) && value > 0 ? nullptr : "must be a finite number above 0, e.g. 16";
}
inline const char* CheckLoraDropout(double value) {
  return std::isfinite(value) && value >= 0 && value < 1 ? nullptr : "must be in [0, 1)";
}

}  // namespace hpsearch::training_defaults
