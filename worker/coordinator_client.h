// CoordinatorClient: the worker's calls to WorkerService, each with a deadline and, for transient
// failures (coordinator restarting, network down: UNAVAILABLE, DEADLINE_EXCEEDED), retries with
// exponential backoff until `retry_window` has passed or `should_stop` says so, logging a warning
// when a call starts retrying. Other errors (UNAUTHENTICATED: a wrong auth token) come back at once
// as absl::Status (the gRPC code and message unchanged). ReportEpoch and CompleteTrial travel as
// messages on one long-lived stream (worker/report_stream.h), with the same retries and errors as a
// call; against a coordinator without that stream they fall back to the unary calls.
//
// Thread-safety: thread-safe (gRPC stubs are); the heartbeat thread and the trial thread share one
// client.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "hpsearch/v1/service.grpc.pb.h"
#include "rpc/security.h"
#include "worker/report_stream.h"

namespace hpsearch::worker {

struct ClientOptions {
  // Per-call deadline (AcquireTrial adds its long-poll wait to it).
  absl::Duration call_timeout = absl::Seconds(10);
  // How long a call keeps retrying transient failures. Long enough to ride out a coordinator
  // restart.
  absl::Duration retry_window = absl::Minutes(10);
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
  // Where the retry window and the report stream's reply timeout are measured; nullptr: the system
  // clock. Backoff sleeps and gRPC deadlines are real time. Not owned; must outlive the client.
  Clock* clock = nullptr;
};

class CoordinatorClient {
 public:
  // A channel to `address` with `security`'s TLS setting and auth token.
  CoordinatorClient(const std::string& address, const rpc::ClientSecurity& security,
                    ClientOptions options);
  // Shares an existing channel (one connection for all of a worker's calls).
  CoordinatorClient(std::shared_ptr<grpc::Channel> channel, ClientOptions options);

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

  // Retries stop early (returning the last error) once this returns true, e.g. on SIGTERM.
  void set_should_stop(std::function<bool()> should_stop) { should_stop_ = std::move(should_stop); }

  absl::StatusOr<v1::RegisterResponse> Register(const v1::RegisterRequest& request);
  absl::StatusOr<v1::AcquireTrialResponse> AcquireTrial(const v1::AcquireTrialRequest& request);
  // Cancels the AcquireTrial long-poll in flight, if any (it then returns CANCELLED).
  void CancelAcquire();
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request);
  absl::StatusOr<v1::ReportEpochResponse> ReportEpoch(const v1::ReportEpochRequest& request);
  absl::StatusOr<v1::ReportResultResponse> ReportResult(const v1::ReportResultRequest& request);
  absl::StatusOr<v1::CompleteTrialResponse> CompleteTrial(const v1::CompleteTrialRequest& request);
  absl::StatusOr<v1::FailTrialResponse> FailTrial(const v1::FailTrialRequest& request);
  absl::StatusOr<v1::ReportEventResponse> ReportEvent(const v1::ReportEventRequest& request);
  // Uploads every file under `dir` as the artifact of the trial `lease_id` (held by `worker_id`)
  // holds (chunked, each file's sha256 in its last chunk). A transient failure re-sends the whole
  // stream; the coordinator treats a repeat of a stored upload as a duplicate.
  absl::StatusOr<v1::UploadArtifactResponse> UploadArtifact(const std::string& lease_id,
                                                            const std::string& worker_id,
                                                            const std::string& dir);
  // Downloads the stored artifact of trial `trial_number` of `study` (id or name; GetArtifact of
  // the StudyService on the same channel) into `dir`, which is emptied first; every file's sha256
  // is checked. A transient failure starts the download over.
  absl::Status FetchArtifact(const std::string& study, int trial_number, const std::string& dir);

 private:
  // Runs `attempt` until it succeeds, fails for good, or retries run out (see the file comment);
  // errors are prefixed with `name`.
  template <typename Response, typename Attempt>
  absl::StatusOr<Response> Retrying(const char* name, Attempt attempt);
  // One unary call of `method`, retried.
  template <typename Request, typename Response, typename Method>
  absl::StatusOr<Response> Call(const char* name, const Request& request, Method method,
                                absl::Duration extra_deadline = absl::ZeroDuration(),
                                bool cancellable = false);
  // `r` as the `request_field` of a report-stream message, retried like a call, its reply's
  // `reply_field`; the unary `method` once the coordinator turned out to lack the stream.
  template <typename Request, typename Response, typename Method>
  absl::StatusOr<Response> Report(const char* name, const Request& r, Method method,
                                  Request* (v1::ReportStreamRequest::*request_field)(),
                                  Response* (v1::ReportStreamReply::*reply_field)());

  absl::Mutex acquire_mu_;
  grpc::ClientContext* acquire_context_ ABSL_GUARDED_BY(acquire_mu_) = nullptr;
  bool acquire_cancelled_ ABSL_GUARDED_BY(acquire_mu_) = false;

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::WorkerService::Stub> stub_;
  // Said once when a call starts retrying: how this client connects (TLS or not) and what to check.
  std::string connection_hint_;
  ClientOptions options_;
  ClockOrReal clock_{options_.clock};  // after options_
  std::function<bool()> should_stop_;
  // Carries ReportEpoch and CompleteTrial unless the coordinator turned out to lack it.
  std::unique_ptr<ReportStream> report_stream_;
  std::atomic<bool> report_stream_unsupported_{false};
};

// True for the gRPC failures a retry may cure.
bool IsTransient(const absl::Status& status);

}  // namespace hpsearch::worker
