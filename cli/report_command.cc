// hpsearch report STUDY (--db FILE | --coordinator ADDR) -o DIR: writes DIR/report.md in the shape
// of the seed write-up and the SVG pictures it links (server/study_report.h), and DIR/report.html,
// the dashboard's views of the study frozen into one self-contained page (scripts and data
// inlined; server/dashboard/dashboard_page.h). With --db it reads the results database directly
// (read-only), so it works with the coordinator gone.
#include <filesystem>
#include <fstream>
#include <iostream>

#include "absl/time/clock.h"
#include "cli/client.h"
#include "cli/commands.h"
#include "db/results_store.h"
#include "server/dashboard/dashboard_page.h"
#include "server/dashboard/dashboard_views.h"
#include "server/report/study_report.h"

namespace hpsearch::cli {
namespace {

// Writes DIR/report.html (to a temporary name, then renamed). A finished study is frozen at its
// end, so its page is the same whenever it is written; a running one at the present.
absl::Status WriteReportHtml(db::StoredStudy stored, const std::string& dir) {
  namespace fs = std::filesystem;
  const v1::Study& study = stored.study;
  const bool ended =
      (study.state() == v1::STUDY_STATE_COMPLETE || study.state() == v1::STUDY_STATE_FAILED ||
       study.state() == v1::STUDY_STATE_CANCELLED) &&
      study.ended_unix_ms() > 0;
  const absl::Time at = ended ? absl::FromUnixMillis(study.ended_unix_ms()) : absl::Now();
  const std::string page = dashboard::FrozenPage(
      dashboard::StudiesView({stored}, at), dashboard::StudyView(stored, at),
      absl::StrCat(absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", at, absl::UTCTimeZone()),
                   ended ? " (the study's end)" : " (the study was still running)"));
  const fs::path path = fs::path(dir) / "report.html";
  const fs::path temp = fs::path(dir) / ".report.html.tmp";
  {
    std::ofstream file(temp, std::ios::binary | std::ios::trunc);
    file << page;
    file.close();
    if (!file) return absl::PermissionDeniedError(absl::StrCat("cannot write ", temp.string()));
  }
  std::error_code error;
  fs::rename(temp, path, error);
  if (error) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot rename ", temp.string(), " to ", path.string()));
  }
  return absl::OkStatus();
}

struct ReportFlags {
  std::string study;
  std::string db;
  ConnectionFlags connection;
  std::string out_dir;
};

int RunReport(const ReportFlags& flags) {
  if (!flags.db.empty()) {
    absl::StatusOr<std::string> path =
        server::WriteStudyReportFromDatabase(flags.db, flags.study, flags.out_dir);
    if (!path.ok()) {
      std::cerr << "hpsearch report: " << path.status().message() << "\n";
      return kExitFailure;
    }
    db::DatabaseOptions options;
    options.read_only = true;
    absl::StatusOr<std::unique_ptr<db::ResultsStore>> store =
        db::ResultsStore::Open(flags.db, options);
    absl::StatusOr<db::StoredStudy> stored =
        store.ok() ? (*store)->LoadStudy(flags.study) : store.status();
    absl::Status html =
        stored.ok() ? WriteReportHtml(*std::move(stored), flags.out_dir) : stored.status();
    if (!html.ok()) {
      std::cerr << "hpsearch report: report.html: " << html.message() << "\n";
      return kExitFailure;
    }
    std::cout << *path << "\n";
    return kExitOk;
  }
  v1::Study study;
  std::vector<v1::Trial> trials;
  int exit_code = kExitOk;
  std::optional<CoordinatorConnection> connection =
      OpenConnection("report", flags.connection, &exit_code);
  if (!connection) return exit_code;
  auto* stub = connection->studies();
  v1::GetStudyRequest request;
  request.set_study(flags.study);
  auto context = CallContext();
  grpc::Status status = stub->GetStudy(context.get(), request, &study);
  if (!status.ok()) return connection->ReportFailure("report", status);
  v1::ListTrialsRequest list;
  list.set_study(study.id());
  v1::ListTrialsResponse listed;
  auto list_context = CallContext();
  status = stub->ListTrials(list_context.get(), list, &listed);
  if (!status.ok()) return connection->ReportFailure("report", status);
  for (const v1::Trial& t : listed.trials()) {
    v1::GetTrialRequest get;  // GetTrial carries the earlier attempts
    get.set_study(study.id());
    get.set_number(t.number());
    v1::Trial full;
    auto get_context = CallContext();
    status = stub->GetTrial(get_context.get(), get, &full);
    if (!status.ok()) return connection->ReportFailure("report", status);
    trials.push_back(std::move(full));
  }
  absl::StatusOr<std::string> path =
      server::WriteStudyReport(server::BuildStudyReport(study, trials), flags.out_dir);
  if (!path.ok()) {
    std::cerr << "hpsearch report: " << path.status().message() << "\n";
    return kExitFailure;
  }
  db::StoredStudy stored;
  stored.study = study;
  for (v1::Trial& t : trials) stored.trials.push_back({0, std::move(t), "", 0, ""});
  if (absl::Status html = WriteReportHtml(std::move(stored), flags.out_dir); !html.ok()) {
    std::cerr << "hpsearch report: report.html: " << html.message() << "\n";
    return kExitFailure;
  }
  std::cout << *path << "\n";
  return kExitOk;
}

}  // namespace

int WriteStudyReport(const std::string& study, const std::string& db_path,
                     const std::string& out_dir) {
  ReportFlags flags;
  flags.study = study;
  flags.db = db_path;
  flags.out_dir = out_dir;
  return RunReport(flags);
}

void RegisterReportCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<ReportFlags>();
  CLI::App* cmd = app.add_subcommand(
      "report", "Write DIR/report.md with its SVG pictures, and DIR/report.html, for a study");
  cmd->add_option("study", flags->study, "Study id or name")->required();
  auto* db = cmd->add_option("--db", flags->db, "Read this results database directly");
  AddConnectionOptions(cmd, &flags->connection);
  db->excludes(cmd->get_option("--coordinator"));
  cmd->add_option("-o,--output", flags->out_dir, "Output folder")->required();
  cmd->callback([flags, exit_code] { *exit_code = RunReport(*flags); });
}

}  // namespace hpsearch::cli
