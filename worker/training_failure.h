// How the built-in runner reports a training attempt that threw. The one place where an exception
// out of the training core (core::Error, LibTorch's c10::Error, std::bad_alloc, ...) becomes a
// failure the coordinator understands:
//   - out of memory (std::bad_alloc; a message saying "out of memory", "can't allocate memory",
//     "Cannot allocate memory", CUBLAS_STATUS_ALLOC_FAILED): retryable — another attempt, on
//     another worker or with the memory freed, may fit;
//   - any other CUDA / cuBLAS / cuDNN / NCCL error: retryable; the sticky ones that leave the CUDA
//     context unusable for the rest of the process ("illegal memory access", "device-side assert",
//     "unspecified launch failure", "misaligned address", "illegal instruction") also ask the
//     worker to exit so that whoever supervises it starts a fresh process;
//   - core::Error: retryable for kIo and kInternal; bad input (kInvalidArgument, kNotFound,
//     kDataLoss, kUnsupported) fails the same way everywhere, so it is not retried;
//   - std::system_error (threads, files): retryable;
//   - any other exception (a LibTorch shape or type error): not retried; the same inputs fail the
//     same way on every worker.
// The message is kept (LibTorch's C++ backtrace is cut off) and says which class it fell in.
//
// Thread-safety: a pure function.
#pragma once

#include <exception>
#include <string>

namespace hpsearch::worker {

struct TrainingFailure {
  bool retryable = false;
  bool restart_worker = false;  // the process's device state is unusable: exit after reporting
  std::string error;            // for the coordinator's trial error and the worker log
};

// REQUIRES: error is not null.
TrainingFailure ClassifyTrainingFailure(std::exception_ptr error);

}  // namespace hpsearch::worker
