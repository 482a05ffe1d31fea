// The coordinator's gRPC front: StudyService and WorkerService with the callback API. Each method
// is a thin reactor that calls the Coordinator and finishes with ToGrpcStatus(); AcquireTrial
// long-polls through AcquireLongPoll and WatchStudy streams the coordinator's events with one write
// in flight.
//
// CoordinatorServer bundles the services, the gRPC server and the maintenance thread that calls
// Coordinator::Tick(). Ownership: it owns all of these; the Coordinator must outlive it.
// Every method of both services first checks the call's auth token (rpc::TokenChecker) and refuses
// it with UNAUTHENTICATED before anything else runs; a method added later must do the same (a test
// calls every method of both services without a token). The server also answers gRPC's standard
// health check (grpc.health.v1.Health, for "" and both services) without a token: SERVING while it
// runs, NOT_SERVING once Shutdown() began.
// Thread-safety: Shutdown() may be called from any thread, once.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "hpsearch/v1/service.grpc.pb.h"
#include "rpc/auth_token.h"
#include "server/acquire_long_poll.h"
#include "server/artifact_service.h"
#include "server/coordinator.h"

namespace hpsearch::server {

struct ServerOptions {
  // host:port to listen on; port 0 picks a free one (see CoordinatorServer::port()).
  std::string listen_address = "127.0.0.1:50051";
  // The longest AcquireTrial long-poll; longer client requests are cut to it.
  absl::Duration max_acquire_wait = absl::Seconds(30);
  // How often leases, timeouts and time limits are checked. Expiry is at most this late.
  absl::Duration tick_interval = absl::Milliseconds(200);
  // How often the ticker hands the heap's free pages back to the operating system (glibc's
  // malloc_trim). Requests allocate and free in many threads' arenas between the long-lived trial
  // records, so without it the resident size follows the heap's high-water mark and fragments, not
  // what the coordinator holds (docs/reliability.md, "Soak"). Zero: never.
  absl::Duration trim_interval = absl::Seconds(10);
  // Transport credentials (rpc::LoadServerSecurity); null: plaintext.
  std::shared_ptr<grpc::ServerCredentials> credentials;
  // The token every call must carry; empty: none is required.
  std::string auth_token;
  // Where uploaded artifacts are stored, and their limits.
  ArtifactServiceOptions artifacts;
};

class StudyServiceImpl final : public v1::StudyService::CallbackService {
 public:
  // `auth` must outlive the service.
  StudyServiceImpl(Coordinator* coordinator, ArtifactService* artifacts,
                   const rpc::TokenChecker* auth)
      : coordinator_(coordinator), artifacts_(artifacts), auth_(auth) {}

  grpc::ServerUnaryReactor* SubmitStudy(grpc::CallbackServerContext* context,
                                        const v1::SubmitStudyRequest* request,
                                        v1::SubmitStudyResponse* response) override;
  grpc::ServerUnaryReactor* GetStudy(grpc::CallbackServerContext* context,
                                     const v1::GetStudyRequest* request,
                                     v1::Study* response) override;
  grpc::ServerUnaryReactor* ListStudies(grpc::CallbackServerContext* context,
                                        const v1::ListStudiesRequest* request,
                                        v1::ListStudiesResponse* response) override;
  grpc::ServerUnaryReactor* ListTrials(grpc::CallbackServerContext* context,
                                       const v1::ListTrialsRequest* request,
                                       v1::ListTrialsResponse* response) override;
  grpc::ServerUnaryReactor* GetTrial(grpc::CallbackServerContext* context,
                                     const v1::GetTrialRequest* request,
                                     v1::Trial* response) override;
  grpc::ServerWriteReactor<v1::StudyEvent>* WatchStudy(
      grpc::CallbackServerContext* context, const v1::WatchStudyRequest* request) override;
  grpc::ServerUnaryReactor* CancelStudy(grpc::CallbackServerContext* context,
                                        const v1::CancelStudyRequest* request,
                                        v1::Study* response) override;
  grpc::ServerUnaryReactor* Ask(grpc::CallbackServerContext* context, const v1::AskRequest* request,
                                v1::TrialSpec* response) override;
  grpc::ServerUnaryReactor* Tell(grpc::CallbackServerContext* context,
                                 const v1::TellRequest* request, v1::Trial* response) override;
  // In server/grpc_artifact_reactors.cc.
  grpc::ServerWriteReactor<v1::ArtifactChunk>* GetArtifact(
      grpc::CallbackServerContext* context, const v1::GetArtifactRequest* request) override;

 private:
  Coordinator* const coordinator_;
  ArtifactService* const artifacts_;
  const rpc::TokenChecker* const auth_;
};

class WorkerServiceImpl final : public v1::WorkerService::CallbackService {
 public:
  // `long_poll` and `auth` must outlive the service.
  WorkerServiceImpl(Coordinator* coordinator, AcquireLongPoll* long_poll,
                    absl::Duration max_acquire_wait, ArtifactService* artifacts,
                    const rpc::TokenChecker* auth)
      : coordinator_(coordinator),
        long_poll_(long_poll),
        max_acquire_wait_(max_acquire_wait),
        artifacts_(artifacts),
        auth_(auth) {}

  grpc::ServerUnaryReactor* Register(grpc::CallbackServerContext* context,
                                     const v1::RegisterRequest* request,
                                     v1::RegisterResponse* response) override;
  grpc::ServerUnaryReactor* AcquireTrial(grpc::CallbackServerContext* context,
                                         const v1::AcquireTrialRequest* request,
                                         v1::AcquireTrialResponse* response) override;
  grpc::ServerUnaryReactor* Heartbeat(grpc::CallbackServerContext* context,
                                      const v1::HeartbeatRequest* request,
                                      v1::HeartbeatResponse* response) override;
  grpc::ServerUnaryReactor* ReportEpoch(grpc::CallbackServerContext* context,
                                        const v1::ReportEpochRequest* request,
                                        v1::ReportEpochResponse* response) override;
  grpc::ServerUnaryReactor* ReportResult(grpc::CallbackServerContext* context,
                                         const v1::ReportResultRequest* request,
                                         v1::ReportResultResponse* response) override;
  grpc::ServerUnaryReactor* CompleteTrial(grpc::CallbackServerContext* context,
                                          const v1::CompleteTrialRequest* request,
                                          v1::CompleteTrialResponse* response) override;
  grpc::ServerUnaryReactor* FailTrial(grpc::CallbackServerContext* context,
                                      const v1::FailTrialRequest* request,
                                      v1::FailTrialResponse* response) override;
  // In server/grpc_report_stream.cc.
  grpc::ServerBidiReactor<v1::ReportStreamRequest, v1::ReportStreamReply>* ReportStream(
      grpc::CallbackServerContext* context) override;
  // In server/grpc_artifact_reactors.cc.
  grpc::ServerReadReactor<v1::ArtifactChunk>* UploadArtifact(
      grpc::CallbackServerContext* context, v1::UploadArtifactResponse* response) override;
  grpc::ServerUnaryReactor* ReportEvent(grpc::CallbackServerContext* context,
                                        const v1::ReportEventRequest* request,
                                        v1::ReportEventResponse* response) override;

 private:
  Coordinator* const coordinator_;
  AcquireLongPoll* const long_poll_;
  const absl::Duration max_acquire_wait_;
  ArtifactService* const artifacts_;
  const rpc::TokenChecker* const auth_;
};

class CoordinatorServer {
 public:
  // Starts listening and ticking. FAILED_PRECONDITION/UNAVAILABLE when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> Start(Coordinator* coordinator,
                                                                  const ServerOptions& options);
  ~CoordinatorServer();

  int port() const { return port_; }
  // Stops accepting calls, answers parked long-polls and joins the maintenance thread.
  void Shutdown();
  // Blocks until Shutdown() has been called.
  void Wait();

 private:
  explicit CoordinatorServer(Coordinator* coordinator, const ServerOptions& options);
  void TickLoop();

  Coordinator* const coordinator_;
  const ServerOptions options_;
  const rpc::TokenChecker auth_;
  AcquireLongPoll long_poll_;
  ArtifactService artifacts_;
  StudyServiceImpl study_service_;
  WorkerServiceImpl worker_service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  absl::Notification stop_;
  std::thread ticker_;
  absl::Mutex shutdown_mu_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;
};

}  // namespace hpsearch::server
