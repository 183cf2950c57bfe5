// Status and StatusOr<T>: recoverable errors as values.
//
// Codes are gRPC's canonical codes, so the RPC layer converts a Status with one function.
// A Status is cheap to copy when OK (no allocation); an error carries a one-line message that
// names the offending field and the allowed range where there is one.
//
// Thread-safety: values; distinct objects may be used from distinct threads.
#ifndef PEAKNAS_BASE_STATUS_H_
#define PEAKNAS_BASE_STATUS_H_

#include <cassert>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace peaknas {

enum class StatusCode : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

std::string_view StatusCodeName(StatusCode code);

// "[lo, hi]": an allowed range, as error messages name it.
std::string RangeText(std::int64_t lo, std::int64_t hi);

class Status;
// OK when lo <= value <= hi; else INVALID_ARGUMENT "FIELD: VALUE is not in [LO, HI]", with
// " (NOTE)" appended when `note` is not empty (what a special value means, say).
Status CheckInRange(std::string_view field, std::int64_t value, std::int64_t lo, std::int64_t hi,
                    std::string_view note = {});
// OK when value >= lo; else INVALID_ARGUMENT "FIELD: VALUE is negative" when lo is 0,
// "FIELD: VALUE is not >= LO" otherwise, with " (NOTE)" appended when `note` is not empty.
Status CheckAtLeast(std::string_view field, std::int64_t value, std::int64_t lo,
                    std::string_view note = {});

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) {
    return {StatusCode::kInvalidArgument, std::move(m)};
  }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status OutOfRange(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
  static Status ResourceExhausted(std::string m) {
    return {StatusCode::kResourceExhausted, std::move(m)};
  }
  static Status FailedPrecondition(std::string m) {
    return {StatusCode::kFailedPrecondition, std::move(m)};
  }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
  static Status Cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "INVALID_ARGUMENT: widths[2]: 12 is not a multiple of 8 in [8, 512]"
  std::string ToString() const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Either a value or a non-OK Status. Accessing the value of an error is a broken invariant.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.ok() && "StatusOr constructed from an OK status without a value");
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T& value() & {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace peaknas

#define PEAKNAS_CONCAT_INNER_(a, b) a##b
#define PEAKNAS_CONCAT_(a, b) PEAKNAS_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function if `expr` is not OK.
#define PEAKNAS_RETURN_IF_ERROR(expr)                  \
  do {                                                 \
    ::peaknas::Status peaknas_status_ = (expr);        \
    if (!peaknas_status_.ok()) return peaknas_status_; \
  } while (0)

// `lhs = value of expr`, or returns its status from the enclosing function.
#define PEAKNAS_ASSIGN_OR_RETURN(lhs, expr) \
  PEAKNAS_ASSIGN_OR_RETURN_IMPL_(PEAKNAS_CONCAT_(peaknas_statusor_, __LINE__), lhs, expr)
#define PEAKNAS_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return tmp.status();                  \
  lhs = std::move(tmp).value()

#endif  // PEAKNAS_BASE_STATUS_H_
