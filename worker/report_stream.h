// ReportStream: the worker's end of WorkerService.ReportStream, the one long-lived stream that
// carries its ReportEpoch and CompleteTrial requests (a call each costs both ends more CPU per
// report than a message on an open stream). Opened on first use, reopened after it breaks.
//
// Exchange() sends one request and waits for its reply, at most `timeout`: a stream has no deadline
// per message, so a watchdog thread cancels one whose reply is overdue. It makes one attempt and
// never resends; the caller retries (the coordinator ignores a repeated report). Errors:
//  - the reply's own status (the coordinator refused the request), code and message unchanged;
//  - DEADLINE_EXCEEDED when the reply was overdue;
//  - UNIMPLEMENTED when the coordinator has no ReportStream (an older version): use the unary
//  calls;
//  - UNAUTHENTICATED / PERMISSION_DENIED when the coordinator refused the stream itself;
//  - UNAVAILABLE when the stream broke in any other way (coordinator gone or restarting, a shutdown
//    cancelling its streams): the request may or may not have been handled, so it is worth
//    resending.
//
// Thread-safety: thread-safe; exchanges are serialized.
#pragma once

#include <memory>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "hpsearch/v1/service.grpc.pb.h"

namespace hpsearch::worker {

class ReportStream {
 public:
  // `stub` must outlive this object; so must `clock`, where a reply's lateness is measured
  // (nullptr: the system clock; the watchdog itself wakes in real time).
  ReportStream(v1::WorkerService::Stub* stub, absl::Duration timeout, Clock* clock = nullptr);
  // Cancels the open stream, if any, and stops the watchdog.
  ~ReportStream();
  ReportStream(const ReportStream&) = delete;
  ReportStream& operator=(const ReportStream&) = delete;

  absl::StatusOr<v1::ReportStreamReply> Exchange(const v1::ReportStreamRequest& request);

 private:
  using Stream = grpc::ClientReaderWriter<v1::ReportStreamRequest, v1::ReportStreamReply>;

  // Drops the stream after a failed exchange and says why, as the status the header lists.
  absl::Status Drop(bool timed_out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(exchange_mu_);
  void CloseStream() ABSL_EXCLUSIVE_LOCKS_REQUIRED(exchange_mu_);
  void Watch();

  v1::WorkerService::Stub* const stub_;
  const absl::Duration timeout_;
  ClockOrReal clock_;

  absl::Mutex exchange_mu_;  // held for a whole exchange
  std::unique_ptr<grpc::ClientContext> context_ ABSL_GUARDED_BY(exchange_mu_);
  std::unique_ptr<Stream> stream_ ABSL_GUARDED_BY(exchange_mu_);

  // What the watchdog sees: the context of the exchange in flight and when its reply is overdue.
  absl::Mutex watch_mu_;
  grpc::ClientContext* in_flight_ ABSL_GUARDED_BY(watch_mu_) = nullptr;
  absl::Time overdue_at_ ABSL_GUARDED_BY(watch_mu_);
  bool timed_out_ ABSL_GUARDED_BY(watch_mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(watch_mu_) = false;
  std::thread watchdog_;  // started with the first stream
};

}  // namespace hpsearch::worker
