// hpsearch trials STUDY [--format table|csv|json] [--db FILE]: every trial of a study with its
// parameters, state and objective, from the coordinator or the results database alone.
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <iostream>
#include <set>

#include "absl/strings/str_format.h"
#include "cli/client.h"
#include "cli/commands.h"
#include "cli/study_source.h"
#include "server/report/report_format.h"

namespace hpsearch::cli {
namespace {

std::string TrialsCsvField(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

int RunTrials(const StudySource& source, const std::string& study, const std::string& format) {
  if (format != "table" && format != "csv" && format != "json") {
    std::cerr << "hpsearch trials: --format " << format << " is unknown: use table, csv or json\n";
    return kExitBadInput;
  }
  absl::StatusOr<StudyAndTrials> loaded = LoadStudyFrom(source, study);
  if (!loaded.ok()) return ReportLoadError("trials", loaded.status());
  const std::vector<v1::Trial>& trials = loaded->trials;
  if (format == "json") {
    v1::ListTrialsResponse response;
    for (const v1::Trial& t : trials) *response.add_trials() = t;
    google::protobuf::util::JsonPrintOptions options;
    options.preserve_proto_field_names = true;
    options.add_whitespace = true;
    std::string json;
    if (!google::protobuf::util::MessageToJsonString(response, &json, options).ok()) {
      std::cerr << "hpsearch trials: cannot print the trials as JSON\n";
      return kExitFailure;
    }
    std::cout << json << "\n";
    return kExitOk;
  }
  if (format == "csv") {
    // Searched parameters are prefixed `param_` so that none can collide with a fixed column (a
    // searched `epochs` beside the count of epochs reported); numbers are written in full.
    std::vector<std::string> names;
    for (const v1::Trial& t : trials) {
      for (const v1::ParamAssignment& p : t.params()) {
        if (std::find(names.begin(), names.end(), p.name()) == names.end())
          names.push_back(p.name());
      }
    }
    std::cout << "number,kind,state,attempt,seed,objective_value,epochs_reported";
    for (const std::string& name : names) std::cout << ",param_" << name;
    std::cout << ",worker_id,error,prune_rule,prune_epoch,prune_value,prune_threshold\n";
    for (const v1::Trial& t : trials) {
      std::cout << t.number() << "," << (t.kind() == v1::TRIAL_KIND_FINAL ? "final" : "search")
                << "," << StateWord(t.state()) << "," << t.attempt() << "," << t.seed() << ","
                << (t.has_objective_value() ? FullDoubleText(t.objective_value()) : "") << ","
                << t.epochs_size();
      for (const std::string& name : names) {
        std::string value;
        for (const v1::ParamAssignment& p : t.params()) {
          if (p.name() == name) value = FullValueText(p.value());
        }
        std::cout << "," << TrialsCsvField(value);
      }
      std::cout << "," << TrialsCsvField(t.worker_id()) << "," << TrialsCsvField(t.error());
      if (t.has_prune_reason()) {
        const v1::PruneReason& reason = t.prune_reason();
        std::cout << "," << TrialsCsvField(reason.rule()) << "," << reason.epoch() << ","
                  << FullDoubleText(reason.value()) << "," << FullDoubleText(reason.threshold());
      } else {
        std::cout << ",,,,";
      }
      std::cout << "\n";
    }
    return kExitOk;
  }
  std::cout << absl::StrFormat("%5s %-6s %-9s %7s %6s %10s  %s\n", "trial", "kind", "state",
                               "attempt", "epochs", "objective", "params / error");
  for (const v1::Trial& t : trials) {
    std::string tail = ParamsText(t.params());
    if (t.state() == v1::TRIAL_STATE_FAILED && !t.error().empty()) {
      tail += "  error: " + t.error().substr(0, t.error().find('\n'));
    }
    if (t.has_prune_reason()) tail += "  pruned: " + server::PruneReasonText(t.prune_reason());
    const std::string progress = TrialProgressText(loaded->study.spec(), t, absl::Now());
    if (!progress.empty()) tail += "  [" + progress + "]";
    std::cout << absl::StrFormat(
        "%5d %-6s %-9s %7d %6d %10s  %s\n", t.number(),
        t.kind() == v1::TRIAL_KIND_FINAL ? "final" : "search", StateWord(t.state()), t.attempt(),
        t.epochs_size(),
        t.has_objective_value() ? absl::StrFormat("%.4f", t.objective_value()) : "-", tail);
  }
  return kExitOk;
}

}  // namespace

void RegisterTrialsCommand(CLI::App& app, int* exit_code) {
  auto source = std::make_shared<StudySource>();
  auto study = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("table");
  CLI::App* cmd = app.add_subcommand("trials", "List a study's trials");
  cmd->add_option("study", *study, "Study id or name")->required();
  cmd->add_option("--format", *format, "table, csv or json")->capture_default_str();
  AddStudySourceOptions(cmd, source.get());
  cmd->callback([=] { *exit_code = RunTrials(*source, *study, *format); });
}

}  // namespace hpsearch::cli
