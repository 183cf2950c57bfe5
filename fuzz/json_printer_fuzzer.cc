// Differential: proto::AppendJson must print exactly what protobuf's own printer prints, for any
// message a peer can send. The input's first byte picks the message type and the two options;
// the rest is the message in protobuf's wire format (inputs that do not parse are skipped).
#include <google/protobuf/util/json_util.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <string>

#include "peaknas/v1/peaknas.pb.h"
#include "proto/json.h"

namespace {

namespace pb = google::protobuf;

template <typename Message>
void Compare(const std::uint8_t* data, std::size_t size, bool defaults, bool proto_names) {
  Message m;
  if (!m.ParseFromArray(data, static_cast<int>(size))) return;
  pb::util::JsonPrintOptions options;
  options.always_print_primitive_fields = defaults;
  options.preserve_proto_field_names = proto_names;
  std::string library, ours;
  const bool library_ok = pb::util::MessageToJsonString(m, &library, options).ok();
  const bool ours_ok =
      peaknas::proto::AppendJson(
          m, {.always_print_primitive_fields = defaults, .preserve_proto_field_names = proto_names},
          &ours)
          .ok();
  if (library_ok != ours_ok || (library_ok && library != ours)) {
    std::fprintf(stderr, "%s (defaults %d, proto names %d): protobuf %s\n  %s\nours %s\n  %s\n",
                 Message::descriptor()->full_name().c_str(), defaults, proto_names,
                 library_ok ? "printed" : "refused", library.c_str(),
                 ours_ok ? "printed" : "refused", ours.c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t pick = data[0];
  const bool defaults = (pick & 1) != 0, proto_names = (pick & 2) != 0;
  // The messages clients read as JSON; the input's first byte picks one.
  using Comparison = void (*)(const std::uint8_t*, std::size_t, bool, bool);
  static constexpr Comparison kComparisons[] = {
      &Compare<peaknas::v1::JobEvent>, &Compare<peaknas::v1::Job>, &Compare<peaknas::v1::Trial>,
      &Compare<peaknas::v1::JobSpec>, &Compare<peaknas::v1::Worker>};
  kComparisons[(pick >> 2) % std::size(kComparisons)](data + 1, size - 1, defaults, proto_names);
  return 0;
}
