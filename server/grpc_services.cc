#include "server/grpc_services.h"

#include <malloc.h>

#include <deque>

#include "absl/strings/str_cat.h"
#include "server/grpc_status.h"
#include "server/study_file/study_view.h"
#include "spdlog/spdlog.h"

namespace hpsearch::server {
namespace {

// Finishes a unary call with the status of `status_or`, moving its value into *response.
template <typename T>
grpc::ServerUnaryReactor* FinishWith(grpc::CallbackServerContext* context,
                                     absl::StatusOr<T> status_or, T* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (status_or.ok()) *response = std::move(*status_or);
  reactor->Finish(ToGrpcStatus(status_or.status()));
  return reactor;
}

grpc::ServerUnaryReactor* FinishWithStatus(grpc::CallbackServerContext* context,
                                           const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// Finishes a unary call whose token the checker refuses and returns its reactor; nullptr when the
// call may proceed.
grpc::ServerUnaryReactor* RefuseUnauthenticated(grpc::CallbackServerContext* context,
                                                const rpc::TokenChecker& auth) {
  grpc::Status denied = auth.Check(*context);
  if (denied.ok()) return nullptr;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(denied);
  return reactor;
}

// Streams a study's events: first its snapshot and every trial, then live events, and ends after
// the study reaches a final state. One write in flight; events queue meanwhile.
class WatchReactor : public grpc::ServerWriteReactor<v1::StudyEvent> {
 public:
  WatchReactor(Coordinator* coordinator, const std::string& study) : coordinator_(coordinator) {
    v1::Study snapshot;
    std::vector<v1::Trial> trials;
    absl::StatusOr<int64_t> token = coordinator_->Subscribe(
        study, [this](const v1::StudyEvent& event) { Push(event); }, &snapshot, &trials);
    if (!token.ok()) {
      absl::MutexLock lock(&mu_);
      finished_ = true;
      Finish(ToGrpcStatus(token.status()));
      return;
    }
    token_ = *token;
    int64_t now = absl::ToUnixMillis(absl::Now());
    absl::MutexLock lock(&mu_);
    v1::StudyEvent first;
    first.set_unix_ms(now);
    *first.mutable_study() = snapshot;
    queue_.push_back(std::move(first));
    for (v1::Trial& trial : trials) {
      v1::StudyEvent event;
      event.set_unix_ms(now);
      *event.mutable_trial() = std::move(trial);
      queue_.push_back(std::move(event));
    }
    // A study that already ended gets its snapshot and trials, then the stream ends.
    if (StudyStateEnded(snapshot.state())) ending_ = true;
    initialized_ = true;
    // Events published between Subscribe() and here follow the snapshot.
    for (const v1::StudyEvent& event : early_) PushLocked(event);
    early_.clear();
    WriteNextLocked();
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "the watcher went away"));
      return;
    }
    WriteNextLocked();
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    if (!writing_) FinishLocked(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    if (token_ != 0) coordinator_->Unsubscribe(token_);
    delete this;
  }

 private:
  void Push(const v1::StudyEvent& event) {
    absl::MutexLock lock(&mu_);
    if (!initialized_) {
      early_.push_back(event);
      return;
    }
    PushLocked(event);
    WriteNextLocked();
  }

  void PushLocked(const v1::StudyEvent& event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || ending_) return;
    queue_.push_back(event);
    if (event.has_study() && StudyStateEnded(event.study().state())) ending_ = true;
  }

  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_) return;
    if (cancelled_) {
      FinishLocked(grpc::Status::CANCELLED);
      return;
    }
    if (queue_.empty()) {
      if (ending_) FinishLocked(grpc::Status::OK);
      return;
    }
    current_ = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    StartWrite(&current_);
  }

  void FinishLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }

  Coordinator* const coordinator_;
  int64_t token_ = 0;
  absl::Mutex mu_;
  std::deque<v1::StudyEvent> queue_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::StudyEvent> early_ ABSL_GUARDED_BY(mu_);
  bool initialized_ ABSL_GUARDED_BY(mu_) = false;
  v1::StudyEvent current_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool ending_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

// ------------------------------------------------------------------------------------ StudyService

grpc::ServerUnaryReactor* StudyServiceImpl::SubmitStudy(grpc::CallbackServerContext* context,
                                                        const v1::SubmitStudyRequest* request,
                                                        v1::SubmitStudyResponse* response) {
  if (auto* refused = RefuseUnauthenticated(context, *auth_)) return refused;
  absl::StatusOr<v1::SubmitStudyResponse> result = coordinator_->SubmitStudy(*request);
  if (result.ok()) {
    spdlog::info("study {} ({}) {}", result->study_id(), request->spec().name(),
                 result->resumed() ? "resumed" : "submitted");
  } else {
    spdlog::warn("study '{}' refused: {}", request->spec().name(),
                 std::string(result.status().message()));
  }
  return FinishWith(context, std::move(result), response);
}

grpc::ServerUnaryReactor* StudyServiceImpl::GetStudy(grpc::CallbackServerContext* context,
                                                     const v1::GetStudyRequest* request,
                                                     v1::Study* response) {
  if (auto* refused = RefuseUnauthenticated(context, *auth_)) return refused;
  return FinishWith(context, coordinator_->GetStudy(request->study()), response);
}

grpc::ServerUnaryReactor* StudyServiceImpl::ListStudies(grpc::CallbackServerContext* context,
                                                        const v1::ListStudiesRequest* request,
                                                        v1::ListStudiesResponse* response) {
  if (auto* refused = RefuseUnauthenticated(context, *auth_)) return refused;
  for (v1::Study& study : coordinator_->ListStudies()) *response->add_studies() = std::move(study);
  return FinishWithStatus(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* StudyServiceImpl::ListTrials(grpc::CallbackServerContext* context,
                                                       const v1::ListTrialsRequest* request,
                                                       v1::ListTrialsResponse* response) {
  if (auto* refused = RefuseUnauthenticated(context, *auth_)) return refused;
  absl::StatusOr<std::vector<v1::Trial>> trials = coordinator_->ListTrials(request->study());
  if (trials.ok()) {
    for (v1::Trial& trial : *trials) *response->add_trials() = std::move(trial);
  }
  return FinishWithStatus(context, trials.status());
}

grpc::ServerUnaryReactor* StudyServiceImpl::GetTrial(grpc::CallbackServerContext* context,
                                                     const v1::GetTrialRequest* request,
                                                     v1::Trial* response) {
  if (auto* refused = RefuseUnauthenticated(context, *auth_)) return refused;
  return FinishWith(context, coordinator_->GetTrial(request->study(), request->number()), response);
}

grpc::ServerWriteReactor<v1::StudyEvent>* StudyServiceImpl::WatchStudy(
    grpc::CallbackServerContext* context, const v1::WatchStudyRequest* request) {
  if (grpc::Status denied = auth_->Check(*context); !denied.ok()) {
    return new RefusedReactor<grpc::ServerWriteReactor<v1::StudyEvent>>(denied);
  }
  return new WatchReactor(coordinator_, request->study());
}

grpc::ServerUnaryReactor* StudyServiceImpl::CancelStudy(grpc::CallbackServerContext* context,
                                                        const v1::CancelStudyRequest* request,
                                                        v1::Study* response) {
  if (auto* refused = RefuseUnauthenticated(context, *auth_)) return refused;
  absl::StatusOr<v1::Study> study = coordinator_->CancelStudy(request->study(), request->reason());
  if (study.ok()) spdlog::info("study {} cancelled: {}", study->id(), request->reason());
  return FinishWith(context, std::move(study), response);
}

grpc::ServerUnaryReactor* StudyServiceImpl::Ask(grpc::CallbackServerContext* context,
                                                const v1::AskRequest* request,
                                                v1::TrialSpec* response) {
  if (auto* refused = RefuseUnauthenticated(context, *auth_)) return refused;
  return FinishWith(context, coordinator_->Ask(*request), response);
}

grpc::ServerUnaryReactor* StudyServiceImpl::Tell(grpc::CallbackServerContext* context,
                                                 const v1::TellRequest* request,
                                                 v1::Trial* response) {
  if (auto* refused = RefuseUnauthenticated(context, *auth_)) return refused;
  return FinishWith(context, coordinator_->Tell(*request), response);
}

// ----------------------------------------------------------------------------------- WorkerService

grpc::ServerUnaryReactor* WorkerServiceImpl::Register(grpc::CallbackServerContext* context,
                                                      const v1::RegisterRequest* request,
                                                      v1::RegisterResponse* response) {
  if (auto* refused = RefuseUnauthenticated(context, *auth_)) return refused;
  absl::StatusOr<v1::RegisterResponse> result = coordinator_->Register(*request);
  if (result.ok()) {
    spdlog::info("worker {} registered (name {}, device {}, pid {})", result->worker_id(),
                 request->info().name(), request->info().device(), request->info().pid());
  }
  return FinishWith(context, std::move(result), response);
}

grpc::ServerUnaryReactor* WorkerServiceImpl::AcquireTrial(grpc::CallbackServerContext* context,
                                                          const v1::AcquireTrialRequest* request,
                                                          v1::AcquireTrialResponse* response) {
  if (auto* refused = RefuseUnauthenticated(context, *auth_)) return refused;
  absl::Duration wait =
      std::min(absl::Milliseconds(std::max<int64_t>(0, request->wait_ms())), max_acquire_wait_);
  return long_poll_->Start(context, request->worker_id(), wait, response);
}

grpc::ServerUnaryReactor* WorkerServiceImpl::Heartbeat(grpc::CallbackServerContext* context,
                                                       const v1::HeartbeatRequest* request,
                                                       v1::HeartbeatResponse* response) {
  if (auto* refused = RefuseUnauthenticated(context, *auth_)) return refused;
  return FinishWith(context, coordinator_->Heartbeat(*request), response);
}

grpc::ServerUnaryReactor* WorkerServiceImpl::ReportEpoch(grpc::CallbackServerContext* context,
                                                         const v1::ReportEpochRequest* request,
                                                         v1::ReportEpochResponse* response) {
  if (auto* refused = RefuseUnauthenticated(context, *auth_)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  coordinator_->ReportEpochAsync(
      *request, [reactor, response](absl::StatusOr<v1::ReportEpochResponse> result) {
        if (result.ok()) *response = std::move(*result);
        reactor->Finish(ToGrpcStatus(result.status()));
      });
  return reactor;
}

grpc::ServerUnaryReactor* WorkerServiceImpl::ReportResult(grpc::CallbackServerContext* context,
                                                          const v1::ReportResultRequest* request,
                                                          v1::ReportResultResponse* response) {
  if (auto* refused = RefuseUnauthenticated(context, *auth_)) return refused;
  return FinishWithStatus(context, coordinator_->ReportResult(*request));
}

grpc::ServerUnaryReactor* WorkerServiceImpl::CompleteTrial(grpc::CallbackServerContext* context,
                                                           const v1::CompleteTrialRequest* request,
                                                           v1::CompleteTrialResponse* response) {
  if (auto* refused = RefuseUnauthenticated(context, *auth_)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  coordinator_->CompleteTrialAsync(
      *request, [reactor, response](absl::StatusOr<v1::CompleteTrialResponse> result) {
        if (result.ok()) *response = std::move(*result);
        reactor->Finish(ToGrpcStatus(result.status()));
      });
  return reactor;
}

grpc::ServerUnaryReactor* WorkerServiceImpl::FailTrial(grpc::CallbackServerContext* context,
                                                       const v1::FailTrialRequest* request,
                                                       v1::FailTrialResponse* response) {
  if (auto* refused = RefuseUnauthenticated(context, *auth_)) return refused;
  absl::StatusOr<v1::TrialState> state = coordinator_->FailTrial(*request);
  if (state.ok()) response->set_state(*state);
  return FinishWithStatus(context, state.status());
}

// --------------------------------------------------------------------------------
// CoordinatorServer

CoordinatorServer::CoordinatorServer(Coordinator* coordinator, const ServerOptions& options)
    : coordinator_(coordinator),
      options_(options),
      auth_(options.auth_token),
      long_poll_(coordinator),
      artifacts_(coordinator, coordinator->database_path(), options.artifacts),
      study_service_(coordinator, &artifacts_, &auth_),
      worker_service_(coordinator, &long_poll_, options.max_acquire_wait, &artifacts_, &auth_) {}

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(
    Coordinator* coordinator, const ServerOptions& options) {
  std::unique_ptr<CoordinatorServer> server(new CoordinatorServer(coordinator, options));
  // grpc.health.v1 (gRPC's built-in service; a process-wide switch read by the builder). It takes
  // no token: it tells only whether this server answers, which an exec probe needs before any
  // secret.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(
      options.listen_address,
      options.credentials ? options.credentials : grpc::InsecureServerCredentials(),
      &server->port_);
  builder.RegisterService(&server->study_service_);
  builder.RegisterService(&server->worker_service_);
  // Channelz counts every call under a lock; nothing here reads it.
  builder.AddChannelArgument(GRPC_ARG_ENABLE_CHANNELZ, 0);
  // gRPC sets SO_REUSEPORT by default: a second coordinator on a port in use would share it, and
  // the kernel would split the clients between two databases. A port in use is an error instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", options.listen_address,
        ": the address is in use or invalid (pick another with --listen HOST:PORT)",
        options.credentials ? ", or the TLS certificate and key do not load (gRPC's log above "
                              "says why)"
                            : ""));
  }
  if (grpc::HealthCheckServiceInterface* health = server->server_->GetHealthCheckService()) {
    health->SetServingStatus(true);  // "" (the whole server) and every service below
    for (const char* service : {"hpsearch.v1.StudyService", "hpsearch.v1.WorkerService"}) {
      health->SetServingStatus(service, true);
    }
  }
  AcquireLongPoll* long_poll = &server->long_poll_;
  coordinator->SetWorkAvailableCallback([long_poll] { long_poll->Notify(); });
  server->ticker_ = std::thread([raw = server.get()] { raw->TickLoop(); });
  return server;
}

void CoordinatorServer::TickLoop() {
  absl::Time trimmed = absl::InfinitePast();  // the first tick trims what a restart's load freed
  while (!stop_.WaitForNotificationWithTimeout(options_.tick_interval)) {
    if (absl::Status status = coordinator_->Tick(); !status.ok()) {
      spdlog::error("coordinator tick failed: {}", std::string(status.message()));
    }
    if (options_.trim_interval > absl::ZeroDuration() &&
        absl::Now() - trimmed >= options_.trim_interval) {
      malloc_trim(0);  // no lock of ours held; glibc locks each arena in turn
      trimmed = absl::Now();
    }
  }
}

void CoordinatorServer::Shutdown() {
  {
    absl::MutexLock lock(&shutdown_mu_);
    if (shut_down_) return;
    shut_down_ = true;
  }
  coordinator_->SetWorkAvailableCallback(nullptr);
  stop_.Notify();
  if (ticker_.joinable()) ticker_.join();
  if (server_ == nullptr) return;  // Start() could not listen
  if (grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService()) {
    health->Shutdown();  // NOT_SERVING from now on, to every check and watch
  }
  // Parked long-polls hold calls open; the deadline lets Shutdown cancel whatever is still running.
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
}

void CoordinatorServer::Wait() { stop_.WaitForNotification(); }

CoordinatorServer::~CoordinatorServer() { Shutdown(); }

}  // namespace hpsearch::server
