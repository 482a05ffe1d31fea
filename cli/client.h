// What the client commands share: the coordinator address (flag, else $HPSEARCH_COORDINATOR, else
// 127.0.0.1:50051), a StudyService stub, and printing a failed call the same way everywhere.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "CLI/CLI.hpp"
#include "hpsearch/v1/service.grpc.pb.h"

namespace hpsearch::cli {

std::string CoordinatorAddress(const std::string& flag);

// Adds --coordinator to a command.
void AddCoordinatorOption(CLI::App* command, std::string* address);

std::unique_ptr<v1::StudyService::Stub> StudyStub(const std::string& address);

// Prints "hpsearch COMMAND: <code>: message (coordinator ADDRESS)" and returns the exit code.
int ReportCallFailure(const std::string& command, const std::string& address,
                      const grpc::Status& status);

// A context with a deadline for unary calls.
std::unique_ptr<grpc::ClientContext> CallContext(int seconds = 30);

// Lower-case state words ("complete") and short parameter text ("learning_rate=0.000462
// batch_size=8").
std::string StateWord(v1::TrialState state);
std::string StateWord(v1::StudyState state);
std::string ParamsText(const google::protobuf::RepeatedPtrField<v1::ParamAssignment>& params);
std::string ValueText(const v1::ParamValue& value);

}  // namespace hpsearch::cli
