// What the client commands share: how they reach the coordinator (address, TLS, auth token), a
// StudyService stub, and printing a failed call the same way everywhere.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "hpsearch/v1/service.grpc.pb.h"
#include "rpc/security.h"

namespace hpsearch::cli {

// The connection flags every client command takes, as given (empty: not given).
struct ConnectionFlags {
  std::string address;          // --coordinator
  std::string auth_token_file;  // --auth-token-file
  std::string tls_ca;           // --tls-ca
};

// Adds --coordinator, --auth-token-file and --tls-ca to a command.
void AddConnectionOptions(CLI::App* command, ConnectionFlags* flags);

// The coordinator address: the flag, else $HPSEARCH_COORDINATOR, else 127.0.0.1:50051.
std::string CoordinatorAddress(const std::string& flag);

// A channel to the coordinator with the command's TLS and token settings. Cheap to move; the stub
// is thread-safe.
class CoordinatorConnection {
 public:
  // Resolves the address and the security files (flags, else HPSEARCH_AUTH_TOKEN_FILE and
  // HPSEARCH_TLS_CA) and creates the channel (it connects on the first call). Fails when a file is
  // missing or unusable, naming it; prints the token file's warnings to stderr.
  static absl::StatusOr<CoordinatorConnection> Open(const ConnectionFlags& flags);

  const std::string& address() const { return address_; }
  v1::StudyService::Stub* studies() const { return studies_.get(); }
  // The channel under the stub, for other services on the same connection (health checking).
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

  // Prints "hpsearch COMMAND: <code>: message" (with a hint on reaching the coordinator when the
  // call could not) and returns the exit code.
  int ReportFailure(const std::string& command, const grpc::Status& status) const;
  // "is `hpsearch serve` running at ADDR? ...": what to check when a call could not reach it.
  std::string UnreachableHint() const;

 private:
  std::string address_;
  rpc::ClientSecurity security_;
  std::shared_ptr<grpc::Channel> channel_;
  std::shared_ptr<v1::StudyService::Stub> studies_;
};

// Opens the connection of `flags`, or prints why it cannot be opened ("hpsearch COMMAND: ...") and
// sets *exit_code to kExitBadInput.
std::optional<CoordinatorConnection> OpenConnection(const std::string& command,
                                                    const ConnectionFlags& flags, int* exit_code);

// A context with a deadline for unary calls.
std::unique_ptr<grpc::ClientContext> CallContext(int seconds = 30);

// Lower-case state words ("complete") and short parameter text ("learning_rate=0.000462
// batch_size=8").
std::string StateWord(v1::TrialState state);
std::string StateWord(v1::StudyState state);
std::string ParamsText(const google::protobuf::RepeatedPtrField<v1::ParamAssignment>& params);
std::string ValueText(const v1::ParamValue& value);
// "42s", "25m10s", "1h02m".
std::string DurationText(double seconds);
// A running trial's progress: its worker's step progress when there is one ("epoch 2/4 step
// 120/400 [###.......] 30%, 41.2 samples/s, ETA 1m20s"), else what its reported epochs say; "" when
// it is not running.
std::string TrialProgressText(const v1::StudySpec& spec, const v1::Trial& trial, absl::Time now);
// The value in full: a double as the shortest text that reads back as the same double.
std::string FullValueText(const v1::ParamValue& value);
std::string FullDoubleText(double value);

}  // namespace hpsearch::cli
