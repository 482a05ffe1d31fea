// The artifact RPCs of the coordinator's gRPC front: UploadArtifact (a read reactor feeding an
// ArtifactService upload), GetArtifact (a write reactor, one chunk in flight) and ReportEvent.
#include <memory>

#include "server/grpc_services.h"
#include "server/grpc_status.h"

namespace hpsearch::server {
namespace {

// Reads an upload chunk by chunk into its staging folder; commits at the client's half-close. The
// first failure finishes the call, and the upload (with its folder) is dropped.
class UploadReactor : public grpc::ServerReadReactor<v1::ArtifactChunk> {
 public:
  UploadReactor(ArtifactService* artifacts, v1::UploadArtifactResponse* response)
      : artifacts_(artifacts), response_(response) {
    absl::StatusOr<std::unique_ptr<ArtifactService::Upload>> upload = artifacts_->BeginUpload();
    if (!upload.ok()) {
      Finish(ToGrpcStatus(upload.status()));
      return;
    }
    upload_ = std::move(*upload);
    StartRead(&chunk_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The client half-closed, or the call broke (then nothing is committed: a stream without
      // its end mark is refused, and a cancelled call cannot be answered anyway).
      absl::StatusOr<v1::UploadArtifactResponse> response = artifacts_->Commit(upload_.get());
      upload_.reset();
      if (response.ok()) *response_ = std::move(*response);
      Finish(ToGrpcStatus(response.status()));
      return;
    }
    if (absl::Status status = upload_->Add(chunk_); !status.ok()) {
      upload_.reset();
      Finish(ToGrpcStatus(status));
      return;
    }
    StartRead(&chunk_);
  }

  void OnDone() override { delete this; }

 private:
  ArtifactService* const artifacts_;
  v1::UploadArtifactResponse* const response_;
  std::unique_ptr<ArtifactService::Upload> upload_;
  v1::ArtifactChunk chunk_;
};

// Streams a stored artifact, re-checking every file against its recorded sha256 as it reads.
class GetArtifactReactor : public grpc::ServerWriteReactor<v1::ArtifactChunk> {
 public:
  GetArtifactReactor(ArtifactService* artifacts, const v1::GetArtifactRequest& request) {
    absl::StatusOr<ArtifactSource> source =
        artifacts->Find(request.study(), request.trial_number());
    if (!source.ok()) {
      Finish(ToGrpcStatus(source.status()));
      return;
    }
    reader_ = std::make_unique<transfer::ArtifactChunkReader>(source->dir, source->files);
    WriteNext();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the reader went away"));
      return;
    }
    WriteNext();
  }

  void OnDone() override { delete this; }

 private:
  void WriteNext() {
    absl::StatusOr<std::optional<v1::ArtifactChunk>> next = reader_->Next();
    if (!next.ok()) {
      Finish(ToGrpcStatus(next.status()));
      return;
    }
    if (!next->has_value()) {
      Finish(grpc::Status::OK);
      return;
    }
    chunk_ = std::move(**next);
    StartWrite(&chunk_);
  }

  std::unique_ptr<transfer::ArtifactChunkReader> reader_;
  v1::ArtifactChunk chunk_;
};

}  // namespace

grpc::ServerReadReactor<v1::ArtifactChunk>* WorkerServiceImpl::UploadArtifact(
    grpc::CallbackServerContext* context, v1::UploadArtifactResponse* response) {
  if (grpc::Status denied = auth_->Check(*context); !denied.ok()) {
    return new RefusedReactor<grpc::ServerReadReactor<v1::ArtifactChunk>>(denied);
  }
  return new UploadReactor(artifacts_, response);
}

grpc::ServerUnaryReactor* WorkerServiceImpl::ReportEvent(grpc::CallbackServerContext* context,
                                                         const v1::ReportEventRequest* request,
                                                         v1::ReportEventResponse* /*response*/) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (grpc::Status denied = auth_->Check(*context); !denied.ok()) {
    reactor->Finish(denied);
    return reactor;
  }
  reactor->Finish(ToGrpcStatus(coordinator_->ReportEvent(*request)));
  return reactor;
}

grpc::ServerWriteReactor<v1::ArtifactChunk>* StudyServiceImpl::GetArtifact(
    grpc::CallbackServerContext* context, const v1::GetArtifactRequest* request) {
  if (grpc::Status denied = auth_->Check(*context); !denied.ok()) {
    return new RefusedReactor<grpc::ServerWriteReactor<v1::ArtifactChunk>>(denied);
  }
  return new GetArtifactReactor(artifacts_, *request);
}

}  // namespace hpsearch::server
