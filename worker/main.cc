// hpsearch-worker: pulls trials from a coordinator and runs them until SIGTERM.
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/synchronization/mutex.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"
#include "worker/command_runner.h"
#include "worker/qlora_runner.h"
#include "worker/worker.h"

int main(int argc, char** argv) {
  CLI::App app{"hpsearch-worker: runs trials leased by an hpsearch coordinator"};
  std::string coordinator;
  std::string name;
  std::string device = "cpu";
  int threads = 1;
  int max_trials = 0;
  bool exit_when_idle = false;
  double acquire_wait_seconds = 10;
  bool verbose = false;
  app.add_option("--coordinator", coordinator,
                 "Coordinator host:port (default: $HPSEARCH_COORDINATOR, else 127.0.0.1:50051)");
  app.add_option("--name", name,
                 "Name shown in the coordinator's worker table (default: host-pid)");
  app.add_option("--device", device, "cpu or cuda:K")->capture_default_str();
  app.add_option("--threads", threads, "CPU threads a trial may use")->capture_default_str();
  app.add_option("--max-trials", max_trials, "Exit after this many trials (0: never)")
      ->capture_default_str();
  app.add_flag("--exit-when-idle", exit_when_idle, "Exit when no trial comes within one long-poll");
  app.add_option("--acquire-wait", acquire_wait_seconds, "Seconds of one AcquireTrial long-poll")
      ->capture_default_str();
  app.add_flag("-v,--verbose", verbose, "Log the commands' non-protocol output too");
  CLI11_PARSE(app, argc, argv);
  // As in `hpsearch serve`: no madvise() (a TLB flush on every core) each time a gRPC thread frees
  // its buffers; keep up to 64 MiB per malloc arena.
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  mallopt(M_MMAP_THRESHOLD, 32 << 20);

  spdlog::set_default_logger(spdlog::stderr_color_mt("hpsearch-worker"));
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (verbose) spdlog::set_level(spdlog::level::debug);
  if (coordinator.empty()) {
    const char* env = std::getenv("HPSEARCH_COORDINATOR");
    coordinator = env != nullptr && *env != '\0' ? env : "127.0.0.1:50051";
  }
  if (device != "cpu" && device.rfind("cuda:", 0) != 0) {
    std::cerr << "hpsearch-worker: --device " << device << " is not cpu or cuda:K\n";
    return 2;
  }
  char host[256] = {0};
  ::gethostname(host, sizeof(host) - 1);
  hpsearch::worker::WorkerOptions options;
  options.coordinator_address = coordinator;
  options.info.set_name(name.empty() ? std::string(host) + "-" + std::to_string(::getpid()) : name);
  options.info.set_hostname(host);
  options.info.set_device(device);
  options.info.set_threads(threads);
  options.info.set_pid(::getpid());
  options.info.set_version(HPSEARCH_VERSION);
  options.max_trials = max_trials;
  options.exit_when_idle = exit_when_idle;
  options.acquire_wait = absl::Seconds(acquire_wait_seconds);

  // SIGTERM and SIGINT go to one thread that stops the worker; every other thread blocks them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::map<hpsearch::v1::RunnerType, std::unique_ptr<hpsearch::worker::Runner>> runners;
  runners[hpsearch::v1::RUNNER_TYPE_COMMAND] = std::make_unique<hpsearch::worker::CommandRunner>();
  hpsearch::worker::QloraRunnerOptions qlora;
  qlora.threads = threads;
  qlora.device = device;
  runners[hpsearch::v1::RUNNER_TYPE_QLORA] = std::make_unique<hpsearch::worker::QloraRunner>(qlora);
  hpsearch::worker::Worker worker(options, std::move(runners));
  std::thread signal_thread([&worker, signals] {
    int signal_number = 0;
    if (sigwait(&signals, &signal_number) == 0 && signal_number != 0) {
      spdlog::info("signal {} received: stopping", signal_number);
      worker.Stop();
    }
  });
  absl::Status status = worker.Run();
  // Wake the signal thread if no signal came, so it can be joined (Stop() again is harmless).
  pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  if (!status.ok()) {
    spdlog::error("{}", std::string(status.message()));
    return 1;
  }
  spdlog::info("exiting after {} trials", worker.trials_run());
  return 0;
}
