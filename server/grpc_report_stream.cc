// WorkerService.ReportStream: a worker's ReportEpoch and CompleteTrial requests over one stream,
// each handed to the same asynchronous coordinator call as its unary twin.
#include "server/grpc_services.h"
#include "server/grpc_status.h"

namespace hpsearch::server {
namespace {

// One request in flight: read it, hand it to the coordinator, write the reply once the coordinator
// answers (after the commit), then read the next. The call ends when the client half-closes or the
// stream breaks; Finish is never called while the coordinator still holds a request, so the reactor
// outlives every callback it handed out.
class ReportStreamReactor
    : public grpc::ServerBidiReactor<v1::ReportStreamRequest, v1::ReportStreamReply> {
 public:
  explicit ReportStreamReactor(Coordinator* coordinator) : coordinator_(coordinator) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    switch (request_.call_case()) {
      case v1::ReportStreamRequest::kReportEpoch:
        coordinator_->ReportEpochAsync(request_.report_epoch(),
                                       ReplyInto(&v1::ReportStreamReply::mutable_report_epoch));
        return;
      case v1::ReportStreamRequest::kCompleteTrial:
        coordinator_->CompleteTrialAsync(request_.complete_trial(),
                                         ReplyInto(&v1::ReportStreamReply::mutable_complete_trial));
        return;
      case v1::ReportStreamRequest::CALL_NOT_SET:
        break;
    }
    Reply(absl::InvalidArgumentError(
        "ReportStream: a request must carry report_epoch or complete_trial"));
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the worker went away"));
      return;
    }
    reply_.Clear();
    StartRead(&request_);
  }

  void OnDone() override { delete this; }

 private:
  // The coordinator's answer, as the reply's `field` (or its error).
  template <typename Response>
  Coordinator::Done<Response> ReplyInto(Response* (v1::ReportStreamReply::*field)()) {
    return [this, field](absl::StatusOr<Response> result) {
      if (result.ok()) *(reply_.*field)() = std::move(*result);
      Reply(result.status());
    };
  }

  void Reply(const absl::Status& status) {
    reply_.set_code(static_cast<int32_t>(status.code()));
    reply_.set_message(std::string(status.message()));
    StartWrite(&reply_);
  }

  Coordinator* const coordinator_;
  v1::ReportStreamRequest request_;
  v1::ReportStreamReply reply_;
};

}  // namespace

grpc::ServerBidiReactor<v1::ReportStreamRequest, v1::ReportStreamReply>*
WorkerServiceImpl::ReportStream(grpc::CallbackServerContext* context) {
  if (grpc::Status denied = auth_->Check(*context); !denied.ok()) {
    return new RefusedReactor<
        grpc::ServerBidiReactor<v1::ReportStreamRequest, v1::ReportStreamReply>>(denied);
  }
  return new ReportStreamReactor(coordinator_);
}

}  // namespace hpsearch::server
