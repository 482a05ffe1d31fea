#include "db/results_store_sql.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "proto/canonical_metrics.h"

namespace hpsearch::db::sql {
namespace {

// "?, ?, ?" with `n` placeholders.
std::string Placeholders(size_t n) {
  std::vector<std::string> marks(n, "?");
  return absl::StrJoin(marks, ", ");
}

std::vector<std::string> Concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Each statement is built once and lives for the program: the Database caches statements by the
// address of their text.
const char* Keep(std::string sql) { return (new std::string(std::move(sql)))->c_str(); }

}  // namespace

const char* InsertEpochSql() {
  static const char* const sql = [] {
    const std::vector<std::string> columns =
        Concat({"trial_id", "attempt", "epoch", "lease_id", "step", "samples_per_second",
                "wall_time_seconds", "extra", "reported_ms"},
               proto::EpochMetricNames());
    return Keep(absl::StrCat("INSERT OR IGNORE INTO epochs (", absl::StrJoin(columns, ", "),
                             ") VALUES (", Placeholders(columns.size()), ")"));
  }();
  return sql;
}

const char* PutTestMetricsSql() {
  static const char* const sql = [] {
    const std::vector<std::string> columns =
        Concat({"trial_id", "test_runtime_seconds", "test_samples_per_second",
                "test_steps_per_second", "test_extra"},
               proto::TestMetricNames());
    std::vector<std::string> updates;
    for (size_t i = 1; i < columns.size(); ++i) {
      updates.push_back(absl::StrCat(columns[i], " = excluded.", columns[i]));
    }
    return Keep(absl::StrCat("INSERT INTO final_results (", absl::StrJoin(columns, ", "),
                             ") VALUES (", Placeholders(columns.size()),
                             ") ON CONFLICT (trial_id) DO UPDATE SET ",
                             absl::StrJoin(updates, ", ")));
  }();
  return sql;
}

const char* SelectEpochsSql() {
  static const char* const sql = [] {
    const std::vector<std::string> columns =
        Concat({"attempt", "epoch", "step", "samples_per_second", "wall_time_seconds", "extra"},
               proto::EpochMetricNames());
    return Keep(absl::StrCat("SELECT ", absl::StrJoin(columns, ", "),
                             " FROM epochs WHERE trial_id = ? ORDER BY attempt, epoch"));
  }();
  return sql;
}

const char* SelectFinalResultSql() {
  static const char* const sql = [] {
    const std::vector<std::string> columns =
        Concat({"global_steps", "train_loss", "train_runtime_seconds", "train_samples_per_second",
                "train_steps_per_second", "total_flos", "epochs", "test_runtime_seconds",
                "test_samples_per_second", "test_steps_per_second", "test_extra", "extra"},
               proto::TestMetricNames());
    return Keep(absl::StrCat("SELECT ", absl::StrJoin(columns, ", "),
                             " FROM final_results WHERE trial_id = ?"));
  }();
  return sql;
}

}  // namespace hpsearch::db::sql
