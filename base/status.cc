#include "base/status.h"

#include "base/enum_names.h"

namespace peaknas {

// Built by appending: GCC 12 warns falsely (-Wrestrict) on "[" + std::to_string(...).
std::string RangeText(std::int64_t lo, std::int64_t hi) {
  std::string out = "[";
  out += std::to_string(lo);
  out += ", ";
  out += std::to_string(hi);
  out += "]";
  return out;
}

namespace {

// "FIELD: VALUE WHAT (NOTE)", the note only when there is one.
Status OutsideOf(std::string_view field, std::int64_t value, std::string_view what,
                 std::string_view note) {
  std::string message(field);
  message += ": ";
  message += std::to_string(value);
  message += " ";
  message += what;
  if (!note.empty()) {
    message += " (";
    message += note;
    message += ")";
  }
  return Status::InvalidArgument(std::move(message));
}

}  // namespace

Status CheckInRange(std::string_view field, std::int64_t value, std::int64_t lo, std::int64_t hi,
                    std::string_view note) {
  if (value >= lo && value <= hi) return Status::Ok();
  std::string what = "is not in ";
  what += RangeText(lo, hi);
  return OutsideOf(field, value, what, note);
}

Status CheckAtLeast(std::string_view field, std::int64_t value, std::int64_t lo,
                    std::string_view note) {
  if (value >= lo) return Status::Ok();
  std::string what = lo == 0 ? "is negative" : "is not >= ";
  if (lo != 0) what += std::to_string(lo);
  return OutsideOf(field, value, what, note);
}

namespace {

constexpr EnumNames<StatusCode, 17> kStatusCodeNames{
    {{{StatusCode::kOk, "OK"},
      {StatusCode::kCancelled, "CANCELLED"},
      {StatusCode::kUnknown, "UNKNOWN"},
      {StatusCode::kInvalidArgument, "INVALID_ARGUMENT"},
      {StatusCode::kDeadlineExceeded, "DEADLINE_EXCEEDED"},
      {StatusCode::kNotFound, "NOT_FOUND"},
      {StatusCode::kAlreadyExists, "ALREADY_EXISTS"},
      {StatusCode::kPermissionDenied, "PERMISSION_DENIED"},
      {StatusCode::kResourceExhausted, "RESOURCE_EXHAUSTED"},
      {StatusCode::kFailedPrecondition, "FAILED_PRECONDITION"},
      {StatusCode::kAborted, "ABORTED"},
      {StatusCode::kOutOfRange, "OUT_OF_RANGE"},
      {StatusCode::kUnimplemented, "UNIMPLEMENTED"},
      {StatusCode::kInternal, "INTERNAL"},
      {StatusCode::kUnavailable, "UNAVAILABLE"},
      {StatusCode::kDataLoss, "DATA_LOSS"},
      {StatusCode::kUnauthenticated, "UNAUTHENTICATED"}}}};

}  // namespace

std::string_view StatusCodeName(StatusCode code) { return kStatusCodeNames.Name(code, "UNKNOWN"); }

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out(StatusCodeName(code_));
  out += ": ";
  out += message_;
  return out;
}

}  // namespace peaknas
