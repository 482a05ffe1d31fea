#include "worker/training_failure.h"

#include <new>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/error.h"

namespace hpsearch::worker {
namespace {

constexpr size_t kMaxMessage = 4000;

// c10::Error's what() appends "Exception raised from ... (most recent call first):" and a stack;
// the coordinator's error column wants the message, not the frames.
std::string Trimmed(const std::string& what) {
  std::string message = what;
  for (const char* marker : {"\nException raised from ", "Exception raised from "}) {
    size_t at = message.find(marker);
    if (at != std::string::npos && at > 0) {
      message = message.substr(0, at);
      break;
    }
  }
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  if (message.size() > kMaxMessage) message = message.substr(0, kMaxMessage) + " [...]";
  return message;
}

bool OutOfMemory(const std::string& m) {
  for (const char* needle :
       {"out of memory", "Out of memory", "OutOfMemory", "can't allocate memory",
        "Cannot allocate memory", "CUBLAS_STATUS_ALLOC_FAILED"}) {
    if (absl::StrContains(m, needle)) return true;
  }
  return false;
}

bool DeviceError(const std::string& m) {
  for (const char* needle : {"CUDA", "cuda", "CUBLAS", "cuBLAS", "CUDNN", "cuDNN", "NCCL"}) {
    if (absl::StrContains(m, needle)) return true;
  }
  return false;
}

// Errors after which CUDA refuses every further call in this process.
bool StickyDeviceError(const std::string& m) {
  for (const char* needle :
       {"illegal memory access", "device-side assert", "unspecified launch failure",
        "misaligned address", "illegal instruction"}) {
    if (absl::StrContains(m, needle)) return true;
  }
  return false;
}

// Memory and device errors outrank whatever type carried them.
bool MemoryOrDevice(const std::string& message, TrainingFailure* failure) {
  if (OutOfMemory(message)) {
    failure->retryable = true;
    failure->error = absl::StrCat("out of memory (retryable): ", message);
    return true;
  }
  if (DeviceError(message)) {
    failure->retryable = true;
    failure->restart_worker = StickyDeviceError(message);
    failure->error =
        absl::StrCat("device error (retryable",
                     failure->restart_worker ? "; the worker restarts" : "", "): ", message);
    return true;
  }
  return false;
}

}  // namespace

TrainingFailure ClassifyTrainingFailure(std::exception_ptr error) {
  TrainingFailure failure;
  try {
    std::rethrow_exception(error);
  } catch (const core::Error& e) {
    const std::string message =
        absl::StrCat("training core (", core::ErrorCodeName(e.code()), "): ", Trimmed(e.what()));
    if (MemoryOrDevice(message, &failure)) return failure;
    failure.retryable = e.code() == core::ErrorCode::kIo || e.code() == core::ErrorCode::kInternal;
    failure.error = message;
  } catch (const std::bad_alloc& e) {
    failure.retryable = true;
    failure.error = absl::StrCat("out of memory (retryable): std::bad_alloc: ", e.what());
  } catch (const std::system_error& e) {
    const std::string message = absl::StrCat("system error: ", Trimmed(e.what()));
    if (MemoryOrDevice(message, &failure)) return failure;
    failure.retryable = true;
    failure.error = message;
  } catch (const std::exception& e) {
    const std::string message = Trimmed(e.what());
    if (MemoryOrDevice(message, &failure)) return failure;
    failure.error = absl::StrCat(
        "training failed (not retried: the same inputs fail the same way "
        "on any worker): ",
        message);
  } catch (...) {
    failure.error = "training failed with an exception that is not a std::exception";
  }
  return failure;
}

}  // namespace hpsearch::worker
