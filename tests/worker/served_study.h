// ServedStudy: `hpsearch serve` on an ephemeral 127.0.0.1 port over a temp-dir database, with one
// submitted study of command trials over x, for worker tests that need a real coordinator.
#pragma once

#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <regex>
#include <string>

#include "hpsearch/v1/service.grpc.pb.h"
#include "testing/process.h"
#include "testing/subprocess.h"
#include "testing/testing.h"

namespace hpsearch::worker {

// `hpsearch serve` on an ephemeral port with one submitted study of command trials over x.
struct ServedStudy {
  ServedStudy(const std::string& name, int n_trials, int max_retries)
      : serve({(testing::BinDir() / "hpsearch").string(), "serve", "--db",
               (dir / "results.db").string(), "--listen", "127.0.0.1:0"},
              (dir / "serve").string()) {
    REQUIRE(serve.WaitForStdout("listening on", std::chrono::seconds(20)));
    std::smatch match;
    const std::string out = serve.Stdout();
    REQUIRE(std::regex_search(out, match, std::regex("listening on (127\\.0\\.0\\.1:[0-9]+)")));
    address = match[1];
    const std::string study = (dir / "study.yaml").string();
    std::ofstream(study) << "name: " << name << "\nseed: 1\n"
                         << "data: {train_file: "
                         << (testing::SourceDir() / "data/banking77/train.csv").string() << "}\n"
                         << "runner: {type: command, command: [/bin/true]}\n"
                            "search_space:\n  x: {type: float, low: 0.0, high: 1.0}\n"
                         << "budget: {n_trials: " << n_trials
                         << ", parallelism: 1, max_retries: " << max_retries << "}\n"
                         << "final_stage: {enabled: false}\n";
    testing::ProcessResult submit = testing::RunProcess(
        {(testing::BinDir() / "hpsearch").string(), "submit", study, "--coordinator", address});
    INFO(submit.err);
    REQUIRE(submit.exit_code == 0);
  }
  v1::Trial GetTrial(const std::string& study, int number) {
    auto stub =
        v1::StudyService::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::GetTrialRequest request;
    request.set_study(study);
    request.set_number(number);
    v1::Trial trial;
    REQUIRE(stub->GetTrial(&context, request, &trial).ok());
    return trial;
  }
  testing::TempDir dir;
  testing::ChildProcess serve;
  std::string address;
};

}  // namespace hpsearch::worker
