// The dashboard's HTTP server on a real SQLite file of an older schema version: it reads the file
// through a migrated in-memory copy, never migrates it, and sees rows written to it later.
#include "server/dashboard/dashboard_server.h"

#include <catch2/catch.hpp>
#include <string>

#include "db/database.h"
#include "db/schema.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "testing/testing.h"

namespace hpsearch {
namespace {

using hpsearch::testing::TempDir;

std::string InsertStudySql(const std::string& id, const std::string& name) {
  return "INSERT INTO studies (study_id, name, state, spec, spec_json, objective_metric, "
         "direction, from_epoch, n_trials, parallelism, max_retries, seed, sampler, pruner, "
         "runner, created_ms) VALUES ('" +
         id + "', '" + name +
         "', 'searching', x'', '{}', 'val_accuracy', 'maximize', 'last', 3, 1, 0, 1, 'random', "
         "'none', 'command', 5)";
}

int UserVersion(const std::string& path) {
  db::DatabaseOptions options;
  options.read_only = true;
  auto db = db::Database::Open(path, options);
  REQUIRE(db.ok());
  return (*db)->UserVersion();
}

nlohmann::json Studies(httplib::Client& client) {
  httplib::Result result = client.Get("/api/studies");
  REQUIRE(result);
  REQUIRE(result->status == 200);
  return nlohmann::json::parse(result->body);
}

TEST_CASE("The dashboard reads a schema version 1 file without migrating it, and stays live",
          "[dashboard][server]") {
  TempDir dir;
  const std::string path = (dir / "old.db").string();
  {
    auto db = db::Database::Open(path);
    REQUIRE(db.ok());
    REQUIRE(db::MigrateTo(db->get(), 1).ok());
    REQUIRE((*db)->Execute(InsertStudySql("s1", "first-study")).ok());
  }
  dashboard::DashboardOptions options;
  options.db_path = path;
  auto server = dashboard::DashboardServer::Start(options);
  REQUIRE(server.ok());
  httplib::Client client("127.0.0.1", (*server)->port());
  nlohmann::json studies = Studies(client);
  REQUIRE(studies["studies"].size() == 1);
  CHECK(studies["studies"][0]["id"] == "s1");
  CHECK(UserVersion(path) == 1);

  // An older coordinator goes on writing the file: the next answer shows it.
  {
    auto db = db::Database::Open(path);
    REQUIRE(db.ok());
    REQUIRE((*db)->Execute(InsertStudySql("s2", "second-study")).ok());
  }
  studies = Studies(client);
  REQUIRE(studies["studies"].size() == 2);
  CHECK(studies["studies"][1]["id"] == "s2");
  CHECK(UserVersion(path) == 1);
  (*server)->Stop();
}

TEST_CASE("The dashboard refuses a file of a newer schema version, naming both versions",
          "[dashboard][server]") {
  TempDir dir;
  const std::string path = (dir / "new.db").string();
  {
    auto db = db::Database::Open(path);
    REQUIRE(db.ok());
    REQUIRE((*db)->SetUserVersion(db::kSchemaVersion + 1).ok());
  }
  dashboard::DashboardOptions options;
  options.db_path = path;
  auto server = dashboard::DashboardServer::Start(options);
  REQUIRE_FALSE(server.ok());
  CHECK(server.status().message().find(std::to_string(db::kSchemaVersion + 1)) !=
        std::string::npos);
  CHECK(UserVersion(path) == db::kSchemaVersion + 1);
}

}  // namespace
}  // namespace hpsearch
