#include "worker/report_stream.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "rpc/grpc_status.h"

namespace hpsearch::worker {

ReportStream::ReportStream(v1::WorkerService::Stub* stub, absl::Duration timeout, Clock* clock)
    : stub_(stub), timeout_(timeout), clock_(clock) {}

ReportStream::~ReportStream() {
  {
    absl::MutexLock lock(&watch_mu_);
    stopping_ = true;
  }
  if (watchdog_.joinable()) watchdog_.join();
  absl::MutexLock lock(&exchange_mu_);
  CloseStream();
}

absl::StatusOr<v1::ReportStreamReply> ReportStream::Exchange(
    const v1::ReportStreamRequest& request) {
  absl::MutexLock lock(&exchange_mu_);
  if (stream_ == nullptr) {
    context_ = std::make_unique<grpc::ClientContext>();
    stream_ = stub_->ReportStream(context_.get());
    if (!watchdog_.joinable()) watchdog_ = std::thread([this] { Watch(); });
  }
  {
    absl::MutexLock watch(&watch_mu_);
    in_flight_ = context_.get();
    overdue_at_ = clock_.Now() + timeout_;
    timed_out_ = false;
  }
  v1::ReportStreamReply reply;
  const bool answered = stream_->Write(request) && stream_->Read(&reply);
  bool timed_out;
  {
    absl::MutexLock watch(&watch_mu_);
    in_flight_ = nullptr;
    timed_out = timed_out_;
  }
  if (!answered) return Drop(timed_out);
  if (reply.code() != 0) {
    return rpc::StatusFromCode(reply.code(), reply.message());
  }
  return reply;
}

absl::Status ReportStream::Drop(bool timed_out) {
  const grpc::Status status = stream_->Finish();
  stream_.reset();
  context_.reset();
  if (timed_out) {
    return absl::DeadlineExceededError(
        absl::StrCat("no reply on the report stream within ", absl::FormatDuration(timeout_)));
  }
  switch (status.error_code()) {
    case grpc::StatusCode::UNIMPLEMENTED:
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
      return rpc::FromGrpcStatus(status);
    default:
      return absl::UnavailableError(
          absl::StrCat("the report stream broke (", rpc::GrpcCodeName(status.error_code()),
                       status.error_message().empty() ? "" : ": ", status.error_message(), ")"));
  }
}

void ReportStream::CloseStream() {
  if (stream_ == nullptr) return;
  context_->TryCancel();
  stream_->Finish();
  stream_.reset();
  context_.reset();
}

void ReportStream::Watch() {
  // Deadlines are checked this often, so a reply counts as overdue up to one period late.
  const absl::Duration period = std::clamp(timeout_ / 4, absl::Milliseconds(1), absl::Seconds(1));
  absl::MutexLock lock(&watch_mu_);
  while (!stopping_) {
    watch_mu_.AwaitWithTimeout(absl::Condition(&stopping_), period);
    if (in_flight_ != nullptr && !timed_out_ && clock_.Now() >= overdue_at_) {
      timed_out_ = true;
      in_flight_->TryCancel();
    }
  }
}

}  // namespace hpsearch::worker
