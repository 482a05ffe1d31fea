#include "worker/coordinator_client.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "rpc/grpc_status.h"
#include "spdlog/spdlog.h"
#include "transfer/artifact_files.h"

namespace hpsearch::worker {

bool IsTransient(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable ||
         status.code() == absl::StatusCode::kDeadlineExceeded;
}

CoordinatorClient::CoordinatorClient(const std::string& address,
                                     const rpc::ClientSecurity& security, ClientOptions options)
    : options_(options) {
  grpc::ChannelArguments args;
  // Reconnect quickly after a coordinator restart instead of gRPC's default backoff of up to 2
  // minutes.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  // Per-call costs a worker does not need (they took ~15% of a worker's CPU per call when
  // measured): gRPC's own retry layer (Call() retries, knowing which calls are safe to repeat),
  // flow-control probing (replies are small) and channelz call counting.
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_ENABLE_CHANNELZ, 0);
  channel_ = rpc::CreateChannel(address, security, args);
  connection_hint_ = rpc::ConnectionHint(security);
  stub_ = v1::WorkerService::NewStub(channel_);
  report_stream_ = std::make_unique<ReportStream>(stub_.get(), options_.call_timeout, clock_.get());
}

CoordinatorClient::CoordinatorClient(std::shared_ptr<grpc::Channel> channel, ClientOptions options)
    : channel_(std::move(channel)),
      stub_(v1::WorkerService::NewStub(channel_)),
      options_(options),
      report_stream_(
          std::make_unique<ReportStream>(stub_.get(), options_.call_timeout, clock_.get())) {}

template <typename Response, typename Attempt>
absl::StatusOr<Response> CoordinatorClient::Retrying(const char* name, Attempt attempt) {
  absl::Time give_up = clock_.Now() + options_.retry_window;
  absl::Duration backoff = options_.initial_backoff;
  while (true) {
    absl::StatusOr<Response> result = attempt();
    if (result.ok()) return result;
    absl::Status error(result.status().code(), absl::StrCat(name, ": ", result.status().message()));
    if (!IsTransient(error) || clock_.Now() + backoff > give_up ||
        (should_stop_ && should_stop_())) {
      return error;
    }
    if (backoff == options_.initial_backoff) {
      spdlog::warn("{}; retrying for up to {}{}", std::string(error.message()),
                   absl::FormatDuration(options_.retry_window),
                   connection_hint_.empty() ? "" : " (" + connection_hint_ + ")");
    }
    std::this_thread::sleep_for(absl::ToChronoMilliseconds(backoff));
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

template <typename Request, typename Response, typename Method>
absl::StatusOr<Response> CoordinatorClient::Call(const char* name, const Request& request,
                                                 Method method, absl::Duration extra_deadline,
                                                 bool cancellable) {
  return Retrying<Response>(name, [&]() -> absl::StatusOr<Response> {
    grpc::ClientContext context;
    // gRPC deadlines are instants on the system clock, whatever clock this client measures with.
    context.set_deadline(absl::ToChronoTime(absl::Now() + options_.call_timeout + extra_deadline));
    Response response;
    if (cancellable) {
      absl::MutexLock lock(&acquire_mu_);
      if (acquire_cancelled_) return absl::CancelledError("cancelled");
      acquire_context_ = &context;
    }
    grpc::Status status = (stub_.get()->*method)(&context, request, &response);
    if (cancellable) {
      absl::MutexLock lock(&acquire_mu_);
      acquire_context_ = nullptr;
    }
    if (!status.ok()) {
      return rpc::FromGrpcStatus(status);
    }
    return response;
  });
}

template <typename Request, typename Response, typename Method>
absl::StatusOr<Response> CoordinatorClient::Report(
    const char* name, const Request& r, Method method,
    Request* (v1::ReportStreamRequest::*request_field)(),
    Response* (v1::ReportStreamReply::*reply_field)()) {
  if (!report_stream_unsupported_) {
    v1::ReportStreamRequest request;
    *(request.*request_field)() = r;
    absl::StatusOr<v1::ReportStreamReply> reply =
        Retrying<v1::ReportStreamReply>(name, [&] { return report_stream_->Exchange(request); });
    if (reply.ok()) return std::move(*((*reply).*reply_field)());
    if (reply.status().code() != absl::StatusCode::kUnimplemented) return reply.status();
    spdlog::warn("{}; the coordinator predates ReportStream, using one call per report",
                 std::string(reply.status().message()));
    report_stream_unsupported_ = true;
  }
  return Call<Request, Response>(name, r, method);
}

absl::StatusOr<v1::RegisterResponse> CoordinatorClient::Register(const v1::RegisterRequest& r) {
  return Call<v1::RegisterRequest, v1::RegisterResponse>("Register", r,
                                                         &v1::WorkerService::Stub::Register);
}
absl::StatusOr<v1::AcquireTrialResponse> CoordinatorClient::AcquireTrial(
    const v1::AcquireTrialRequest& r) {
  return Call<v1::AcquireTrialRequest, v1::AcquireTrialResponse>(
      "AcquireTrial", r, &v1::WorkerService::Stub::AcquireTrial, absl::Milliseconds(r.wait_ms()),
      /*cancellable=*/true);
}

void CoordinatorClient::CancelAcquire() {
  absl::MutexLock lock(&acquire_mu_);
  acquire_cancelled_ = true;
  if (acquire_context_ != nullptr) acquire_context_->TryCancel();
}
absl::StatusOr<v1::HeartbeatResponse> CoordinatorClient::Heartbeat(const v1::HeartbeatRequest& r) {
  return Call<v1::HeartbeatRequest, v1::HeartbeatResponse>("Heartbeat", r,
                                                           &v1::WorkerService::Stub::Heartbeat);
}
absl::StatusOr<v1::ReportEpochResponse> CoordinatorClient::ReportEpoch(
    const v1::ReportEpochRequest& r) {
  return Report("ReportEpoch", r, &v1::WorkerService::Stub::ReportEpoch,
                &v1::ReportStreamRequest::mutable_report_epoch,
                &v1::ReportStreamReply::mutable_report_epoch);
}
absl::StatusOr<v1::ReportResultResponse> CoordinatorClient::ReportResult(
    const v1::ReportResultRequest& r) {
  return Call<v1::ReportResultRequest, v1::ReportResultResponse>(
      "ReportResult", r, &v1::WorkerService::Stub::ReportResult);
}
absl::StatusOr<v1::CompleteTrialResponse> CoordinatorClient::CompleteTrial(
    const v1::CompleteTrialRequest& r) {
  return Report("CompleteTrial", r, &v1::WorkerService::Stub::CompleteTrial,
                &v1::ReportStreamRequest::mutable_complete_trial,
                &v1::ReportStreamReply::mutable_complete_trial);
}
absl::StatusOr<v1::FailTrialResponse> CoordinatorClient::FailTrial(const v1::FailTrialRequest& r) {
  return Call<v1::FailTrialRequest, v1::FailTrialResponse>("FailTrial", r,
                                                           &v1::WorkerService::Stub::FailTrial);
}

absl::StatusOr<v1::ReportEventResponse> CoordinatorClient::ReportEvent(
    const v1::ReportEventRequest& r) {
  return Call<v1::ReportEventRequest, v1::ReportEventResponse>(
      "ReportEvent", r, &v1::WorkerService::Stub::ReportEvent);
}

absl::StatusOr<v1::UploadArtifactResponse> CoordinatorClient::UploadArtifact(
    const std::string& lease_id, const std::string& worker_id, const std::string& dir) {
  absl::StatusOr<std::vector<transfer::ArtifactFile>> files = transfer::ListArtifactFiles(dir);
  if (!files.ok()) return files.status();
  int64_t bytes = 0;
  for (const transfer::ArtifactFile& file : *files) bytes += file.bytes;
  // The deadline allows 10 MB/s on top of the usual call time.
  const absl::Duration transfer = absl::Seconds(static_cast<double>(bytes) / 10e6);
  absl::Time give_up = clock_.Now() + options_.retry_window;
  absl::Duration backoff = options_.initial_backoff;
  while (true) {
    grpc::ClientContext context;
    // A gRPC deadline is an instant on the system clock (see Call).
    context.set_deadline(absl::ToChronoTime(absl::Now() + options_.call_timeout + transfer));
    v1::UploadArtifactResponse response;
    std::unique_ptr<grpc::ClientWriter<v1::ArtifactChunk>> writer =
        stub_->UploadArtifact(&context, &response);
    transfer::ArtifactChunkReader reader(dir, *files);
    bool first = true;
    while (true) {
      absl::StatusOr<std::optional<v1::ArtifactChunk>> chunk = reader.Next();
      if (!chunk.ok()) {
        context.TryCancel();  // never let the coordinator see a partial stream end normally
        writer->Finish();
        return chunk.status();
      }
      if (!chunk->has_value()) break;
      if (first) {
        (*chunk)->set_lease_id(lease_id);
        (*chunk)->set_worker_id(worker_id);
      }
      first = false;
      if (!writer->Write(**chunk)) break;  // the coordinator ended the call; Finish says why
    }
    writer->WritesDone();
    grpc::Status status = writer->Finish();
    if (status.ok()) return response;
    absl::Status error = rpc::FromGrpcStatus(status, "UploadArtifact");
    if (!IsTransient(error) || clock_.Now() + backoff > give_up ||
        (should_stop_ && should_stop_())) {
      return error;
    }
    std::this_thread::sleep_for(absl::ToChronoMilliseconds(backoff));
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

absl::Status CoordinatorClient::FetchArtifact(const std::string& study, int trial_number,
                                              const std::string& dir) {
  std::unique_ptr<v1::StudyService::Stub> stub = v1::StudyService::NewStub(channel_);
  return Retrying<bool>(
             "GetArtifact",
             [&]() -> absl::StatusOr<bool> {
               std::error_code error;
               std::filesystem::remove_all(dir, error);
               std::filesystem::create_directories(dir, error);
               if (error) {
                 return absl::InternalError(
                     absl::StrCat("cannot create ", dir, ": ", error.message()));
               }
               grpc::ClientContext context;
               // Generous: the stream's size is not known before it starts (a full fine-tune is
               // ~1.4 GB). An instant on the system clock, as every gRPC deadline (see Call).
               context.set_deadline(
                   absl::ToChronoTime(absl::Now() + options_.call_timeout + absl::Hours(1)));
               v1::GetArtifactRequest request;
               request.set_study(study);
               request.set_trial_number(trial_number);
               std::unique_ptr<grpc::ClientReader<v1::ArtifactChunk>> reader =
                   stub->GetArtifact(&context, request);
               transfer::ArtifactAssembler assembler(dir);
               v1::ArtifactChunk chunk;
               absl::Status added;
               while (added.ok() && reader->Read(&chunk)) added = assembler.Add(chunk);
               if (!added.ok()) {
                 context.TryCancel();
                 reader->Finish();
                 return added;
               }
               grpc::Status status = reader->Finish();
               if (!status.ok()) return rpc::FromGrpcStatus(status, "GetArtifact");
               absl::StatusOr<std::vector<transfer::ArtifactFile>> files = assembler.Finish();
               if (!files.ok()) return files.status();
               return true;
             })
      .status();
}

}  // namespace hpsearch::worker
