// Downloading a trained model from the coordinator (JobService.GetArtifact), for the clients
// that need one: `peaknas export` and `peaknas-worker denoise --job J --trial T`.
//
// Thread-safety: a pure function of its arguments; one call per ClientContext.
#ifndef PEAKNAS_PROTO_ARTIFACT_H_
#define PEAKNAS_PROTO_ARTIFACT_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <string>

#include "base/status.h"
#include "peaknas/v1/peaknas.grpc.pb.h"

namespace peaknas::proto {

struct ArtifactDownload {
  grpc::Status rpc;        // the call's own outcome (NOT_FOUND: the trial has no model)
  Status status;           // the rest: DATA_LOSS for a broken stream, INTERNAL for the local file
  std::int64_t bytes = 0;  // written, when both are OK
};

// Streams the model of (job_id, trial_id) into `path` through `path`.partial, checking the
// chunks' offsets, the total size and the SHA-256 the coordinator sends, and renames it when
// whole; on any failure the partial file is removed and `path` is untouched.
ArtifactDownload DownloadArtifact(v1::JobService::Stub& stub, grpc::ClientContext& context,
                                  const std::string& job_id, const std::string& trial_id,
                                  const std::string& path);

}  // namespace peaknas::proto

#endif  // PEAKNAS_PROTO_ARTIFACT_H_
