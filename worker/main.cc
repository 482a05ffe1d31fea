// hpsearch-worker: pulls trials from a coordinator and runs them until SIGTERM. With --devices it
// is instead the supervisor of one such worker process per device (worker/supervisor.h).
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <new>
#include <string>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/synchronization/mutex.h"
#include "rpc/security.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"
#include "worker/command_runner.h"
#include "worker/device_list.h"
#include "worker/qlora_runner.h"
#include "worker/supervisor.h"
#include "worker/worker.h"

namespace {

// `argv` without the options in `names` and their values ("--name V" and "--name=V").
std::vector<std::string> WithoutOptions(int argc, char** argv,
                                        const std::vector<std::string>& names) {
  std::vector<std::string> kept;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    bool drop = false;
    for (const std::string& name : names) {
      if (arg == name) {
        drop = true;
        ++i;  // its value
        break;
      }
      if (arg.rfind(name + "=", 0) == 0) {
        drop = true;
        break;
      }
    }
    if (!drop) kept.push_back(arg);
  }
  return kept;
}

std::string SelfPath(const char* argv0) {
  char path[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return argv0;
  path[n] = '\0';
  return path;
}

}  // namespace

int WorkerMain(int argc, char** argv) {
  // SIGTERM and SIGINT are taken by sigwait() (a worker's signal thread, or the supervisor's loop);
  // block them before any thread starts, since creating gRPC credentials starts gRPC's own threads
  // and a signal delivered to one of those would take its default action.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  CLI::App app{"hpsearch-worker: runs trials leased by an hpsearch coordinator"};
  std::string coordinator;
  std::string name;
  std::string device = "cpu";
  std::string devices;
  int threads = 1;
  int max_trials = 0;
  bool exit_when_idle = false;
  double acquire_wait_seconds = 10;
  bool verbose = false;
  bool print_runners = false;
  std::string auth_token_file;
  std::string tls_ca;
  double restart_backoff_seconds = 1;
  double restart_backoff_max_seconds = 60;
  double healthy_after_seconds = 300;
  app.add_option("--coordinator", coordinator,
                 "Coordinator host:port (default: $HPSEARCH_COORDINATOR, else 127.0.0.1:50051)");
  app.add_option("--name", name,
                 "Name shown in the coordinator's worker table (default: host-pid; with "
                 "--devices: the base of each worker's name, default the host name)");
  auto* device_option = app.add_option("--device", device, "cpu or cuda:K")->capture_default_str();
  app.add_option("--devices", devices,
                 "Run one supervised worker process per device: all (every GPU), 0,1,... (GPU "
                 "numbers), cuda:K or cpu entries")
      ->excludes(device_option);
  app.add_option("--threads", threads, "CPU threads a trial may use")->capture_default_str();
  app.add_option("--max-trials", max_trials, "Exit after this many trials (0: never)")
      ->capture_default_str();
  app.add_flag("--exit-when-idle", exit_when_idle, "Exit when no trial comes within one long-poll");
  app.add_option("--acquire-wait", acquire_wait_seconds, "Seconds of one AcquireTrial long-poll")
      ->capture_default_str();
  app.add_option("--auth-token-file", auth_token_file,
                 "File holding the coordinator's shared secret (default: "
                 "$HPSEARCH_AUTH_TOKEN_FILE)");
  app.add_option("--tls-ca", tls_ca,
                 "PEM CA certificate that signed the coordinator's TLS certificate; set: connect "
                 "with TLS (default: $HPSEARCH_TLS_CA)");
  app.add_option("--restart-backoff", restart_backoff_seconds,
                 "--devices: seconds before restarting a crashed worker, doubled per crash")
      ->capture_default_str();
  app.add_option("--restart-backoff-max", restart_backoff_max_seconds,
                 "--devices: the longest restart delay")
      ->capture_default_str();
  app.add_option("--healthy-after", healthy_after_seconds,
                 "--devices: seconds of running after which a crash restarts the backoff")
      ->capture_default_str();
  app.add_flag("-v,--verbose", verbose, "Log the commands' non-protocol output too");
  app.add_flag("--print-runners", print_runners,
               "Print the runner types this build runs on --device (command, qlora) and exit");
  CLI11_PARSE(app, argc, argv);
  // As in `hpsearch serve`: no madvise() (a TLB flush on every core) each time a gRPC thread frees
  // its buffers; keep up to 64 MiB per malloc arena.
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  mallopt(M_MMAP_THRESHOLD, 32 << 20);

  spdlog::set_default_logger(
      spdlog::stderr_color_mt(name.empty() || !devices.empty() ? "hpsearch-worker" : name));
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
  if (print_runners) {
    // What the worker would register with (hpsearch run checks it before starting workers).
    std::cout << "command" << (hpsearch::worker::QloraRunnerCanRunOn(device) ? " qlora" : "")
              << "\n";
    return 0;
  }
  if (!devices.empty()) {
    // The supervisor learns of exits through SIGCHLD, which must reach its sigtimedwait() too.
    sigset_t child;
    sigemptyset(&child);
    sigaddset(&child, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &child, nullptr);
  }
  hpsearch::rpc::ClientSecurityOptions security_options;
  security_options.auth_token_file = auth_token_file;
  security_options.tls_ca_file = tls_ca;
  absl::StatusOr<hpsearch::rpc::ClientSecurity> security =
      hpsearch::rpc::LoadClientSecurity(hpsearch::rpc::WithEnvironmentDefaults(security_options));
  if (!security.ok()) {
    std::cerr << "hpsearch-worker: " << security.status().message() << "\n";
    return 2;
  }
  char host[256] = {0};
  ::gethostname(host, sizeof(host) - 1);

  if (!devices.empty()) {
    absl::StatusOr<std::vector<std::string>> list =
        hpsearch::worker::ParseDeviceList(devices, hpsearch::worker::GpuDiscoveryFromEnvironment());
    if (!list.ok()) {
      std::cerr << "hpsearch-worker: " << list.status().message() << "\n";
      return 2;
    }
    for (const std::string& warning : security->warnings) spdlog::warn("{}", warning);
    std::vector<std::string> common = WithoutOptions(
        argc, argv,
        {"--devices", "--name", "--restart-backoff", "--restart-backoff-max", "--healthy-after"});
    std::string base = name.empty() ? std::string(host) : name;
    std::vector<hpsearch::worker::WorkerProcessSpec> workers;
    int cpu_index = 0;
    for (const std::string& d : *list) {
      hpsearch::worker::WorkerProcessSpec spec;
      spec.name = d == "cpu" ? base + "-cpu" + std::to_string(cpu_index++)
                             : base + "-gpu" + d.substr(sizeof("cuda:") - 1);
      spec.argv = {SelfPath(argv[0])};
      spec.argv.insert(spec.argv.end(), common.begin(), common.end());
      spec.argv.insert(spec.argv.end(), {"--device", d, "--name", spec.name});
      workers.push_back(std::move(spec));
    }
    hpsearch::worker::SupervisorOptions supervisor_options;
    supervisor_options.initial_backoff = absl::Seconds(restart_backoff_seconds);
    supervisor_options.max_backoff = absl::Seconds(restart_backoff_max_seconds);
    supervisor_options.healthy_after = absl::Seconds(healthy_after_seconds);
    spdlog::info("supervising {} workers for coordinator {}", workers.size(), coordinator);
    return hpsearch::worker::Supervisor(supervisor_options, std::move(workers)).Run();
  }

  for (const std::string& warning : security->warnings) spdlog::warn("{}", warning);
  hpsearch::worker::WorkerOptions options;
  options.coordinator_address = coordinator;
  options.security = *security;
  options.info.set_name(name.empty() ? std::string(host) + "-" + std::to_string(::getpid()) : name);
  options.info.set_hostname(host);
  options.info.set_device(device);
  options.info.set_threads(threads);
  options.info.set_pid(::getpid());
  options.info.set_version(HPSEARCH_VERSION);
  options.max_trials = max_trials;
  options.exit_when_idle = exit_when_idle;
  options.acquire_wait = absl::Seconds(acquire_wait_seconds);

  // A command trial gets this worker's one GPU (entry K of an inherited CUDA_VISIBLE_DEVICES, as
  // Slurm sets it) and its thread count; the device is trusted as given.
  absl::StatusOr<std::map<std::string, std::string>> command_env =
      hpsearch::worker::CommandDeviceEnvironment(
          device, threads, hpsearch::worker::GpuDiscoveryFromEnvironment().cuda_visible_devices);
  if (!command_env.ok()) {
    std::cerr << "hpsearch-worker: " << command_env.status().message() << "\n";
    return 2;
  }
  if (auto visible = command_env->find("CUDA_VISIBLE_DEVICES"); visible != command_env->end()) {
    spdlog::info("device {}: command trials run with CUDA_VISIBLE_DEVICES={} (cuda:0 to them)",
                 device, visible->second);
  }
  std::map<hpsearch::v1::RunnerType, std::unique_ptr<hpsearch::worker::Runner>> runners;
  hpsearch::worker::CommandRunnerOptions command;
  command.environment = std::move(*command_env);
  runners[hpsearch::v1::RUNNER_TYPE_COMMAND] =
      std::make_unique<hpsearch::worker::CommandRunner>(std::move(command));
  if (hpsearch::worker::QloraRunnerCanRunOn(device)) {
    hpsearch::worker::QloraRunnerOptions qlora;
    qlora.threads = threads;
    qlora.device = device;
    runners[hpsearch::v1::RUNNER_TYPE_QLORA] =
        std::make_unique<hpsearch::worker::QloraRunner>(qlora);
  } else {
    // Registered without the qlora type, so the coordinator never leases this worker one.
    spdlog::warn(
        "device {}: this hpsearch-worker was built without a CUDA LibTorch, so it runs command "
        "trials only and is never leased a built-in (qlora) trial; for those, build against a "
        "CUDA LibTorch (docs/gpu.md) or use --device cpu",
        device);
  }
  hpsearch::worker::Worker worker(options, std::move(runners));
  // SIGTERM and SIGINT (blocked in every thread since main began) go to one thread that stops the
  // worker.
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

// The one top-level handler (docs/reliability.md): whatever escapes is a message and exit code 1,
// never an abort. A trial's own failures never get here: the runners turn them into FAILED trials.
int main(int argc, char** argv) {
  try {
    return WorkerMain(argc, argv);
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "hpsearch-worker: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::string what = e.what();
    if (size_t newline = what.find('\n'); newline != std::string::npos) what.resize(newline);
    std::fprintf(stderr, "hpsearch-worker: internal error: %s\n", what.c_str());
    return 1;
  }
}
