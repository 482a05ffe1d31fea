#include "cli/study_source.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "db/results_store.h"
#include "rpc/grpc_status.h"
#include "server/report/study_report.h"
#include "server/study_file/study_view.h"

namespace hpsearch::cli {
namespace {

void CountTrials(const std::vector<v1::Trial>& trials, v1::Study* study) {
  study->clear_trial_counts();
  for (const v1::Trial& trial : trials) {
    ++(*study->mutable_trial_counts())[db::TrialStateName(trial.state())];
  }
}

absl::StatusOr<std::unique_ptr<db::ResultsStore>> OpenForReading(const std::string& path) {
  db::DatabaseOptions options;
  options.read_only = true;
  return db::ResultsStore::Open(path, options);
}

// A failed call as every client command prints it ("UNAVAILABLE: ... (hint)"), with its code.
absl::Status FromCall(const CoordinatorConnection& connection, const grpc::Status& status) {
  absl::Status converted = rpc::FromGrpcStatus(status);
  std::string message =
      absl::StrCat(rpc::GrpcCodeName(status.error_code()), ": ", converted.message());
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    absl::StrAppend(&message, " (", connection.UnreachableHint(),
                    "; with no coordinator running, read its database with --db FILE)");
  }
  return absl::Status(converted.code(), message);
}

// The connection of `flags`; a flag or file that cannot be used is the caller's input to fix.
absl::StatusOr<CoordinatorConnection> Connect(const ConnectionFlags& flags) {
  absl::StatusOr<CoordinatorConnection> connection = CoordinatorConnection::Open(flags);
  if (!connection.ok()) return absl::InvalidArgumentError(connection.status().message());
  return connection;
}

}  // namespace

void AddStudySourceOptions(CLI::App* command, StudySource* source) {
  CLI::Option* db = command->add_option(
      "--db", source->db, "Read this results database directly (no coordinator needed)");
  AddConnectionOptions(command, &source->connection);
  db->excludes(command->get_option("--coordinator"));
}

absl::StatusOr<StudyAndTrials> LoadStudyFrom(const StudySource& source, const std::string& study) {
  StudyAndTrials loaded;
  if (!source.db.empty()) {
    absl::StatusOr<db::StoredStudy> stored = server::LoadStudyFromDatabase(source.db, study);
    if (!stored.ok()) return stored.status();
    loaded.study = std::move(stored->study);
    for (db::StoredTrial& t : stored->trials) {
      loaded.trials.push_back(std::move(t.trial));
      loaded.trials.back().clear_attempts();
    }
    CountTrials(loaded.trials, &loaded.study);
    return loaded;
  }
  absl::StatusOr<CoordinatorConnection> connection = Connect(source.connection);
  if (!connection.ok()) return connection.status();
  v1::GetStudyRequest request;
  request.set_study(study);
  auto context = CallContext();
  grpc::Status status = connection->studies()->GetStudy(context.get(), request, &loaded.study);
  if (!status.ok()) return FromCall(*connection, status);
  v1::ListTrialsRequest list;
  list.set_study(loaded.study.id());
  v1::ListTrialsResponse listed;
  auto list_context = CallContext();
  status = connection->studies()->ListTrials(list_context.get(), list, &listed);
  if (!status.ok()) return FromCall(*connection, status);
  loaded.trials.assign(listed.trials().begin(), listed.trials().end());
  return loaded;
}

absl::StatusOr<std::vector<v1::Study>> LoadStudiesFrom(const StudySource& source) {
  std::vector<v1::Study> studies;
  if (!source.db.empty()) {
    absl::StatusOr<std::unique_ptr<db::ResultsStore>> store = OpenForReading(source.db);
    if (!store.ok()) return store.status();
    absl::StatusOr<std::vector<db::StoredStudy>> all = (*store)->LoadAll();
    if (!all.ok()) return all.status();
    for (db::StoredStudy& stored : *all) {
      std::vector<v1::Trial> trials;
      for (db::StoredTrial& t : stored.trials) trials.push_back(std::move(t.trial));
      CountTrials(trials, &stored.study);
      studies.push_back(std::move(stored.study));
    }
    return studies;
  }
  absl::StatusOr<CoordinatorConnection> connection = Connect(source.connection);
  if (!connection.ok()) return connection.status();
  v1::ListStudiesResponse response;
  auto context = CallContext();
  grpc::Status status = connection->studies()->ListStudies(context.get(), {}, &response);
  if (!status.ok()) return FromCall(*connection, status);
  studies.assign(response.studies().begin(), response.studies().end());
  return studies;
}

const v1::Trial* BestTrialSoFar(const v1::StudySpec& spec, const std::vector<v1::Trial>& trials) {
  const v1::Trial* best = nullptr;
  for (const v1::Trial& trial : trials) {
    if (trial.kind() != v1::TRIAL_KIND_SEARCH || trial.state() != v1::TRIAL_STATE_COMPLETE ||
        !trial.has_objective_value()) {
      continue;
    }
    if (best == nullptr ||
        server::BetterObjective(spec, trial.objective_value(), best->objective_value())) {
      best = &trial;
    }
  }
  return best;
}

int ReportLoadError(const std::string& command, const absl::Status& status) {
  std::cerr << "hpsearch " << command << ": " << status.message() << "\n";
  return status.code() == absl::StatusCode::kInvalidArgument ? kExitBadInput : kExitFailure;
}

}  // namespace hpsearch::cli
