// Trials' model files on the coordinator's disk (DESIGN.md, "Storage"): <dir>/<job>/<trial>.pt.
// An upload is written to a partial file named by its lease's fencing token and becomes the
// final file only once its size and SHA-256 are checked; a refused or abandoned one leaves no
// file. A download re-hashes what it sends and ends with DATA_LOSS when the file no longer
// matches what was recorded. No database and no gRPC here: the coordinator checks leases and
// records what is committed; the service's streaming handlers move the bytes.
//
// Thread-safety: ArtifactStore's methods may be called from any thread (distinct uploads write
// distinct partial files); an ArtifactWriter belongs to one upload.
#ifndef PEAKNAS_SERVER_ARTIFACT_STORE_H_
#define PEAKNAS_SERVER_ARTIFACT_STORE_H_

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <functional>
#include <string>
#include <string_view>

#include "base/sha256.h"
#include "base/status.h"

namespace peaknas::server {

// An upload in progress: where its bytes go until the coordinator commits it.
struct ArtifactUpload {
  std::string lease_id;
  std::int64_t fencing_token = 0;
  std::int64_t trial_row = 0;  // the store's trial id
  std::string job_id;          // "j-N"
  std::string trial_id;        // "t-N"
  std::string partial_path;    // <dir>/<job>/<trial>.pt.<token>.partial
  std::string final_path;      // <dir>/<job>/<trial>.pt
  // The most bytes this upload may have: the per-upload limit, or what the total limit leaves.
  std::int64_t max_bytes = 0;
};

// A stored artifact, for downloads.
struct ArtifactFile {
  std::string path;      // absolute or relative to the working directory
  std::string filename;  // suggested name, "t-N.pt"
  std::int64_t size_bytes = 0;
  std::string sha256;  // 64 lower-case hex digits
};

class ArtifactStore {
 public:
  explicit ArtifactStore(std::string dir) : dir_(std::move(dir)) {}

  const std::string& dir() const { return dir_; }

  // Creates the store's directory. INTERNAL naming it.
  Status Create() const;

  // Fills in `upload`'s partial and final paths for its job, trial and fencing token, creating
  // the job's directory. INTERNAL naming it.
  Status Place(ArtifactUpload& upload) const;

  // Checks the partial file (`size_bytes` long, hashing to `actual_sha256`) against
  // `claimed_sha256` and renames it into place: INVALID_ARGUMENT when the claim is not 64
  // lower-case hex digits, DATA_LOSS when the size on disk or the hash differ, INTERNAL when
  // the rename fails. On any error the partial file is removed.
  Status Commit(const ArtifactUpload& upload, std::int64_t size_bytes,
                std::string_view actual_sha256, std::string_view claimed_sha256) const;

  // Removes the partial file of an upload that will not be committed.
  static void Discard(const ArtifactUpload& upload);

  // Sends `file` in chunks of up to `chunk_bytes` to `sink` (data, offset, last chunk?), which
  // returns false to stop early (the reader left: OK). DATA_LOSS when the file cannot be read
  // or no longer has its recorded size and hash.
  static Status Stream(
      const ArtifactFile& file, std::size_t chunk_bytes,
      const std::function<bool(std::string_view data, std::int64_t offset, bool last)>& sink);

 private:
  std::string dir_;
};

// The bytes of one upload as they arrive, into its partial file: in order, within a size
// limit, hashed on the way.
class ArtifactWriter {
 public:
  ArtifactWriter(const ArtifactUpload& upload, std::int64_t max_bytes);

  // INTERNAL when the file cannot be created or written; INVALID_ARGUMENT when `offset` is not
  // the bytes written so far ("chunk.offset: 7, expected 5"); RESOURCE_EXHAUSTED past the
  // limit.
  Status Append(std::string_view data, std::int64_t offset);
  // Closes the file (INTERNAL on a write error).
  Status Close();

  std::int64_t size() const { return size_; }
  // The SHA-256 of what was appended. Call once, after Close.
  std::string HexDigest() { return hash_.HexDigest(); }

 private:
  std::ofstream out_;
  std::string path_;
  std::int64_t max_bytes_;
  std::int64_t size_ = 0;
  base::Sha256 hash_;
};

}  // namespace peaknas::server

#endif  // PEAKNAS_SERVER_ARTIFACT_STORE_H_
