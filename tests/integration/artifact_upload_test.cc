// UploadArtifact and GetArtifact through a real coordinator process over gRPC: a good upload is
// stored and served back byte for byte, a retry is a duplicate, and a damaged, truncated,
// cancelled or stale upload gets a precise status and leaves nothing visible.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "integration/cluster.h"
#include "testing/artifact_chunks.h"
#include "transfer/artifact_files.h"
#include "transfer/sha256.h"

namespace hpsearch::testing {
namespace {

namespace fs = std::filesystem;

std::vector<v1::ArtifactChunk> ChunksOf(const fs::path& dir, const std::string& lease,
                                        const std::string& worker_id) {
  return ArtifactChunksOf(dir, 1000, lease, worker_id);
}

struct Uploaded {
  grpc::Status status;
  v1::UploadArtifactResponse response;
};

// Sends `chunks`; `cancel_after` > 0 cancels the call after that many chunks instead of closing.
Uploaded Upload(Cluster& cluster, const std::vector<v1::ArtifactChunk>& chunks,
                size_t cancel_after = 0) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  Uploaded result;
  auto writer = cluster.workers->UploadArtifact(&context, &result.response);
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (cancel_after > 0 && i == cancel_after) {
      context.TryCancel();
      break;
    }
    if (!writer->Write(chunks[i])) break;
  }
  if (cancel_after == 0) writer->WritesDone();
  result.status = writer->Finish();
  return result;
}

// Regular files under root; a cancelled upload may still be removing its staging folder, so
// entries that vanish while we look are skipped rather than thrown.
int StoredFiles(const fs::path& root) {
  int count = 0;
  std::error_code error;
  if (!fs::exists(root, error)) return 0;
  fs::recursive_directory_iterator it(root, error), end;
  for (; !error && it != end; it.increment(error)) {
    std::error_code type_error;
    count += it->is_regular_file(type_error) ? 1 : 0;
  }
  return count;
}

TEST_CASE("Artifact uploads over gRPC: faults are refused precisely, a good one is served back",
          "[integration][artifacts]") {
  Cluster cluster;
  StudyOptions options;
  options.name = "uploads";
  options.n_trials = 1;
  options.parallelism = 1;
  options.final_stage = false;
  cluster.Submit(options);
  grpc::ClientContext register_context;
  v1::RegisterRequest register_request;
  register_request.mutable_info()->set_name("test");
  v1::RegisterResponse registered;
  REQUIRE(cluster.workers->Register(&register_context, register_request, &registered).ok());
  grpc::ClientContext acquire_context;
  v1::AcquireTrialRequest acquire;
  acquire.set_worker_id(registered.worker_id());
  acquire.set_wait_ms(5000);
  v1::AcquireTrialResponse acquired;
  REQUIRE(cluster.workers->AcquireTrial(&acquire_context, acquire, &acquired).ok());
  const std::string lease = acquired.trial().lease_id();
  REQUIRE_FALSE(lease.empty());

  const fs::path model = cluster.dir() / "model";
  fs::create_directories(model);
  std::string weights(5000, '\0');
  for (size_t i = 0; i < weights.size(); ++i) weights[i] = static_cast<char>(i * 31 % 251);
  std::ofstream(model / "adapter_model.safetensors", std::ios::binary) << weights;
  std::ofstream(model / "adapter_config.json") << "{\"peft_type\": \"LORA\"}\n";
  const std::vector<v1::ArtifactChunk> good = ChunksOf(model, lease, registered.worker_id());
  REQUIRE(good.size() == 7);  // 5 chunks of the weights, the config, the end mark
  const fs::path stored = cluster.dir() / "artifacts" / "stored";

  std::vector<v1::ArtifactChunk> damaged = good;
  damaged[2].mutable_data()->at(10) ^= 1;
  Uploaded bad_checksum = Upload(cluster, damaged);
  CHECK(bad_checksum.status.error_code() == grpc::StatusCode::DATA_LOSS);
  CHECK(bad_checksum.status.error_message().find("sha256 mismatch") != std::string::npos);

  std::vector<v1::ArtifactChunk> truncated(good.begin(), good.end() - 1);
  Uploaded cut = Upload(cluster, truncated);
  CHECK(cut.status.error_code() == grpc::StatusCode::DATA_LOSS);
  CHECK(cut.status.error_message().find("truncated") != std::string::npos);

  Uploaded cancelled = Upload(cluster, good, /*cancel_after=*/3);
  CHECK(cancelled.status.error_code() == grpc::StatusCode::CANCELLED);

  std::vector<v1::ArtifactChunk> unknown = good;
  unknown[0].set_lease_id("ls-0000000000000000");
  CHECK(Upload(cluster, unknown).status.error_code() == grpc::StatusCode::NOT_FOUND);

  std::vector<v1::ArtifactChunk> not_the_holder = good;
  not_the_holder[0].set_worker_id("w-someone-else");
  Uploaded foreign = Upload(cluster, not_the_holder);
  CHECK(foreign.status.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(foreign.status.error_message().find("not held by") != std::string::npos);

  // Nothing of the failures is visible: no record, no file (staging folders are gone too, once
  // the cancelled call's cleanup has run: the server finishes it after the client's cancel).
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (StoredFiles(stored) != 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(cluster.Query("SELECT COUNT(*) FROM artifacts") == "0");
  CHECK(StoredFiles(stored) == 0);

  Uploaded ok = Upload(cluster, good);
  INFO(ok.status.error_message());
  REQUIRE(ok.status.ok());
  CHECK(ok.response.files() == 2);
  CHECK(ok.response.bytes() == 5000 + 22);
  CHECK_FALSE(ok.response.duplicate());
  Uploaded again = Upload(cluster, good);
  REQUIRE(again.status.ok());
  CHECK(again.response.duplicate());
  CHECK(cluster.Query("SELECT COUNT(*) FROM artifact_files") == "2");
  CHECK(cluster.Query("SELECT sha256 FROM artifact_files WHERE name = "
                      "'adapter_model.safetensors'") == transfer::Sha256Hex(weights));
  CHECK(cluster.Query("SELECT COUNT(*) FROM events WHERE kind = 'artifact_stored'") == "1");
  CHECK(StoredFiles(stored) == 2);

  // Served back, checked on arrival as an upload is.
  grpc::ClientContext get_context;
  v1::GetArtifactRequest get;
  get.set_study("uploads");
  get.set_trial_number(0);
  auto reader = cluster.studies->GetArtifact(&get_context, get);
  fs::create_directories(cluster.dir() / "copy");
  transfer::ArtifactAssembler assembler((cluster.dir() / "copy").string());
  v1::ArtifactChunk chunk;
  while (reader->Read(&chunk)) REQUIRE(assembler.Add(chunk).ok());
  REQUIRE(reader->Finish().ok());
  auto files = assembler.Finish();
  REQUIRE(files.ok());
  CHECK(files->size() == 2);
  CHECK(*transfer::FileSha256((cluster.dir() / "copy" / "adapter_model.safetensors").string()) ==
        transfer::Sha256Hex(weights));

  // Once the trial is complete its lease is stale.
  grpc::ClientContext complete_context;
  v1::CompleteTrialRequest complete;
  complete.set_lease_id(lease);
  complete.set_worker_id(registered.worker_id());
  v1::CompleteTrialResponse completed;
  REQUIRE(cluster.workers->CompleteTrial(&complete_context, complete, &completed).ok());
  Uploaded stale = Upload(cluster, good);
  CHECK(stale.status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(StoredFiles(stored) == 2);
}

}  // namespace
}  // namespace hpsearch::testing
