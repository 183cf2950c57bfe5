#include "server/artifact_store.h"

#include <filesystem>
#include <system_error>

namespace peaknas::server {

Status ArtifactStore::Create() const {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return Status::Internal("artifacts \"" + dir_ + "\": " + ec.message());
  return Status::Ok();
}

Status ArtifactStore::Place(ArtifactUpload& upload) const {
  const std::filesystem::path dir = std::filesystem::path(dir_) / upload.job_id;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::Internal("artifacts \"" + dir.string() + "\": " + ec.message());
  upload.final_path = (dir / (upload.trial_id + ".pt")).string();
  upload.partial_path =
      (dir / (upload.trial_id + ".pt." + std::to_string(upload.fencing_token) + ".partial"))
          .string();
  return Status::Ok();
}

Status ArtifactStore::Commit(const ArtifactUpload& upload, std::int64_t size_bytes,
                             std::string_view actual_sha256,
                             std::string_view claimed_sha256) const {
  const auto refuse = [&](Status status) {
    Discard(upload);
    return status;
  };
  const bool hex = claimed_sha256.size() == 64 &&
                   claimed_sha256.find_first_not_of("0123456789abcdef") == std::string_view::npos;
  if (!hex) {
    return refuse(Status::InvalidArgument("sha256: must be 64 lower-case hex digits, got \"" +
                                          std::string(claimed_sha256) + "\""));
  }
  std::error_code ec;
  const auto on_disk = std::filesystem::file_size(upload.partial_path, ec);
  if (ec || static_cast<std::int64_t>(on_disk) != size_bytes) {
    return refuse(Status(StatusCode::kDataLoss,
                         "artifact: stored " + (ec ? ec.message() : std::to_string(on_disk)) +
                             " bytes, received " + std::to_string(size_bytes)));
  }
  if (actual_sha256 != claimed_sha256) {
    return refuse(Status(StatusCode::kDataLoss, "sha256: the upload hashes to " +
                                                    std::string(actual_sha256) + ", not " +
                                                    std::string(claimed_sha256)));
  }
  std::filesystem::rename(upload.partial_path, upload.final_path, ec);
  if (ec) {
    return refuse(Status::Internal("artifact \"" + upload.final_path + "\": " + ec.message()));
  }
  return Status::Ok();
}

void ArtifactStore::Discard(const ArtifactUpload& upload) {
  std::error_code ignored;
  std::filesystem::remove(upload.partial_path, ignored);
}

Status ArtifactStore::Stream(
    const ArtifactFile& file, std::size_t chunk_bytes,
    const std::function<bool(std::string_view data, std::int64_t offset, bool last)>& sink) {
  std::ifstream in(file.path, std::ios::binary);
  if (!in) return Status(StatusCode::kDataLoss, "artifact: cannot read " + file.path);
  base::Sha256 hash;
  std::string buffer(chunk_bytes, '\0');
  std::int64_t offset = 0;
  for (;;) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const auto got = static_cast<std::size_t>(in.gcount());
    if (in.bad()) return Status(StatusCode::kDataLoss, "artifact: read error in " + file.path);
    hash.Update(buffer.data(), got);
    const std::int64_t at = offset;
    offset += static_cast<std::int64_t>(got);
    const bool last = in.eof() || offset >= file.size_bytes;
    if (last && (offset != file.size_bytes || hash.HexDigest() != file.sha256)) {
      return Status(StatusCode::kDataLoss,
                    "artifact: " + file.path + " no longer matches its recorded size and sha256");
    }
    if (!sink(std::string_view(buffer.data(), got), at, last)) return Status::Ok();
    if (last) return Status::Ok();
  }
}

ArtifactWriter::ArtifactWriter(const ArtifactUpload& upload, std::int64_t max_bytes)
    : out_(upload.partial_path, std::ios::binary | std::ios::trunc),
      path_(upload.partial_path),
      max_bytes_(max_bytes) {}

Status ArtifactWriter::Append(std::string_view data, std::int64_t offset) {
  if (!out_) return Status::Internal("artifact: cannot write " + path_);
  if (offset != size_) {
    return Status::InvalidArgument("chunk.offset: " + std::to_string(offset) + ", expected " +
                                   std::to_string(size_));
  }
  size_ += static_cast<std::int64_t>(data.size());
  if (size_ > max_bytes_) {
    return Status::ResourceExhausted("artifact: larger than " + std::to_string(max_bytes_) +
                                     " bytes");
  }
  out_.write(data.data(), static_cast<std::streamsize>(data.size()));
  hash_.Update(data);
  return Status::Ok();
}

Status ArtifactWriter::Close() {
  out_.close();
  if (!out_) return Status::Internal("artifact: write error in " + path_);
  return Status::Ok();
}

}  // namespace peaknas::server
