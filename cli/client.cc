#include "cli/client.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/commands.h"
#include "rpc/grpc_status.h"
#include "server/report/report_format.h"
#include "server/report/study_progress.h"
#include "server/study_file/study_view.h"

namespace hpsearch::cli {

std::string CoordinatorAddress(const std::string& flag) {
  if (!flag.empty()) return flag;
  const char* env = std::getenv("HPSEARCH_COORDINATOR");
  if (env != nullptr && *env != '\0') return env;
  return "127.0.0.1:50051";
}

void AddConnectionOptions(CLI::App* command, ConnectionFlags* flags) {
  command->add_option(
      "--coordinator", flags->address,
      "Coordinator host:port (default: $HPSEARCH_COORDINATOR, else 127.0.0.1:50051)");
  command->add_option("--auth-token-file", flags->auth_token_file,
                      "File holding the coordinator's shared secret (default: "
                      "$HPSEARCH_AUTH_TOKEN_FILE)");
  command->add_option("--tls-ca", flags->tls_ca,
                      "PEM CA certificate that signed the coordinator's TLS certificate; set: "
                      "connect with TLS (default: $HPSEARCH_TLS_CA)");
}

absl::StatusOr<CoordinatorConnection> CoordinatorConnection::Open(const ConnectionFlags& flags) {
  rpc::ClientSecurityOptions options;
  options.auth_token_file = flags.auth_token_file;
  options.tls_ca_file = flags.tls_ca;
  absl::StatusOr<rpc::ClientSecurity> security =
      rpc::LoadClientSecurity(rpc::WithEnvironmentDefaults(options));
  if (!security.ok()) return security.status();
  for (const std::string& warning : security->warnings) {
    std::cerr << "hpsearch: warning: " << warning << "\n";
  }
  CoordinatorConnection connection;
  connection.address_ = CoordinatorAddress(flags.address);
  connection.security_ = *std::move(security);
  connection.channel_ = rpc::CreateChannel(connection.address_, connection.security_);
  connection.studies_ = v1::StudyService::NewStub(connection.channel_);
  return connection;
}

std::optional<CoordinatorConnection> OpenConnection(const std::string& command,
                                                    const ConnectionFlags& flags, int* exit_code) {
  absl::StatusOr<CoordinatorConnection> connection = CoordinatorConnection::Open(flags);
  if (!connection.ok()) {
    std::cerr << "hpsearch " << command << ": " << connection.status().message() << "\n";
    *exit_code = kExitBadInput;
    return std::nullopt;
  }
  return *std::move(connection);
}

int CoordinatorConnection::ReportFailure(const std::string& command,
                                         const grpc::Status& status) const {
  std::cerr << "hpsearch " << command << ": " << rpc::GrpcCodeName(status.error_code()) << ": "
            << status.error_message();
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    std::cerr << " (" << UnreachableHint() << ")";
  }
  std::cerr << "\n";
  return status.error_code() == grpc::StatusCode::INVALID_ARGUMENT ? 2 : 1;
}

std::string CoordinatorConnection::UnreachableHint() const {
  return "is `hpsearch serve` running at " + address_ +
         "? set --coordinator or HPSEARCH_COORDINATOR; " + rpc::ConnectionHint(security_);
}

std::unique_ptr<grpc::ClientContext> CallContext(int seconds) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return context;
}

std::string StateWord(v1::TrialState state) { return server::TrialStateWord(state); }

std::string StateWord(v1::StudyState state) {
  return server::EnumWord(v1::StudyState_Name(state), "STUDY_STATE_");
}

std::string ValueText(const v1::ParamValue& value) { return server::ParamValueText(value, 6); }

std::string FullDoubleText(double value) {
  char buffer[64];
  std::to_chars_result result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

std::string FullValueText(const v1::ParamValue& value) {
  if (value.kind_case() == v1::ParamValue::kDoubleValue)
    return FullDoubleText(value.double_value());
  return server::ParamValueText(value, 17);
}

std::string DurationText(double seconds) {
  const int64_t s = static_cast<int64_t>(seconds < 0 ? 0 : seconds);
  if (s >= 3600) return absl::StrFormat("%dh%02dm", s / 3600, s / 60 % 60);
  return s >= 60 ? absl::StrFormat("%dm%02ds", s / 60, s % 60) : absl::StrFormat("%ds", s);
}

std::string TrialProgressText(const v1::StudySpec& spec, const v1::Trial& t, absl::Time now) {
  if (t.state() != v1::TRIAL_STATE_RUNNING) return "";
  if (t.has_progress() && t.progress().total_steps() > 0) {
    const v1::TrialProgress& p = t.progress();
    const int64_t percent = std::clamp<int64_t>(100 * p.step() / p.total_steps(), 0, 100);
    std::string bar(10, '.');
    std::fill(bar.begin(), bar.begin() + percent / 10, '#');
    std::string text = absl::StrFormat("epoch %d%s step %d/%d [%s] %d%%", p.epoch(),
                                       p.epochs() > 0 ? absl::StrCat("/", p.epochs()) : "",
                                       p.step(), p.total_steps(), bar, percent);
    if (p.samples_per_second() > 0) {
      absl::StrAppendFormat(&text, ", %.1f samples/s", p.samples_per_second());
    }
    if (std::optional<double> left = server::TrialRemainingSeconds(spec, t, now); left && *left > 0)
      absl::StrAppend(&text, ", ETA ", DurationText(*left));
    return text;
  }
  const std::optional<int> last = server::TrialLastEpoch(spec, t.params());
  const double running_for =
      t.started_unix_ms() > 0
          ? absl::ToDoubleSeconds(now - absl::FromUnixMillis(t.started_unix_ms()))
          : 0;
  if (t.epochs_size() == 0) {
    return absl::StrFormat("epoch 1%s, running %s", last ? absl::StrCat("/", *last) : "",
                           DurationText(running_for));
  }
  const v1::EpochMetrics& e = t.epochs(t.epochs_size() - 1);
  std::string text =
      absl::StrFormat("epoch %d%s done", e.epoch(), last ? absl::StrCat("/", *last) : "");
  if (e.samples_per_second() > 0)
    absl::StrAppendFormat(&text, ", %.1f samples/s", e.samples_per_second());
  if (std::optional<double> left = server::TrialRemainingSeconds(spec, t, now); left && *left > 0)
    absl::StrAppend(&text, ", ETA ", DurationText(*left));
  return text;
}

std::string ParamsText(const google::protobuf::RepeatedPtrField<v1::ParamAssignment>& params) {
  std::string text;
  for (const v1::ParamAssignment& param : params) {
    if (!text.empty()) text += " ";
    text += param.name() + "=" + ValueText(param.value());
  }
  return text;
}

}  // namespace hpsearch::cli
