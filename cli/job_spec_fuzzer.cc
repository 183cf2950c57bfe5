// The job-spec reader (`peaknas submit JOB.json`): any text is a JobSpec or an INVALID_ARGUMENT
// status, never a crash or an exception; a spec it accepts prints back to JSON that it accepts
// again as the same spec.
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cli/format.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto spec = peaknas::cli::ParseJobSpec(text);
  if (!spec.ok()) {
    if (spec.status().code() != peaknas::StatusCode::kInvalidArgument) {
      std::fprintf(stderr, "not INVALID_ARGUMENT: %s\n", spec.status().ToString().c_str());
      std::abort();
    }
    return 0;
  }
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(*spec, &json, options).ok()) return 0;
  const auto again = peaknas::cli::ParseJobSpec(json);
  if (!again.ok() || !google::protobuf::util::MessageDifferencer::Equals(*again, *spec)) {
    std::fprintf(stderr, "accepted spec does not round-trip: %s\n", json.c_str());
    std::abort();
  }
  return 0;
}
