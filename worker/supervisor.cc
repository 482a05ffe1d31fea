#include "worker/supervisor.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>

#include "base/subprocess.h"
#include "spdlog/spdlog.h"

namespace hpsearch::worker {

absl::Duration RestartBackoff::NextDelay(absl::Duration uptime) {
  if (uptime >= options_.healthy_after || next_ == absl::ZeroDuration()) {
    next_ = options_.initial_backoff;
  }
  absl::Duration delay = std::min(next_, options_.max_backoff);
  next_ = std::min(next_ * 2, options_.max_backoff);
  return delay;
}

namespace {

struct Slot {
  explicit Slot(WorkerProcessSpec spec, const SupervisorOptions& options)
      : spec(std::move(spec)), backoff(options) {}
  WorkerProcessSpec spec;
  RestartBackoff backoff;
  Subprocess process;                    // running while started and not reaped
  absl::Time started;                    // of the running process
  std::optional<absl::Time> restart_at;  // a crashed worker waiting for its restart
  int refusals_in_a_row = 0;             // exits with kExitCredentialsRefused since another exit
};

// Starts one worker: default signal mask, and SIGTERM when the supervisor dies so that no worker
// outlives it.
bool Spawn(const WorkerProcessSpec& spec, Subprocess* process, std::string* error) {
  SubprocessOptions options;
  options.argv = spec.argv;
  options.in = SubprocessStream::Inherit();
  options.die_with_parent = true;
  options.name_in_errors = "hpsearch-worker";
  *process = Subprocess();
  return process->Start(options, error);
}

}  // namespace

Supervisor::Supervisor(SupervisorOptions options, std::vector<WorkerProcessSpec> workers)
    : options_(options), workers_(std::move(workers)) {}

int Supervisor::Run() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &signals, nullptr);

  ClockOrReal clock(options_.clock);
  std::vector<Slot> slots;
  for (WorkerProcessSpec& spec : workers_) slots.emplace_back(std::move(spec), options_);
  int exit_code = 0;
  int stop_signals = 0;
  absl::Time first_stop;
  auto start = [&](Slot& slot) {
    slot.restart_at.reset();
    std::string error;
    const bool started = Spawn(slot.spec, &slot.process, &error);
    slot.started = clock.Now();
    if (!started) {
      spdlog::error("cannot start worker {}: {}", slot.spec.name, error);
      return false;
    }
    spdlog::info("started worker {} (pid {})", slot.spec.name, slot.process.pid());
    return true;
  };
  auto forward = [&](int signal_number) {
    for (Slot& slot : slots) {
      slot.restart_at.reset();
      slot.process.Signal(signal_number);
    }
  };
  for (Slot& slot : slots) {
    if (!start(slot)) {
      exit_code = 1;
      ++stop_signals;
      forward(SIGTERM);
      break;
    }
  }

  while (true) {
    bool running = false;
    std::optional<absl::Time> next_restart;
    for (const Slot& slot : slots) {
      running |= slot.process.started() && !slot.process.reaped();
      if (slot.restart_at && (!next_restart || *slot.restart_at < *next_restart)) {
        next_restart = slot.restart_at;
      }
    }
    if (!running && !next_restart) break;

    siginfo_t info;
    int signal_number;
    if (next_restart) {
      absl::Duration wait = std::max(*next_restart - clock.Now(), absl::ZeroDuration());
      timespec timeout = absl::ToTimespec(wait);
      signal_number = ::sigtimedwait(&signals, &info, &timeout);
    } else {
      signal_number = ::sigwaitinfo(&signals, &info);
    }

    if (signal_number == SIGTERM || signal_number == SIGINT) {
      // The first signal asks the workers to stop (each fails its trial as retryable); a second
      // one kills them. The same signal often arrives twice at once (sent to the process and to its
      // group, as timeout(1) and some schedulers do): a repeat within a second is not a second ask.
      absl::Time now = clock.Now();
      if (stop_signals > 0 && now - first_stop < absl::Seconds(1)) continue;
      if (stop_signals == 0) first_stop = now;
      int to_send = ++stop_signals == 1 ? signal_number : SIGKILL;
      spdlog::info("signal {} received: sending signal {} to every worker", signal_number, to_send);
      forward(to_send);
    } else if (signal_number == SIGCHLD) {
      int status = 0;
      pid_t pid;
      while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
        auto slot = std::find_if(slots.begin(), slots.end(), [pid](const Slot& s) {
          return s.process.pid() == pid && !s.process.reaped();
        });
        if (slot == slots.end()) continue;
        slot->process.Reaped(status);
        absl::Duration uptime = clock.Now() - slot->started;
        std::string how = DescribeExit(status);
        bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (stop_signals > 0) {
          spdlog::info("worker {} (pid {}) {}", slot->spec.name, pid, how);
        } else if (clean) {
          spdlog::info("worker {} (pid {}) finished: {}; not restarted", slot->spec.name, pid, how);
        } else if (WIFEXITED(status) && WEXITSTATUS(status) == 2) {
          spdlog::error(
              "worker {} (pid {}) {}: its flags are invalid and a restart would fail "
              "the same way; stopping every worker",
              slot->spec.name, pid, how);
          exit_code = 2;
          ++stop_signals;
          forward(SIGTERM);
        } else if (WIFEXITED(status) && WEXITSTATUS(status) == kExitCredentialsRefused &&
                   ++slot->refusals_in_a_row >= options_.max_refusals) {
          spdlog::error(
              "worker {} (pid {}) was refused by the coordinator {} times in a row (wrong auth "
              "token or TLS CA; its log above says which); not restarting it: stopping every "
              "worker. Fix --auth-token-file / $HPSEARCH_AUTH_TOKEN_FILE and start again",
              slot->spec.name, pid, slot->refusals_in_a_row);
          exit_code = kExitCredentialsRefused;
          ++stop_signals;
          forward(SIGTERM);
        } else {
          if (!(WIFEXITED(status) && WEXITSTATUS(status) == kExitCredentialsRefused)) {
            slot->refusals_in_a_row = 0;
          }
          absl::Duration delay = slot->backoff.NextDelay(uptime);
          slot->restart_at = clock.Now() + delay;
          spdlog::warn("worker {} (pid {}) {} after {}; restarting in {}", slot->spec.name, pid,
                       how, absl::FormatDuration(absl::Trunc(uptime, absl::Milliseconds(1))),
                       absl::FormatDuration(delay));
        }
      }
    }
    if (stop_signals > 0) continue;
    absl::Time now = clock.Now();
    for (Slot& slot : slots) {
      if (slot.restart_at && *slot.restart_at <= now && !start(slot)) {
        // fork failing is the machine running out of processes: try again later.
        slot.restart_at = now + slot.backoff.NextDelay(absl::ZeroDuration());
      }
    }
  }
  spdlog::info("every worker has exited");
  return exit_code;
}

}  // namespace hpsearch::worker
