#include "proto/artifact.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "base/sha256.h"

namespace peaknas::proto {

ArtifactDownload DownloadArtifact(v1::JobService::Stub& stub, grpc::ClientContext& context,
                                  const std::string& job_id, const std::string& trial_id,
                                  const std::string& path) {
  ArtifactDownload out;
  const std::string partial = path + ".partial";
  auto fail = [&](Status status) {
    std::error_code ec;
    std::filesystem::remove(partial, ec);
    out.status = std::move(status);
    out.bytes = 0;
    return out;
  };
  std::ofstream file(partial, std::ios::binary | std::ios::trunc);
  if (!file) {
    return fail(
        Status::InvalidArgument("cannot write \"" + partial + "\": " + std::strerror(errno)));
  }
  v1::GetArtifactRequest request;
  request.set_job_id(job_id);
  request.set_trial_id(trial_id);
  std::unique_ptr<grpc::ClientReader<v1::ArtifactChunk>> reader =
      stub.GetArtifact(&context, request);
  base::Sha256 hash;
  std::string expected;
  std::int64_t total = -1;
  bool last = false;
  v1::ArtifactChunk chunk;
  while (reader->Read(&chunk)) {
    if (total < 0) total = chunk.total_size();
    if (!chunk.sha256().empty()) expected = chunk.sha256();
    if (chunk.offset() != out.bytes) {
      context.TryCancel();
      reader->Finish();
      return fail(Status(StatusCode::kDataLoss, "chunk at offset " +
                                                    std::to_string(chunk.offset()) + ", expected " +
                                                    std::to_string(out.bytes)));
    }
    hash.Update(chunk.data());
    file.write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size()));
    out.bytes += static_cast<std::int64_t>(chunk.data().size());
    last = chunk.last();
  }
  out.rpc = reader->Finish();
  if (!out.rpc.ok()) return fail(Status::Ok());
  if (!last || (total >= 0 && out.bytes != total)) {
    return fail(Status(StatusCode::kDataLoss, "the download ended after " +
                                                  std::to_string(out.bytes) + " of " +
                                                  std::to_string(total) + " bytes"));
  }
  if (!expected.empty() && hash.HexDigest() != expected) {
    return fail(Status(StatusCode::kDataLoss, "the model's sha256 " + hash.HexDigest() +
                                                  " does not match the coordinator's " + expected));
  }
  file.close();
  if (!file) return fail(Status::Internal("writing \"" + partial + "\" failed"));
  std::error_code ec;
  std::filesystem::rename(partial, path, ec);
  if (ec) return fail(Status::Internal("renaming to \"" + path + "\": " + ec.message()));
  return out;
}

}  // namespace peaknas::proto
