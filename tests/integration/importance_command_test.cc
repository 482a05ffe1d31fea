// `hpsearch importance STUDY --db FILE` on a results database made by a real small study: a
// coordinator and two workers running the fake command trial, whose objective 1 - |x - 0.3| +
// 0.01 * epoch depends strongly on x, weakly on epochs and not at all on epoch_seconds (only how
// long each epoch sleeps). Then the bad inputs: an unknown study, a missing file, too few trials.
#include <signal.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "integration/cluster.h"

namespace hpsearch::testing {
namespace {

using namespace std::chrono_literals;

// Runs a study to its end through `hpsearch submit --wait`; returns its id.
std::string RunStudy(Cluster& cluster, const StudyOptions& options) {
  ChildProcess submit({(BinDir() / "hpsearch").string(), "submit", cluster.WriteStudy(options),
                       "--coordinator", cluster.address(), "--wait"},
                      (cluster.dir() / ("submit-" + options.name)).string());
  REQUIRE(submit.Wait(120s) == 0);
  return submit.Stdout().substr(0, submit.Stdout().find('\n'));
}

TEST_CASE("hpsearch importance ranks a real study's parameters from its database",
          "[integration][importance]") {
  Cluster cluster;
  cluster.StartWorker("a");
  cluster.StartWorker("b");
  StudyOptions options;
  options.name = "importance-e2e";
  options.n_trials = 10;
  options.final_stage = false;
  options.search_space =
      "  x: {type: float, low: 0.0, high: 1.0}\n"
      "  epochs: {type: int, low: 1, high: 2}\n"
      "  epoch_seconds: {type: float, low: 0.0, high: 0.02}\n";
  const std::string id = RunStudy(cluster, options);
  REQUIRE(id.rfind("st-", 0) == 0);
  StudyOptions lone = options;  // one trial: too few to rank anything
  lone.name = "importance-lone";
  lone.n_trials = 1;
  RunStudy(cluster, lone);
  cluster.coordinator().Kill(SIGTERM);
  REQUIRE(cluster.coordinator().Wait(10s) == 0);
  const std::string hpsearch = (BinDir() / "hpsearch").string();

  ProcessResult by_name =
      RunProcess({hpsearch, "importance", "importance-e2e", "--db", cluster.db_path()});
  INFO(by_name.err);
  REQUIRE(by_name.exit_code == 0);
  INFO(by_name.out);
  // One line per parameter, "name importance", the most important first.
  std::istringstream lines(by_name.out);
  std::string line;
  std::vector<std::pair<std::string, double>> rows;
  while (std::getline(lines, line)) {
    std::smatch m;
    REQUIRE(std::regex_match(line, m, std::regex(R"((\S+) ([01]\.[0-9]{6}))")));
    rows.emplace_back(m[1], std::stod(m[2]));
  }
  REQUIRE(rows.size() == 3);
  CHECK(rows[0].first == "x");
  CHECK(rows[0].second > 0.8);
  double sum = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    sum += rows[i].second;
    if (i > 0) CHECK(rows[i - 1].second >= rows[i].second);
  }
  CHECK(sum == Approx(1.0).margin(1e-5));
  CHECK(by_name.err.find("fANOVA over 10 complete trials") != std::string::npos);

  // By id, the same lines; the same again (a fixed seed).
  ProcessResult by_id = RunProcess({hpsearch, "importance", id, "--db", cluster.db_path()});
  CHECK(by_id.exit_code == 0);
  CHECK(by_id.out == by_name.out);

  // report.md has the same numbers in its importance section.
  ProcessResult report = RunProcess({hpsearch, "report", "importance-e2e", "--db",
                                     cluster.db_path(), "-o", (cluster.dir() / "rep").string()});
  REQUIRE(report.exit_code == 0);
  std::ifstream md_file(cluster.dir() / "rep" / "report.md");
  std::stringstream md;
  md << md_file.rdbuf();
  CHECK(md.str().find("## Parameter Importance") != std::string::npos);
  char x_row[64];
  std::snprintf(x_row, sizeof(x_row), "| x | %.4f |", rows[0].second);
  CHECK(md.str().find(x_row) != std::string::npos);

  // Bad input: exit 2 and a message that says what to do.
  ProcessResult unknown = RunProcess({hpsearch, "importance", "nope", "--db", cluster.db_path()});
  CHECK(unknown.exit_code == 2);
  CHECK(unknown.out.empty());
  CHECK(unknown.err.find("no study with id or name 'nope'") != std::string::npos);
  CHECK(unknown.err.find("importance-e2e (" + id + ")") != std::string::npos);  // what there is
  CHECK(unknown.err.find("importance-lone (st-") != std::string::npos);

  ProcessResult missing = RunProcess(
      {hpsearch, "importance", "importance-e2e", "--db", (cluster.dir() / "nope.db").string()});
  CHECK(missing.exit_code == 2);
  CHECK(missing.err.find("no results database at") != std::string::npos);

  ProcessResult no_db = RunProcess({hpsearch, "importance", "importance-e2e"});
  CHECK(no_db.exit_code == 2);
  CHECK(no_db.err.find("--db") != std::string::npos);

  ProcessResult too_few =
      RunProcess({hpsearch, "importance", "importance-lone", "--db", cluster.db_path()});
  CHECK(too_few.exit_code == 2);
  CHECK(too_few.out.empty());
  CHECK(too_few.err.find("needs at least 2 complete search trials") != std::string::npos);
  CHECK(too_few.err.find("the study has 1 complete") != std::string::npos);
}

}  // namespace
}  // namespace hpsearch::testing
