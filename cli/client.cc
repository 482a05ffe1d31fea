#include "cli/client.h"

#include <cstdlib>
#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"

namespace hpsearch::cli {

std::string CoordinatorAddress(const std::string& flag) {
  if (!flag.empty()) return flag;
  const char* env = std::getenv("HPSEARCH_COORDINATOR");
  if (env != nullptr && *env != '\0') return env;
  return "127.0.0.1:50051";
}

void AddCoordinatorOption(CLI::App* command, std::string* address) {
  command->add_option(
      "--coordinator", *address,
      "Coordinator host:port (default: $HPSEARCH_COORDINATOR, else 127.0.0.1:50051)");
}

std::unique_ptr<v1::StudyService::Stub> StudyStub(const std::string& address) {
  return v1::StudyService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

int ReportCallFailure(const std::string& command, const std::string& address,
                      const grpc::Status& status) {
  static const char* kNames[] = {"OK",
                                 "CANCELLED",
                                 "UNKNOWN",
                                 "INVALID_ARGUMENT",
                                 "DEADLINE_EXCEEDED",
                                 "NOT_FOUND",
                                 "ALREADY_EXISTS",
                                 "PERMISSION_DENIED",
                                 "RESOURCE_EXHAUSTED",
                                 "FAILED_PRECONDITION",
                                 "ABORTED",
                                 "OUT_OF_RANGE",
                                 "UNIMPLEMENTED",
                                 "INTERNAL",
                                 "UNAVAILABLE",
                                 "DATA_LOSS",
                                 "UNAUTHENTICATED"};
  int code = status.error_code();
  std::cerr << "hpsearch " << command << ": " << (code >= 0 && code <= 16 ? kNames[code] : "?")
            << ": " << status.error_message();
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    std::cerr << " (is `hpsearch serve` running at " << address
              << "? set --coordinator or HPSEARCH_COORDINATOR)";
  }
  std::cerr << "\n";
  return status.error_code() == grpc::StatusCode::INVALID_ARGUMENT ? 2 : 1;
}

std::unique_ptr<grpc::ClientContext> CallContext(int seconds) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return context;
}

std::string StateWord(v1::TrialState state) {
  std::string name = v1::TrialState_Name(state).substr(sizeof("TRIAL_STATE_") - 1);
  return absl::AsciiStrToLower(name);
}

std::string StateWord(v1::StudyState state) {
  std::string name = v1::StudyState_Name(state).substr(sizeof("STUDY_STATE_") - 1);
  return absl::AsciiStrToLower(name);
}

std::string ValueText(const v1::ParamValue& value) {
  switch (value.kind_case()) {
    case v1::ParamValue::kDoubleValue:
      return absl::StrFormat("%.6g", value.double_value());
    case v1::ParamValue::kIntValue:
      return std::to_string(value.int_value());
    case v1::ParamValue::kBoolValue:
      return value.bool_value() ? "true" : "false";
    default:
      return value.string_value();
  }
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
