#include "storage/testing/powerloss_vfs.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>

namespace peaknas::storage::testing {
namespace {

std::atomic<std::int64_t> g_syncs{0};

// One open file: the real one (placed right after this struct, in the same allocation) and,
// for the files that hold the database's state, its unsynced image.
struct File {
  sqlite3_file base;
  sqlite3_file* real;
  std::string* image;  // nullptr: passed through (temporary files)
};

sqlite3_vfs* Real(sqlite3_vfs* vfs) { return static_cast<sqlite3_vfs*>(vfs->pAppData); }
File* AsFile(sqlite3_file* f) { return reinterpret_cast<File*>(f); }
const sqlite3_io_methods* RealMethods(File* f) { return f->real->pMethods; }

int Close(sqlite3_file* file) {
  File* f = AsFile(file);
  delete f->image;  // whatever was not synced is lost, as on a power cut
  f->image = nullptr;
  return RealMethods(f)->xClose(f->real);
}

int Read(sqlite3_file* file, void* out, int amount, sqlite3_int64 offset) {
  File* f = AsFile(file);
  if (f->image == nullptr) return RealMethods(f)->xRead(f->real, out, amount, offset);
  const auto size = static_cast<sqlite3_int64>(f->image->size());
  const sqlite3_int64 available = std::clamp<sqlite3_int64>(size - offset, 0, amount);
  if (available > 0)
    std::memcpy(out, f->image->data() + offset, static_cast<std::size_t>(available));
  if (available < amount) {
    std::memset(static_cast<char*>(out) + available, 0,
                static_cast<std::size_t>(amount - available));
    return SQLITE_IOERR_SHORT_READ;
  }
  return SQLITE_OK;
}

int Write(sqlite3_file* file, const void* data, int amount, sqlite3_int64 offset) {
  File* f = AsFile(file);
  if (f->image == nullptr) return RealMethods(f)->xWrite(f->real, data, amount, offset);
  const auto end = static_cast<std::size_t>(offset + amount);
  if (f->image->size() < end) f->image->resize(end, '\0');
  std::memcpy(f->image->data() + offset, data, static_cast<std::size_t>(amount));
  return SQLITE_OK;
}

int Truncate(sqlite3_file* file, sqlite3_int64 size) {
  File* f = AsFile(file);
  if (f->image == nullptr) return RealMethods(f)->xTruncate(f->real, size);
  f->image->resize(static_cast<std::size_t>(size));
  return SQLITE_OK;
}

// The image reaches the disk: the real file becomes exactly the image, then is synced.
int Sync(sqlite3_file* file, int flags) {
  File* f = AsFile(file);
  if (f->image != nullptr) {
    const std::string& image = *f->image;
    int rc = RealMethods(f)->xTruncate(f->real, static_cast<sqlite3_int64>(image.size()));
    constexpr std::size_t kChunk = 1 << 16;
    for (std::size_t at = 0; rc == SQLITE_OK && at < image.size(); at += kChunk) {
      const std::size_t n = std::min(kChunk, image.size() - at);
      rc = RealMethods(f)->xWrite(f->real, image.data() + at, static_cast<int>(n),
                                  static_cast<sqlite3_int64>(at));
    }
    if (rc != SQLITE_OK) return rc;
  }
  ++g_syncs;
  return RealMethods(f)->xSync(f->real, flags);
}

int FileSize(sqlite3_file* file, sqlite3_int64* size) {
  File* f = AsFile(file);
  if (f->image == nullptr) return RealMethods(f)->xFileSize(f->real, size);
  *size = static_cast<sqlite3_int64>(f->image->size());
  return SQLITE_OK;
}

int Lock(sqlite3_file* file, int level) {
  return RealMethods(AsFile(file))->xLock(AsFile(file)->real, level);
}
int Unlock(sqlite3_file* file, int level) {
  return RealMethods(AsFile(file))->xUnlock(AsFile(file)->real, level);
}
int CheckReservedLock(sqlite3_file* file, int* out) {
  return RealMethods(AsFile(file))->xCheckReservedLock(AsFile(file)->real, out);
}
int FileControl(sqlite3_file* file, int op, void* arg) {
  // Hints that would grow or preallocate the real file behind the image's back.
  if (op == SQLITE_FCNTL_SIZE_HINT || op == SQLITE_FCNTL_CHUNK_SIZE) return SQLITE_NOTFOUND;
  return RealMethods(AsFile(file))->xFileControl(AsFile(file)->real, op, arg);
}
int SectorSize(sqlite3_file* file) {
  return RealMethods(AsFile(file))->xSectorSize(AsFile(file)->real);
}
int DeviceCharacteristics(sqlite3_file* file) {
  return RealMethods(AsFile(file))->xDeviceCharacteristics(AsFile(file)->real);
}
int ShmMap(sqlite3_file* file, int page, int page_size, int extend, void volatile** out) {
  return RealMethods(AsFile(file))->xShmMap(AsFile(file)->real, page, page_size, extend, out);
}
int ShmLock(sqlite3_file* file, int offset, int n, int flags) {
  return RealMethods(AsFile(file))->xShmLock(AsFile(file)->real, offset, n, flags);
}
void ShmBarrier(sqlite3_file* file) { RealMethods(AsFile(file))->xShmBarrier(AsFile(file)->real); }
int ShmUnmap(sqlite3_file* file, int delete_flag) {
  return RealMethods(AsFile(file))->xShmUnmap(AsFile(file)->real, delete_flag);
}

// Version 2: no xFetch, so SQLite never memory-maps the (stale) real file.
const sqlite3_io_methods kMethods = {2,
                                     Close,
                                     Read,
                                     Write,
                                     Truncate,
                                     Sync,
                                     FileSize,
                                     Lock,
                                     Unlock,
                                     CheckReservedLock,
                                     FileControl,
                                     SectorSize,
                                     DeviceCharacteristics,
                                     ShmMap,
                                     ShmLock,
                                     ShmBarrier,
                                     ShmUnmap,
                                     nullptr,
                                     nullptr};

int Open(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* file, int flags, int* out_flags) {
  File* f = AsFile(file);
  f->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(f) + sizeof(File));
  f->image = nullptr;
  f->base.pMethods = nullptr;
  int rc = Real(vfs)->xOpen(Real(vfs), name, f->real, flags, out_flags);
  if (rc != SQLITE_OK) return rc;
  const bool durable_state =
      (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_JOURNAL)) != 0;
  if (durable_state) {
    sqlite3_int64 size = 0;
    rc = RealMethods(f)->xFileSize(f->real, &size);
    auto image = std::make_unique<std::string>(static_cast<std::size_t>(size), '\0');
    if (rc == SQLITE_OK && size > 0) {
      rc = RealMethods(f)->xRead(f->real, image->data(), static_cast<int>(size), 0);
    }
    if (rc != SQLITE_OK) {
      RealMethods(f)->xClose(f->real);
      return rc;
    }
    f->image = image.release();
  }
  f->base.pMethods = &kMethods;
  return SQLITE_OK;
}

int Delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  return Real(vfs)->xDelete(Real(vfs), name, sync_dir);
}
int Access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  return Real(vfs)->xAccess(Real(vfs), name, flags, out);
}
int FullPathname(sqlite3_vfs* vfs, const char* name, int n, char* out) {
  return Real(vfs)->xFullPathname(Real(vfs), name, n, out);
}
void* DlOpen(sqlite3_vfs* vfs, const char* name) { return Real(vfs)->xDlOpen(Real(vfs), name); }
void DlError(sqlite3_vfs* vfs, int n, char* out) { Real(vfs)->xDlError(Real(vfs), n, out); }
void (*DlSym(sqlite3_vfs* vfs, void* handle, const char* symbol))(void) {
  return Real(vfs)->xDlSym(Real(vfs), handle, symbol);
}
void DlClose(sqlite3_vfs* vfs, void* handle) { Real(vfs)->xDlClose(Real(vfs), handle); }
int Randomness(sqlite3_vfs* vfs, int n, char* out) {
  return Real(vfs)->xRandomness(Real(vfs), n, out);
}
int Sleep(sqlite3_vfs* vfs, int us) { return Real(vfs)->xSleep(Real(vfs), us); }
int CurrentTime(sqlite3_vfs* vfs, double* out) { return Real(vfs)->xCurrentTime(Real(vfs), out); }
int GetLastError(sqlite3_vfs* vfs, int n, char* out) {
  return Real(vfs)->xGetLastError(Real(vfs), n, out);
}
int CurrentTimeInt64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  return Real(vfs)->xCurrentTimeInt64(Real(vfs), out);
}

}  // namespace

bool RegisterPowerLossVfs() {
  static std::once_flag once;
  static bool registered = false;
  std::call_once(once, [] {
    sqlite3_vfs* real = sqlite3_vfs_find(nullptr);
    if (real == nullptr) return;
    static sqlite3_vfs vfs{};
    vfs.iVersion = 2;
    vfs.szOsFile = static_cast<int>(sizeof(File)) + real->szOsFile;
    vfs.mxPathname = real->mxPathname;
    vfs.zName = kPowerLossVfs;
    vfs.pAppData = real;
    vfs.xOpen = Open;
    vfs.xDelete = Delete;
    vfs.xAccess = Access;
    vfs.xFullPathname = FullPathname;
    vfs.xDlOpen = DlOpen;
    vfs.xDlError = DlError;
    vfs.xDlSym = DlSym;
    vfs.xDlClose = DlClose;
    vfs.xRandomness = Randomness;
    vfs.xSleep = Sleep;
    vfs.xCurrentTime = CurrentTime;
    vfs.xGetLastError = GetLastError;
    vfs.xCurrentTimeInt64 = CurrentTimeInt64;
    registered = sqlite3_vfs_register(&vfs, /*makeDflt=*/0) == SQLITE_OK;
  });
  return registered;
}

std::int64_t PowerLossSyncs() { return g_syncs.load(); }

void CopyDurableState(const std::string& db_path, const std::string& copy_path) {
  namespace fs = std::filesystem;
  for (const std::string suffix : {"", "-wal"}) {
    std::error_code ec;
    fs::remove(copy_path + suffix, ec);
    if (fs::exists(db_path + suffix)) {
      fs::copy_file(db_path + suffix, copy_path + suffix, fs::copy_options::overwrite_existing);
    }
  }
  std::error_code ec;
  fs::remove(copy_path + "-shm", ec);
}

}  // namespace peaknas::storage::testing
