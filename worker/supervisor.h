// Supervisor: the parent process of `hpsearch-worker --devices ...`. Starts one worker process per
// device, restarts one that crashed after a backoff, and on SIGTERM or SIGINT forwards the signal
// to every worker and exits once all have exited (a second signal, a second or more later, kills
// them).
//
// A worker that exits 0 finished on purpose (--max-trials, --exit-when-idle) and is not restarted;
// one that exits 2 was given bad flags and would fail the same way again, so the supervisor stops
// the others and exits 2. One that exits kExitCredentialsRefused (the coordinator refused its token
// or certificate) is restarted, in case the token is being rotated, until it has been refused
// max_refusals times in a row; then the supervisor stops the others and exits
// kExitCredentialsRefused with the reason, rather than hold its node (a Slurm job, GPUs) for ever.
// Any other exit, or death by a signal, is a crash: the worker is restarted after RestartBackoff's
// delay. Workers get SIGTERM if the supervisor itself dies (PR_SET_PDEATHSIG).
//
// Ownership: owns its children while Run() runs. Thread-safety: Run() once, from the main thread
// of a single-threaded process (it blocks SIGTERM, SIGINT and SIGCHLD and waits for them).
#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "base/clock.h"

namespace hpsearch::worker {

// The exit code of a worker whose coordinator refused its credentials (UNAUTHENTICATED or
// PERMISSION_DENIED), and of a supervisor that gave up on such a worker.
inline constexpr int kExitCredentialsRefused = 3;

struct SupervisorOptions {
  // Delay before the first restart of a crashed worker; each further crash doubles it.
  absl::Duration initial_backoff = absl::Seconds(1);
  // The longest delay: a worker that keeps crashing is retried this often, never given up on (the
  // coordinator may come back, a token may be rotated).
  absl::Duration max_backoff = absl::Minutes(1);
  // A worker that ran this long before it exited was healthy: its next restart waits
  // initial_backoff again.
  absl::Duration healthy_after = absl::Minutes(5);
  // A worker refused this many times in a row (exit kExitCredentialsRefused) is not restarted
  // again.
  int max_refusals = 3;
  // Where uptimes, restart times and the one-second window of a repeated signal are measured;
  // nullptr: the system clock. Waiting for signals and children is real time. Not owned; must
  // outlive the supervisor.
  Clock* clock = nullptr;
};

// The restart delays of one worker: initial_backoff, doubled after each crash up to max_backoff,
// back to initial_backoff after a run of at least healthy_after.
class RestartBackoff {
 public:
  explicit RestartBackoff(const SupervisorOptions& options) : options_(options) {}

  // The delay before restarting a worker that crashed after running `uptime`.
  absl::Duration NextDelay(absl::Duration uptime);

 private:
  SupervisorOptions options_;
  absl::Duration next_ = absl::ZeroDuration();  // zero: no crash since the last healthy run
};

struct WorkerProcessSpec {
  std::string name;               // for the log ("node7-gpu0")
  std::vector<std::string> argv;  // argv[0] is the program's path
};

class Supervisor {
 public:
  Supervisor(SupervisorOptions options, std::vector<WorkerProcessSpec> workers);

  // Starts every worker and supervises them until all have ended. Returns the exit code for main():
  // 0 when they ended on purpose or after a forwarded signal, 2 when one was given bad flags,
  // kExitCredentialsRefused when one was refused max_refusals times in a row, 1 when a worker could
  // not be started at all.
  int Run();

 private:
  SupervisorOptions options_;
  std::vector<WorkerProcessSpec> workers_;
};

}  // namespace hpsearch::worker
