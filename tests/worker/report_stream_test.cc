// The worker's report stream (WorkerService.ReportStream) against a real coordinator: each request
// is answered as its unary call would be, refused requests leave the stream usable, an overdue
// reply times out and the next exchange opens a new stream; against a coordinator that lacks the
// stream, CoordinatorClient falls back to the unary calls.
#include "worker/report_stream.h"

#include <signal.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <future>

#include "base/clock.h"
#include "worker/coordinator_client.h"
#include "worker/served_study.h"

namespace hpsearch::worker {
namespace {

using namespace std::chrono_literals;

struct LeasedTrial {
  std::string worker_id;
  std::string lease_id;
};

LeasedTrial Lease(v1::WorkerService::Stub* stub) {
  LeasedTrial leased;
  grpc::ClientContext register_context;
  v1::RegisterRequest reg;
  reg.mutable_info()->set_name("stream");
  v1::RegisterResponse registered;
  REQUIRE(stub->Register(&register_context, reg, &registered).ok());
  leased.worker_id = registered.worker_id();
  grpc::ClientContext acquire_context;
  v1::AcquireTrialRequest acquire;
  acquire.set_worker_id(leased.worker_id);
  acquire.set_wait_ms(2000);
  v1::AcquireTrialResponse acquired;
  REQUIRE(stub->AcquireTrial(&acquire_context, acquire, &acquired).ok());
  leased.lease_id = acquired.trial().lease_id();
  REQUIRE_FALSE(leased.lease_id.empty());
  return leased;
}

v1::ReportStreamRequest Epoch(const LeasedTrial& leased, int epoch, double accuracy) {
  v1::ReportStreamRequest request;
  v1::ReportEpochRequest* report = request.mutable_report_epoch();
  report->set_lease_id(leased.lease_id);
  report->set_worker_id(leased.worker_id);
  report->mutable_metrics()->set_epoch(epoch);
  report->mutable_metrics()->set_val_accuracy(accuracy);
  return request;
}

// A served study, a worker holding the lease of its first trial, and that worker's report stream.
struct StreamSetup {
  StreamSetup(const std::string& name, int n_trials, absl::Duration timeout)
      : served(name, n_trials, 0),
        stub(v1::WorkerService::NewStub(
            grpc::CreateChannel(served.address, grpc::InsecureChannelCredentials()))),
        leased(Lease(stub.get())),
        stream(stub.get(), timeout) {}
  ServedStudy served;
  std::unique_ptr<v1::WorkerService::Stub> stub;
  const LeasedTrial leased;
  ReportStream stream;
};

TEST_CASE("The report stream answers each request as its unary call would, and outlives refusals",
          "[worker][grpc]") {
  StreamSetup setup("stream", 2, absl::Seconds(10));
  ServedStudy& served = setup.served;
  const LeasedTrial& leased = setup.leased;
  ReportStream& stream = setup.stream;

  absl::StatusOr<v1::ReportStreamReply> reply = stream.Exchange(Epoch(leased, 1, 0.25));
  REQUIRE(reply.ok());
  CHECK(reply->report_epoch().decision() == v1::EPOCH_DECISION_CONTINUE);
  CHECK_FALSE(reply->report_epoch().duplicate());
  reply = stream.Exchange(Epoch(leased, 1, 0.25));
  REQUIRE(reply.ok());
  CHECK(reply->report_epoch().duplicate());

  CHECK(stream.Exchange(Epoch(leased, 3, 0.5)).status().code() == absl::StatusCode::kOutOfRange);
  absl::Status nan = stream.Exchange(Epoch(leased, 2, std::nan(""))).status();
  CHECK(nan.code() == absl::StatusCode::kInvalidArgument);
  CHECK(nan.message().find("NaN") != absl::string_view::npos);
  LeasedTrial unknown = leased;
  unknown.lease_id = "ls-unknown";
  CHECK(stream.Exchange(Epoch(unknown, 1, 0.5)).status().code() == absl::StatusCode::kNotFound);
  absl::Status empty = stream.Exchange(v1::ReportStreamRequest()).status();
  CHECK(empty.code() == absl::StatusCode::kInvalidArgument);
  CHECK(empty.message().find("report_epoch or complete_trial") != absl::string_view::npos);

  // The completion carries the last epoch and leases the next trial, all on the same stream.
  v1::ReportStreamRequest complete;
  complete.mutable_complete_trial()->set_lease_id(leased.lease_id);
  complete.mutable_complete_trial()->set_worker_id(leased.worker_id);
  complete.mutable_complete_trial()->set_lease_next(true);
  complete.mutable_complete_trial()->mutable_last_epoch()->set_epoch(2);
  complete.mutable_complete_trial()->mutable_last_epoch()->set_val_accuracy(0.5);
  reply = stream.Exchange(complete);
  REQUIRE(reply.ok());
  CHECK(reply->complete_trial().state() == v1::TRIAL_STATE_COMPLETE);
  CHECK(reply->complete_trial().next_trial().trial_number() == 1);

  v1::Trial trial = served.GetTrial("stream", 0);
  CHECK(trial.state() == v1::TRIAL_STATE_COMPLETE);
  REQUIRE(trial.epochs_size() == 2);
  CHECK(trial.epochs(0).val_accuracy() == 0.25);
  CHECK(trial.epochs(1).val_accuracy() == 0.5);
}

TEST_CASE("A stalled coordinator times an exchange out and the next exchange opens a new stream",
          "[worker][grpc][faults]") {
  StreamSetup setup("stalled", 1, absl::Milliseconds(500));
  ServedStudy& served = setup.served;
  const LeasedTrial& leased = setup.leased;
  ReportStream& stream = setup.stream;
  REQUIRE(stream.Exchange(Epoch(leased, 1, 0.25)).ok());

  REQUIRE(served.serve.Stop(std::chrono::seconds(10)));
  absl::Status stalled = stream.Exchange(Epoch(leased, 2, 0.5)).status();
  served.serve.Kill(SIGCONT);
  CHECK(stalled.code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(stalled.message().find("no reply") != absl::string_view::npos);

  // Resending the unanswered report is safe: it is recorded once, whether or not the coordinator
  // got it before the stream was cancelled.
  REQUIRE(stream.Exchange(Epoch(leased, 2, 0.5)).ok());
  REQUIRE(stream.Exchange(Epoch(leased, 3, 0.75)).ok());
  CHECK(served.GetTrial("stalled", 0).epochs_size() == 3);
}

TEST_CASE("An exchange is overdue by the injected clock, not by the time it has waited",
          "[worker][grpc][faults][clock]") {
  ManualClock clock;
  ServedStudy served("overdue", 1, 0);
  auto stub = v1::WorkerService::NewStub(
      grpc::CreateChannel(served.address, grpc::InsecureChannelCredentials()));
  const LeasedTrial leased = Lease(stub.get());
  // An hour of the injected clock; the watchdog looks once a second of real time.
  ReportStream stream(stub.get(), absl::Hours(1), &clock);
  REQUIRE(stream.Exchange(Epoch(leased, 1, 0.25)).ok());

  REQUIRE(served.serve.Stop(std::chrono::seconds(10)));
  auto stalled = std::async(std::launch::async,
                            [&] { return stream.Exchange(Epoch(leased, 2, 0.5)).status(); });
  // The clock jumps two hours at a time until the exchange gives up (each jump also covers an
  // exchange that had not started yet at the previous one); real time waited stays within the cap.
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while (stalled.wait_for(10ms) != std::future_status::ready &&
         std::chrono::steady_clock::now() < give_up) {
    clock.Advance(absl::Hours(2));
  }
  served.serve.Kill(SIGCONT);  // answers a stalled exchange, should the clock not have ended it
  const absl::Status status = stalled.get();
  CHECK(status.code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(status.message().find("no reply on the report stream within 1h") !=
        absl::string_view::npos);
  REQUIRE(stream.Exchange(Epoch(leased, 2, 0.5)).ok());
}

// A coordinator from before ReportStream: the unary ReportEpoch and CompleteTrial only.
class UnaryOnlyWorkerService : public v1::WorkerService::CallbackService {
 public:
  grpc::ServerUnaryReactor* ReportEpoch(grpc::CallbackServerContext* context,
                                        const v1::ReportEpochRequest* request,
                                        v1::ReportEpochResponse* response) override {
    ++reports;
    response->set_decision(request->metrics().epoch() >= 2 ? v1::EPOCH_DECISION_PRUNE
                                                           : v1::EPOCH_DECISION_CONTINUE);
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerUnaryReactor* CompleteTrial(grpc::CallbackServerContext* context,
                                          const v1::CompleteTrialRequest* request,
                                          v1::CompleteTrialResponse* response) override {
    ++completions;
    response->set_state(request->pruned() ? v1::TRIAL_STATE_PRUNED : v1::TRIAL_STATE_COMPLETE);
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  std::atomic<int> reports{0};
  std::atomic<int> completions{0};
};

TEST_CASE("Against a coordinator without the report stream, reports and completions are calls",
          "[worker][grpc]") {
  UnaryOnlyWorkerService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  REQUIRE(port > 0);

  CoordinatorClient client(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()),
      ClientOptions());
  v1::ReportEpochRequest report;
  report.mutable_metrics()->set_epoch(1);
  absl::StatusOr<v1::ReportEpochResponse> first = client.ReportEpoch(report);
  REQUIRE(first.ok());
  CHECK(first->decision() == v1::EPOCH_DECISION_CONTINUE);
  report.mutable_metrics()->set_epoch(2);
  absl::StatusOr<v1::ReportEpochResponse> second = client.ReportEpoch(report);
  REQUIRE(second.ok());
  CHECK(second->decision() == v1::EPOCH_DECISION_PRUNE);
  v1::CompleteTrialRequest complete;
  complete.set_pruned(true);
  absl::StatusOr<v1::CompleteTrialResponse> completed = client.CompleteTrial(complete);
  REQUIRE(completed.ok());
  CHECK(completed->state() == v1::TRIAL_STATE_PRUNED);
  CHECK(service.reports == 2);
  CHECK(service.completions == 1);
  server->Shutdown();
}

}  // namespace
}  // namespace hpsearch::worker
