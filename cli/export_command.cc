// hpsearch export STUDY [--trial N] -o DIR (--coordinator ADDR | --db FILE): writes a trial's
// stored artifact (the final trial's by default: its adapter in PEFT's layout, metrics.json) plus a
// README.md of how it was trained and how to load it. With --db it reads the results database
// and the artifact folder beside it directly, so it works with the coordinator gone. Every file is
// checked against its recorded sha256 on the way; DIR appears only when complete.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "cli/client.h"
#include "cli/commands.h"
#include "db/results_store.h"
#include "rpc/grpc_status.h"
#include "server/artifact_service.h"
#include "server/report/export_readme.h"
#include "transfer/artifact_files.h"

namespace hpsearch::cli {
namespace {

namespace fs = std::filesystem;

struct ExportFlags {
  std::string study;
  std::string db;
  ConnectionFlags connection;  // --coordinator, --auth-token-file, --tls-ca
  std::string out_dir;
  int trial = -1;
};

using NextChunk = std::function<absl::StatusOr<std::optional<v1::ArtifactChunk>>()>;

// Feeds a chunk stream into `stage`, checking it as an upload is checked.
absl::StatusOr<std::vector<transfer::ArtifactFile>> Assemble(const NextChunk& next,
                                                             const std::string& stage) {
  transfer::ArtifactAssembler assembler(stage);
  while (true) {
    absl::StatusOr<std::optional<v1::ArtifactChunk>> chunk = next();
    if (!chunk.ok()) return chunk.status();
    if (!chunk->has_value()) break;
    if (absl::Status status = assembler.Add(**chunk); !status.ok()) return status;
  }
  return assembler.Finish();
}

int TrialNumber(const ExportFlags& flags, const v1::Study& study) {
  if (flags.trial >= 0) return flags.trial;
  return study.has_final_trial_number() ? study.final_trial_number() : -1;
}

// From the results database and the stored folder (no coordinator).
absl::Status ExportFromDatabase(const ExportFlags& flags, const std::string& stage,
                                server::ExportedArtifact* exported) {
  db::DatabaseOptions options;
  options.read_only = true;
  absl::StatusOr<std::unique_ptr<db::ResultsStore>> store =
      db::ResultsStore::Open(flags.db, options);
  if (!store.ok()) return store.status();
  absl::StatusOr<db::StoredStudy> stored = (*store)->LoadStudy(flags.study);
  if (!stored.ok()) return stored.status();
  exported->study = stored->study;
  const int number = TrialNumber(flags, stored->study);
  if (number < 0) {
    return absl::NotFoundError(
        absl::StrCat("study '", flags.study, "' has no final trial yet: name one with --trial N"));
  }
  if (number >= static_cast<int>(stored->trials.size())) {
    return absl::NotFoundError(absl::StrCat("study '", flags.study, "' has no trial ", number));
  }
  const db::StoredTrial& trial = stored->trials[number];
  exported->trial = trial.trial;
  absl::StatusOr<std::optional<db::ArtifactRecord>> record =
      (*store)->LoadArtifact(trial.trial_id, 0);
  if (!record.ok()) return record.status();
  if (!record->has_value()) {
    return absl::NotFoundError(absl::StrCat("trial ", number, " of study '", flags.study,
                                            "' has no stored artifact in ", flags.db,
                                            " (artifacts are uploaded when a trial completes)"));
  }
  exported->attempt = (*record)->attempt;
  std::vector<transfer::ArtifactFile> files;
  for (const db::ArtifactFileRecord& f : (*record)->files)
    files.push_back({f.name, f.bytes, f.sha256});
  transfer::ArtifactChunkReader reader(server::ResolveArtifactDir(flags.db, (*record)->dir), files);
  absl::StatusOr<std::vector<transfer::ArtifactFile>> copied =
      Assemble([&reader] { return reader.Next(); }, stage);
  if (!copied.ok()) return copied.status();
  exported->files = std::move(*copied);
  return absl::OkStatus();
}

// From a running coordinator (GetStudy, GetTrial, GetArtifact).
absl::Status ExportFromCoordinator(const ExportFlags& flags, const std::string& stage,
                                   server::ExportedArtifact* exported) {
  absl::StatusOr<CoordinatorConnection> connection = CoordinatorConnection::Open(flags.connection);
  if (!connection.ok()) return connection.status();
  v1::StudyService::Stub* stub = connection->studies();
  v1::GetStudyRequest get_study;
  get_study.set_study(flags.study);
  auto context = CallContext();
  if (grpc::Status s = stub->GetStudy(context.get(), get_study, &exported->study); !s.ok()) {
    return rpc::FromGrpcStatus(s);
  }
  const int number = TrialNumber(flags, exported->study);
  if (number < 0) {
    return absl::NotFoundError(
        absl::StrCat("study '", flags.study, "' has no final trial yet: name one with --trial N"));
  }
  v1::GetTrialRequest get_trial;
  get_trial.set_study(exported->study.id());
  get_trial.set_number(number);
  auto trial_context = CallContext();
  if (grpc::Status s = stub->GetTrial(trial_context.get(), get_trial, &exported->trial); !s.ok()) {
    return rpc::FromGrpcStatus(s);
  }
  exported->attempt = exported->trial.attempt();
  grpc::ClientContext stream_context;
  v1::GetArtifactRequest request;
  request.set_study(exported->study.id());
  request.set_trial_number(number);
  std::unique_ptr<grpc::ClientReader<v1::ArtifactChunk>> reader =
      stub->GetArtifact(&stream_context, request);
  bool ended = false;
  absl::StatusOr<std::vector<transfer::ArtifactFile>> files = Assemble(
      [&]() -> absl::StatusOr<std::optional<v1::ArtifactChunk>> {
        v1::ArtifactChunk chunk;
        if (!ended && reader->Read(&chunk)) return chunk;
        ended = true;
        return std::nullopt;
      },
      stage);
  grpc::Status status = ended ? reader->Finish() : grpc::Status::OK;
  if (!ended) {
    stream_context.TryCancel();
    reader->Finish();
  }
  if (!status.ok())
    return rpc::FromGrpcStatus(status);  // the coordinator's reason beats "truncated"
  if (!files.ok()) return files.status();
  exported->files = std::move(*files);
  return absl::OkStatus();
}

int RunExport(const ExportFlags& flags) {
  const fs::path out(flags.out_dir);
  std::error_code error;
  if (fs::exists(out, error) && !(fs::is_directory(out, error) && fs::is_empty(out, error))) {
    std::cerr << "hpsearch export: " << flags.out_dir
              << " exists and is not an empty folder: name a new one with -o\n";
    return kExitBadInput;
  }
  const fs::path parent = fs::absolute(out).parent_path();
  fs::create_directories(parent, error);
  const fs::path stage =
      parent / absl::StrCat(".", out.filename().string(), ".export-", ::getpid());
  fs::remove_all(stage, error);
  fs::create_directories(stage, error);
  if (error) {
    std::cerr << "hpsearch export: cannot create " << stage.string() << ": " << error.message()
              << "\n";
    return kExitFailure;
  }
  server::ExportedArtifact exported;
  absl::Status status = flags.db.empty() ? ExportFromCoordinator(flags, stage.string(), &exported)
                                         : ExportFromDatabase(flags, stage.string(), &exported);
  if (status.ok()) {
    exported.dir = flags.out_dir;
    std::ofstream readme(stage / "README.md");
    readme << server::RenderExportReadme(exported);
    readme.close();
    if (!readme) status = absl::InternalError("cannot write " + (stage / "README.md").string());
  }
  if (status.ok()) {
    if (fs::exists(out, error)) fs::remove(out, error);  // the empty folder the user made
    fs::rename(stage, out, error);
    if (error)
      status = absl::InternalError("cannot move the export into place: " + error.message());
  }
  if (!status.ok()) {
    fs::remove_all(stage, error);
    std::cerr << "hpsearch export: " << status.message() << "\n";
    return status.code() == absl::StatusCode::kInvalidArgument ? kExitBadInput : kExitFailure;
  }
  std::cout << "exported trial " << exported.trial.number() << " of study "
            << exported.study.spec().name() << " (" << exported.files.size() << " files) to "
            << flags.out_dir << "\n"
            << "  try: hpsearch-core predict --adapter " << flags.out_dir
            << " --input texts.jsonl   (see " << flags.out_dir << "/README.md)\n";
  return kExitOk;
}

}  // namespace

void RegisterExportCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<ExportFlags>();
  CLI::App* cmd = app.add_subcommand(
      "export", "Write a trial's trained adapter (default: the final trial's) and a README");
  cmd->add_option("study", flags->study, "Study id or name")->required();
  cmd->add_option("--trial", flags->trial, "Trial number (default: the study's final trial)");
  cmd->add_option("-o,--output", flags->out_dir, "New (or empty) output folder")->required();
  auto* db = cmd->add_option("--db", flags->db,
                             "Read this results database and its artifacts folder directly");
  AddConnectionOptions(cmd, &flags->connection);  // ask a coordinator instead
  db->excludes(cmd->get_option("--coordinator"));
  cmd->callback([flags, exit_code] { *exit_code = RunExport(*flags); });
}

}  // namespace hpsearch::cli
