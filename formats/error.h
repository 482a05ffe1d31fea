// formats::Error is the one error type of the readers here and of the training core above them
// (core/error.h names it core::Error). Every fallible function in formats/ and core/ throws it
// (core/ also lets a c10::Error from LibTorch through, which worker/ treats as an internal error).
// The message says what failed, on what (file, tensor, line, field) and what to do; the code tells
// the caller how to react. worker/ converts it to an absl::Status at the single place it calls into
// core/; the study validator turns it into a validation issue.
#pragma once

#include <stdexcept>
#include <string>

namespace hpsearch::formats {

enum class ErrorCode {
  kInvalidArgument,  // the caller passed something malformed (config value, shape, option)
  kNotFound,         // a file, tensor or column that must exist does not
  kDataLoss,         // a file exists but is truncated or corrupt
  kUnsupported,      // well-formed input we deliberately do not handle (a dtype, a pickle global)
  kIo,               // the operating system refused a read or write
  kCancelled,        // a stop flag was raised between steps
  kInternal,         // a bug in hpsearch
};

const char* ErrorCodeName(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message);
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

// Throws Error(code, message). Use as `if (bad) Fail(ErrorCode::kDataLoss, path + ": truncated");`.
[[noreturn]] void Fail(ErrorCode code, const std::string& message);

}  // namespace hpsearch::formats
