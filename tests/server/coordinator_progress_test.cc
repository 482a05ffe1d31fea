// A running trial's step progress: carried by its worker's heartbeats, kept with the trial, and
// written to one trial_progress row per running trial at most every progress_write_interval.
#include <catch2/catch.hpp>

#include "db/database.h"
#include "server/coordinator_fixture.h"

namespace hpsearch::server {
namespace {

using coordinator_testing::Fixture;
using coordinator_testing::MakeSpec;

std::string ProgressRow(const std::string& path) {
  db::DatabaseOptions options;
  options.read_only = true;
  auto db = db::Database::Open(path, options);
  REQUIRE(db.ok());
  auto stmt = (*db)->GetCachedStatement(
      "SELECT COUNT(*), IFNULL(MAX(step), -1), IFNULL(MAX(epoch), -1) FROM trial_progress");
  REQUIRE(stmt.ok());
  auto row = (*stmt)->Step();
  REQUIRE(row.ok());
  REQUIRE(*row);
  return (*stmt)->ColumnText(0) + " " + (*stmt)->ColumnText(1) + " " + (*stmt)->ColumnText(2);
}

TEST_CASE("Heartbeats carry a trial's step progress into one row per running trial",
          "[server][coordinator][progress]") {
  Fixture f;
  f.options.progress_write_interval = absl::Seconds(3);
  f.Restart();
  const std::string id = f.Submit(MakeSpec("progress", 1, 1));
  const std::string worker = f.Register("w");
  auto trial = f.Acquire(worker);
  REQUIRE(trial.has_value());
  const std::string db = (f.dir / "results.db").string();
  auto beat = [&](int64_t step) {
    v1::HeartbeatRequest request;
    request.set_worker_id(worker);
    request.add_lease_ids(trial->lease_id());
    v1::TrialProgress* progress = request.mutable_progress();
    progress->set_epoch(1);
    progress->set_epochs(2);
    progress->set_step(step);
    progress->set_total_steps(100);
    progress->set_samples_per_second(40);
    progress->set_eta_seconds(90);
    REQUIRE(f.coordinator->Heartbeat(request).ok());
  };
  CHECK(ProgressRow(db) == "0 -1 -1");
  beat(10);
  CHECK(ProgressRow(db) == "1 10 1");
  // Within the interval: the trial shows the latest, the row waits.
  f.clock.Advance(absl::Seconds(1));
  beat(20);
  auto shown = f.coordinator->GetTrial(id, 0);
  REQUIRE(shown.ok());
  CHECK(shown->progress().step() == 20);
  CHECK(shown->progress().total_steps() == 100);
  CHECK(shown->progress().eta_seconds() == 90);
  CHECK(shown->progress().updated_unix_ms() == absl::ToUnixMillis(f.clock.Now()));
  CHECK(ProgressRow(db) == "1 10 1");
  f.clock.Advance(absl::Seconds(3));
  beat(30);
  CHECK(ProgressRow(db) == "1 30 1");
  // A restart reads it back with the running trial.
  f.Restart();
  CHECK(f.coordinator->GetTrial(id, 0)->progress().step() == 30);
  // The attempt's end removes it.
  REQUIRE(f.Report(trial->lease_id(), 1, 0.5).ok());
  REQUIRE(f.Complete(trial->lease_id()).ok());
  CHECK_FALSE(f.coordinator->GetTrial(id, 0)->has_progress());
  CHECK(ProgressRow(db) == "0 -1 -1");
}

}  // namespace
}  // namespace hpsearch::server
