#include "server/artifact_service.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "testing/artifact_chunks.h"
#include "testing/testing.h"
#include "transfer/sha256.h"

namespace hpsearch::server {
namespace {

namespace fs = std::filesystem;
using hpsearch::testing::TempDir;

// A coordinator over a temp-file store with one command study and one leased trial.
struct ArtifactFixture {
  TempDir dir;
  ManualClock clock;
  std::unique_ptr<db::ResultsStore> store;
  std::unique_ptr<Coordinator> coordinator;
  std::unique_ptr<ArtifactService> artifacts;
  std::string study_id;
  v1::TrialSpec trial;
  std::string worker_id;  // the holder of trial's lease

  ArtifactFixture() {
    db::DatabaseOptions db_options;
    db_options.exclusive_lock = true;
    auto opened = db::ResultsStore::Open((dir / "results.db").string(), db_options);
    REQUIRE(opened.ok());
    store = std::move(*opened);
    CoordinatorOptions options;
    options.lease_ttl = absl::Seconds(10);
    auto created = Coordinator::Create(store.get(), &clock, options);
    REQUIRE(created.ok());
    coordinator = std::move(*created);
    artifacts = std::make_unique<ArtifactService>(coordinator.get(), store->path(),
                                                  ArtifactServiceOptions{});
    v1::SubmitStudyRequest submit;
    v1::StudySpec* spec = submit.mutable_spec();
    spec->set_name("uploads");
    auto* x = spec->add_search_space();
    x->set_name("x");
    x->mutable_float_range()->set_high(1);
    spec->mutable_objective()->set_metric("val_accuracy");
    spec->mutable_budget()->set_n_trials(2);
    spec->mutable_budget()->set_parallelism(2);
    spec->mutable_runner()->set_type(v1::RUNNER_TYPE_COMMAND);
    spec->mutable_runner()->add_command("true");
    auto submitted = coordinator->SubmitStudy(submit);
    REQUIRE(submitted.ok());
    study_id = submitted->study_id();
    v1::RegisterRequest reg;
    reg.mutable_info()->set_name("w");
    auto worker = coordinator->Register(reg);
    REQUIRE(worker.ok());
    worker_id = worker->worker_id();
    auto acquired = coordinator->TryAcquire(worker_id);
    REQUIRE(acquired.ok());
    REQUIRE(acquired->has_value());
    trial = **acquired;
  }

  fs::path MakeFiles(const std::string& name, const std::string& content) {
    fs::path source = dir / name;
    fs::create_directories(source);
    std::ofstream(source / "adapter_model.safetensors", std::ios::binary) << content;
    std::ofstream(source / "metrics.json") << "{\"epochs\": []}\n";
    return source;
  }

  std::vector<v1::ArtifactChunk> Chunks(const fs::path& source) {
    return testing::ArtifactChunksOf(source, 8, trial.lease_id(), worker_id);
  }

  absl::StatusOr<v1::UploadArtifactResponse> Upload(const std::vector<v1::ArtifactChunk>& chunks) {
    auto upload = artifacts->BeginUpload();
    REQUIRE(upload.ok());
    for (const v1::ArtifactChunk& chunk : chunks) {
      if (absl::Status status = (*upload)->Add(chunk); !status.ok()) return status;
    }
    return artifacts->Commit(upload->get());
  }

  // Folders holding files under the store's root (staging included).
  int StoredFiles() {
    int count = 0;
    if (!fs::exists(artifacts->root())) return 0;
    for (const auto& entry : fs::recursive_directory_iterator(artifacts->root())) {
      count += entry.is_regular_file() ? 1 : 0;
    }
    return count;
  }

  void CompleteTrial() {
    v1::ReportEpochRequest epoch;
    epoch.set_lease_id(trial.lease_id());
    epoch.set_worker_id(worker_id);
    epoch.mutable_metrics()->set_epoch(1);
    epoch.mutable_metrics()->set_val_accuracy(0.5);
    REQUIRE(coordinator->ReportEpoch(epoch).ok());
    v1::CompleteTrialRequest complete;
    complete.set_lease_id(trial.lease_id());
    complete.set_worker_id(worker_id);
    REQUIRE(coordinator->CompleteTrial(complete).ok());
  }
};

TEST_CASE("ArtifactService stores a complete upload and records it under the trial",
          "[server][artifacts]") {
  ArtifactFixture f;
  const fs::path source = f.MakeFiles("model", std::string(20, 'w'));
  auto response = f.Upload(f.Chunks(source));
  REQUIRE(response.ok());
  CHECK(response->files() == 2);
  CHECK(response->bytes() == 20 + 15);
  CHECK_FALSE(response->duplicate());

  auto found = f.artifacts->Find("uploads", f.trial.trial_number());
  REQUIRE(found.ok());
  CHECK(found->attempt == 1);
  REQUIRE(found->files.size() == 2);
  for (const transfer::ArtifactFile& file : found->files) {
    CHECK(file.sha256 == *transfer::FileSha256((source / file.name).string()));
    CHECK(*transfer::FileSha256((fs::path(found->dir) / file.name).string()) == file.sha256);
  }
  // Recorded relative to the database's folder, so the two can move together.
  auto record = f.store->LoadArtifact(1, 0);
  REQUIRE(record.ok());
  REQUIRE(record->has_value());
  CHECK(fs::path((*record)->dir).is_relative());
  CHECK(f.StoredFiles() == 2);

  SECTION("a retried upload of the same files is a duplicate and stores nothing more") {
    auto again = f.Upload(f.Chunks(source));
    REQUIRE(again.ok());
    CHECK(again->duplicate());
    CHECK(f.StoredFiles() == 2);
  }
  SECTION("an upload with other files replaces the record and its folder") {
    auto other = f.Upload(f.Chunks(f.MakeFiles("model2", std::string(9, 'v'))));
    REQUIRE(other.ok());
    CHECK_FALSE(other->duplicate());
    CHECK(f.StoredFiles() == 2);
    auto replaced = f.artifacts->Find("uploads", f.trial.trial_number());
    REQUIRE(replaced.ok());
    CHECK(replaced->dir != found->dir);
  }
}

TEST_CASE("A damaged, truncated or stale upload fails precisely and leaves nothing visible",
          "[server][artifacts]") {
  ArtifactFixture f;
  std::vector<v1::ArtifactChunk> chunks = f.Chunks(f.MakeFiles("model", std::string(20, 'w')));
  absl::Status status;
  SECTION("bad checksum") {
    chunks[2].mutable_data()->at(0) ^= 0x20;
    status = f.Upload(chunks).status();
    CHECK(status.code() == absl::StatusCode::kDataLoss);
  }
  SECTION("truncated: the stream stops before its end mark") {
    chunks.pop_back();
    status = f.Upload(chunks).status();
    CHECK(status.code() == absl::StatusCode::kDataLoss);
  }
  SECTION("stale lease: the trial already completed") {
    f.CompleteTrial();
    status = f.Upload(chunks).status();
    CHECK(status.code() == absl::StatusCode::kFailedPrecondition);
  }
  SECTION("the lease ends while the files are in flight") {
    auto upload = f.artifacts->BeginUpload();
    REQUIRE(upload.ok());
    for (const v1::ArtifactChunk& chunk : chunks) REQUIRE((*upload)->Add(chunk).ok());
    f.CompleteTrial();
    status = f.artifacts->Commit(upload->get()).status();
    CHECK(status.code() == absl::StatusCode::kFailedPrecondition);
  }
  SECTION("another worker's lease") {
    chunks[0].set_worker_id("w-not-the-holder");
    status = f.Upload(chunks).status();
    CHECK(status.code() == absl::StatusCode::kPermissionDenied);
  }
  SECTION("no lease at all") {
    chunks[0].clear_lease_id();
    status = f.Upload(chunks).status();
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  }
  INFO(status.message());
  CHECK(f.StoredFiles() == 0);
  auto found = f.artifacts->Find("uploads", f.trial.trial_number());
  CHECK(found.status().code() == absl::StatusCode::kNotFound);
  auto record = f.store->LoadArtifact(1, 0);
  REQUIRE(record.ok());
  CHECK_FALSE(record->has_value());
}

TEST_CASE("GetArtifact's lookup names what is missing", "[server][artifacts]") {
  ArtifactFixture f;
  CHECK(f.artifacts->Find("nope", 0).status().code() == absl::StatusCode::kNotFound);
  auto final_trial = f.artifacts->Find("uploads", -1);
  CHECK(final_trial.status().code() == absl::StatusCode::kNotFound);
  CHECK(std::string(final_trial.status().message()).find("no final trial yet") !=
        std::string::npos);
  auto missing = f.artifacts->Find("uploads", f.trial.trial_number());
  CHECK(std::string(missing.status().message()).find("no stored artifact") != std::string::npos);
}

}  // namespace
}  // namespace hpsearch::server
