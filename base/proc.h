// Reading Linux's /proc text files.
//
// Thread-safety: pure functions (each call opens the file anew).
#ifndef PEAKNAS_BASE_PROC_H_
#define PEAKNAS_BASE_PROC_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace peaknas::base {

// The "KEY:   N kB" line of a /proc file such as /proc/PID/status or /proc/meminfo, in bytes;
// -1 when the file cannot be read or has no such line (a process that has ended, a kernel
// without the field).
std::int64_t ProcKibField(const std::string& path, std::string_view key);

}  // namespace peaknas::base

#endif  // PEAKNAS_BASE_PROC_H_
