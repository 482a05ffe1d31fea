// hpsearch trials STUDY [--format table|csv|json]: every trial of a study with its parameters,
// state and objective.
#include <google/protobuf/util/json_util.h>

#include <iostream>
#include <set>

#include "absl/strings/str_format.h"
#include "cli/client.h"
#include "cli/commands.h"

namespace hpsearch::cli {
namespace {

std::string CsvField(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

int RunTrials(const CoordinatorConnection& connection, const std::string& study,
              const std::string& format) {
  if (format != "table" && format != "csv" && format != "json") {
    std::cerr << "hpsearch trials: --format " << format << " is unknown: use table, csv or json\n";
    return kExitBadInput;
  }
  auto* stub = connection.studies();
  v1::ListTrialsRequest request;
  request.set_study(study);
  v1::ListTrialsResponse response;
  auto context = CallContext();
  grpc::Status status = stub->ListTrials(context.get(), request, &response);
  if (!status.ok()) return connection.ReportFailure("trials", status);
  if (format == "json") {
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
    std::vector<std::string> names;
    for (const v1::Trial& t : response.trials()) {
      for (const v1::ParamAssignment& p : t.params()) {
        if (std::find(names.begin(), names.end(), p.name()) == names.end())
          names.push_back(p.name());
      }
    }
    std::cout << "number,kind,state,attempt,seed,objective_value,epochs";
    for (const std::string& name : names) std::cout << "," << name;
    std::cout << ",worker_id,error\n";
    for (const v1::Trial& t : response.trials()) {
      std::cout << t.number() << "," << (t.kind() == v1::TRIAL_KIND_FINAL ? "final" : "search")
                << "," << StateWord(t.state()) << "," << t.attempt() << "," << t.seed() << ","
                << (t.has_objective_value() ? absl::StrFormat("%.17g", t.objective_value()) : "")
                << "," << t.epochs_size();
      for (const std::string& name : names) {
        std::string value;
        for (const v1::ParamAssignment& p : t.params()) {
          if (p.name() == name) value = ValueText(p.value());
        }
        std::cout << "," << CsvField(value);
      }
      std::cout << "," << CsvField(t.worker_id()) << "," << CsvField(t.error()) << "\n";
    }
    return kExitOk;
  }
  std::cout << absl::StrFormat("%5s %-6s %-9s %7s %6s %10s  %s\n", "trial", "kind", "state",
                               "attempt", "epochs", "objective", "params / error");
  for (const v1::Trial& t : response.trials()) {
    std::string tail = ParamsText(t.params());
    if (t.state() == v1::TRIAL_STATE_FAILED && !t.error().empty()) {
      tail += "  error: " + t.error().substr(0, t.error().find('\n'));
    }
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
  auto connection = std::make_shared<ConnectionFlags>();
  auto study = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("table");
  CLI::App* cmd = app.add_subcommand("trials", "List a study's trials");
  cmd->add_option("study", *study, "Study id or name")->required();
  cmd->add_option("--format", *format, "table, csv or json")->capture_default_str();
  AddConnectionOptions(cmd, connection.get());
  cmd->callback([=] {
    if (auto opened = OpenConnection("trials", *connection, exit_code)) {
      *exit_code = RunTrials(*opened, *study, *format);
    }
  });
}

}  // namespace hpsearch::cli
