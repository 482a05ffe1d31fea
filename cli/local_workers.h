// LocalWorkers: the `hpsearch-worker` processes `hpsearch run` starts on this machine, one per
// device, each in its own process group (so a terminal's Ctrl-C reaches only `hpsearch run`, which
// then stops them in order), with its output appended to a log file and its CPU threads (LibTorch,
// OpenBLAS, OpenMP) capped so the workers share the cores instead of fighting over them.
//
// Ownership: owns the child processes; the destructor SIGKILLs any still running.
// Thread-safety: not thread-safe except Summary(), which may be called from any thread.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/subprocess.h"

namespace hpsearch::cli {

struct LocalWorkerSpec {
  std::string name;    // shown in the coordinator's worker table and the logs
  std::string device;  // cpu or cuda:K
  int threads = 1;     // --threads and the BLAS/OpenMP thread variables
  std::string log_path;
};

// The devices `hpsearch run` starts workers for: `--devices cpu,cuda:0,...` or `--workers N` (N
// CPU workers). INVALID_ARGUMENT names a bad entry.
absl::StatusOr<std::vector<std::string>> ParseDevices(const std::string& devices, int workers);

// Threads per worker: the machine's cores split evenly (at least 1 each).
int ThreadsPerWorker(int workers, int cores);

// hpsearch-worker beside the running hpsearch binary. NOT_FOUND says how to build it.
absl::StatusOr<std::string> WorkerBinary();

// Whether the worker `binary` runs built-in (qlora) trials on `device` (`hpsearch-worker --device D
// --print-runners`): a build without a CUDA LibTorch runs command trials only on a GPU. INTERNAL
// when the binary does not answer.
absl::StatusOr<bool> WorkerRunsBuiltInTrials(const std::string& binary, const std::string& device);

class LocalWorkers {
 public:
  LocalWorkers() = default;
  ~LocalWorkers();
  LocalWorkers(const LocalWorkers&) = delete;
  LocalWorkers& operator=(const LocalWorkers&) = delete;

  // Starts one worker per spec against `coordinator` (host:port). On failure none is left running.
  absl::Status Start(const std::string& binary, const std::string& coordinator,
                     const std::vector<LocalWorkerSpec>& specs);
  // Collects workers that exited since the last call; returns a line for each ("worker NAME (pid
  // P) exited with status S; see LOG").
  std::vector<std::string> ReapExited();
  int alive() const;
  // SIGTERM to every live worker (each hands its running trial back as retryable and exits), then
  // SIGKILL after `grace`. Returns once all have exited.
  void StopAll(absl::Duration grace);
  // One line per worker: name, device, threads, pid, running or how it ended.
  std::string Summary() const;

 private:
  struct Child {
    LocalWorkerSpec spec;
    Subprocess process;  // in a process group of its own
    std::string how;     // how it ended, once process.reaped()
  };
  mutable absl::Mutex mu_;
  std::vector<Child> children_ ABSL_GUARDED_BY(mu_);
};

}  // namespace hpsearch::cli
