// A SQLite VFS for tests that simulates losing power: what SQLite writes stays in memory (the
// "page cache") until SQLite syncs the file, and only then reaches the real file on disk.
//
// Register it, open a store with `vfs = kPowerLossVfs`, do work, then copy the real files
// (database and WAL, never the -shm index, which SQLite rebuilds) with CopyDurableState: the
// copy holds exactly what a machine that lost power at that moment would find on its disk.
// Opening the copy with the ordinary VFS runs SQLite's recovery as after a real power cut.
//
// It wraps the default ("unix") VFS: locking and the shared-memory index are the real ones, so
// it is a faithful SQLite file system for one process. Files are held whole in memory; meant
// for test-sized databases only.
#ifndef PEAKNAS_STORAGE_TESTING_POWERLOSS_VFS_H_
#define PEAKNAS_STORAGE_TESTING_POWERLOSS_VFS_H_

#include <cstdint>
#include <string>

namespace peaknas::storage::testing {

inline constexpr const char* kPowerLossVfs = "peaknas-powerloss";

// Registers the VFS (not as the default); idempotent. Returns false if SQLite refused.
bool RegisterPowerLossVfs();

// Syncs that reached the disk so far (all files).
std::int64_t PowerLossSyncs();

// Copies `db_path` and its "-wal" file as they are on disk (the synced state) to `copy_path`
// and "<copy_path>-wal". Call it between store calls, not during one.
void CopyDurableState(const std::string& db_path, const std::string& copy_path);

}  // namespace peaknas::storage::testing

#endif  // PEAKNAS_STORAGE_TESTING_POWERLOSS_VFS_H_
