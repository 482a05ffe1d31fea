// worker/: the --devices list, GPU discovery on a fake machine, and the supervisor's restart
// backoff. The supervisor itself runs real worker processes in
// tests/integration/worker_supervisor_test.cc.
#include "worker/supervisor.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

#include "testing/testing.h"
#include "worker/device_list.h"

namespace hpsearch::worker {
namespace {

using testing::TempDir;

TEST_CASE("RestartBackoff doubles per crash, caps, and resets after a healthy run",
          "[worker][supervisor]") {
  SupervisorOptions options;
  options.initial_backoff = absl::Seconds(1);
  options.max_backoff = absl::Seconds(8);
  options.healthy_after = absl::Seconds(60);
  RestartBackoff backoff(options);
  const absl::Duration quick = absl::Seconds(2);
  CHECK(backoff.NextDelay(quick) == absl::Seconds(1));
  CHECK(backoff.NextDelay(quick) == absl::Seconds(2));
  CHECK(backoff.NextDelay(quick) == absl::Seconds(4));
  CHECK(backoff.NextDelay(quick) == absl::Seconds(8));
  CHECK(backoff.NextDelay(quick) == absl::Seconds(8));
  // Ran long enough to count as healthy: the next crash starts over.
  CHECK(backoff.NextDelay(absl::Seconds(60)) == absl::Seconds(1));
  CHECK(backoff.NextDelay(quick) == absl::Seconds(2));
}

GpuDiscoveryOptions FakeMachine(const TempDir& dir, int proc_gpus, const std::string& smi_output,
                                int smi_exit = 0) {
  GpuDiscoveryOptions options;
  options.proc_gpus_dir = (dir / "gpus").string();
  for (int i = 0; i < proc_gpus; ++i) {
    std::filesystem::create_directories(dir / "gpus" / ("0000:0" + std::to_string(i) + ":00.0"));
  }
  options.nvidia_smi = (dir / "nvidia-smi").string();
  std::ofstream(options.nvidia_smi)
      << "#!/bin/sh\nprintf '" << smi_output << "'\nexit " << smi_exit << "\n";
  ::chmod(options.nvidia_smi.c_str(), 0755);
  return options;
}

TEST_CASE("CountGpus reads CUDA_VISIBLE_DEVICES, then the driver's folder, then nvidia-smi",
          "[worker][devices]") {
  TempDir dir;
  SECTION("the driver's folder") {
    auto count = CountGpus(FakeMachine(dir, 3, ""));
    REQUIRE(count.ok());
    CHECK(*count == 3);
  }
  SECTION("nvidia-smi -L when the folder is absent") {
    auto count = CountGpus(FakeMachine(
        dir, 0, "GPU 0: NVIDIA H200 (UUID: GPU-1)\\nGPU 1: NVIDIA H200 (UUID: GPU-2)\\n"));
    REQUIRE(count.ok());
    CHECK(*count == 2);
  }
  SECTION("CUDA_VISIBLE_DEVICES wins and is numbered from 0") {
    GpuDiscoveryOptions options = FakeMachine(dir, 8, "");
    options.cuda_visible_devices = "4,5";
    CHECK(*CountGpus(options) == 2);
    options.cuda_visible_devices = "GPU-aaaa,GPU-bbbb,-1,7";  // CUDA stops at -1
    CHECK(*CountGpus(options) == 2);
    options.cuda_visible_devices = "";
    auto none = CountGpus(options);
    CHECK(none.status().code() == absl::StatusCode::kNotFound);
    CHECK(none.status().message().find("makes no GPU visible") != std::string::npos);
  }
  SECTION("none anywhere: an error saying where it looked") {
    auto none = CountGpus(FakeMachine(dir, 0, "No devices were found\\n", 6));
    CHECK(none.status().code() == absl::StatusCode::kNotFound);
    CHECK(none.status().message().find((dir / "gpus").string()) != std::string::npos);
    CHECK(none.status().message().find("could not run") != std::string::npos);
    CHECK(none.status().message().find("--device cpu") != std::string::npos);
  }
}

TEST_CASE("ParseDeviceList expands --devices", "[worker][devices]") {
  TempDir dir;
  GpuDiscoveryOptions machine = FakeMachine(dir, 2, "");
  using List = std::vector<std::string>;
  CHECK(*ParseDeviceList("all", machine) == List{"cuda:0", "cuda:1"});
  CHECK(*ParseDeviceList("0,1,3", machine) == List{"cuda:0", "cuda:1", "cuda:3"});
  CHECK(*ParseDeviceList("cuda:2, cuda:0", machine) == List{"cuda:2", "cuda:0"});
  CHECK(*ParseDeviceList("cpu,cpu", machine) == List{"cpu", "cpu"});
  for (const char* bad : {"", "gpu0", "1,,2", "cuda:", "cuda:x", "-1", "1.5"}) {
    INFO(bad);
    auto parsed = ParseDeviceList(bad, machine);
    CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument);
  }
  CHECK(ParseDeviceList("gpu0", machine).status().message().find("'gpu0'") != std::string::npos);
  GpuDiscoveryOptions empty_machine = FakeMachine(dir, 0, "", 9);
  empty_machine.proc_gpus_dir = (dir / "absent").string();
  CHECK(ParseDeviceList("all", empty_machine).status().code() == absl::StatusCode::kNotFound);
}

TEST_CASE("A command trial's device variables: its one GPU, with and without an inherited mask",
          "[worker][devices]") {
  using Env = std::map<std::string, std::string>;
  const Env threads4 = {
      {"OMP_NUM_THREADS", "4"}, {"OPENBLAS_NUM_THREADS", "4"}, {"MKL_NUM_THREADS", "4"}};
  auto with = [&](Env env) {
    env.insert(threads4.begin(), threads4.end());
    return env;
  };
  struct Case {
    const char* device;
    std::optional<std::string> inherited;
    Env expected;
  };
  const std::vector<Case> cases = {
      // Nothing inherited: cuda:K is the node's GPU K.
      {"cuda:1", std::nullopt,
       with({{"CUDA_VISIBLE_DEVICES", "1"}, {"HPSEARCH_DEVICE", "cuda:0"}})},
      {"cuda:0", std::nullopt,
       with({{"CUDA_VISIBLE_DEVICES", "0"}, {"HPSEARCH_DEVICE", "cuda:0"}})},
      // Slurm gave the job GPUs 4 and 6: cuda:1 is the second of them.
      {"cuda:1", "4,6", with({{"CUDA_VISIBLE_DEVICES", "6"}, {"HPSEARCH_DEVICE", "cuda:0"}})},
      {"cuda:0", " 4 , 6 ", with({{"CUDA_VISIBLE_DEVICES", "4"}, {"HPSEARCH_DEVICE", "cuda:0"}})},
      // UUIDs and MIG instances are passed on as they are.
      {"cuda:1",
       "GPU-5ad2e3f1-0c3a-4b2e-9d77-1a2b3c4d5e6f,GPU-8f00aa11-2222-4333-8444-555566667777",
       with({{"CUDA_VISIBLE_DEVICES", "GPU-8f00aa11-2222-4333-8444-555566667777"},
             {"HPSEARCH_DEVICE", "cuda:0"}})},
      {"cuda:0", "MIG-3c5d1e2f-aaaa-5bbb-8ccc-0123456789ab",
       with({{"CUDA_VISIBLE_DEVICES", "MIG-3c5d1e2f-aaaa-5bbb-8ccc-0123456789ab"},
             {"HPSEARCH_DEVICE", "cuda:0"}})},
      // A cpu worker leaves CUDA_VISIBLE_DEVICES alone.
      {"cpu", std::nullopt, with({{"HPSEARCH_DEVICE", "cpu"}})},
      {"cpu", "0,1", with({{"HPSEARCH_DEVICE", "cpu"}})},
  };
  for (const Case& c : cases) {
    INFO(c.device << " with CUDA_VISIBLE_DEVICES " << c.inherited.value_or("<unset>"));
    absl::StatusOr<Env> env = CommandDeviceEnvironment(c.device, 4, c.inherited);
    INFO(env.status().ToString());
    REQUIRE(env.ok());
    CHECK(*env == c.expected);
  }
  // No thread count: no thread variables.
  CHECK(*CommandDeviceEnvironment("cuda:2", 0, std::nullopt) ==
        Env{{"CUDA_VISIBLE_DEVICES", "2"}, {"HPSEARCH_DEVICE", "cuda:0"}});
  // Beyond the inherited list (CUDA stops at its first invalid entry), and malformed devices.
  for (const char* inherited : {"4,6", "4,-1,6", "NoDevFiles", ""}) {
    INFO(inherited);
    auto env = CommandDeviceEnvironment("cuda:2", 1, std::string(inherited));
    CHECK(env.status().code() == absl::StatusCode::kFailedPrecondition);
    CHECK(env.status().message().find("cuda:2") != std::string::npos);
  }
  for (const char* bad : {"gpu", "cuda:", "cuda:x", "cuda:-1", "cuda:1.5", "CPU"}) {
    INFO(bad);
    CHECK(CommandDeviceEnvironment(bad, 1, std::nullopt).status().code() ==
          absl::StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace hpsearch::worker
