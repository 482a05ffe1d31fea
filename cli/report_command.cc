// hpsearch report STUDY (--db FILE | --coordinator ADDR) -o DIR: writes DIR/report.md in the shape
// of the seed write-up and the SVG pictures it links (server/study_report.h). With --db it reads
// the results database directly (read-only), so it works with the coordinator gone.
#include <iostream>

#include "cli/client.h"
#include "cli/commands.h"
#include "server/report/study_report.h"

namespace hpsearch::cli {
namespace {

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
  CLI::App* cmd =
      app.add_subcommand("report", "Write DIR/report.md and its SVG pictures for a study");
  cmd->add_option("study", flags->study, "Study id or name")->required();
  auto* db = cmd->add_option("--db", flags->db, "Read this results database directly");
  AddConnectionOptions(cmd, &flags->connection);
  db->excludes(cmd->get_option("--coordinator"));
  cmd->add_option("-o,--output", flags->out_dir, "Output folder")->required();
  cmd->callback([flags, exit_code] { *exit_code = RunReport(*flags); });
}

}  // namespace hpsearch::cli
