// Protobuf's JSON mapping, printed fast: byte for byte what
// google::protobuf::util::MessageToJsonString prints (compact, the same two options), at a small
// fraction of its cost. The library's printer (3.21) builds a google.protobuf.Type tree of the
// message and of every message it contains on each call and serializes the message to binary
// first; this one walks the message with reflection. The HTTP API prints every answer and every
// streamed event with it, and the coordinator the JSON it stores.
//
// Covered, and checked against the library's printer in json_test.cc (every message of
// peaknas.v1 filled at random, every Unicode code point, doubles of random bits): proto3
// messages with every scalar kind, enums (unknown values as numbers), repeated fields, oneofs,
// proto3 `optional`, nested messages and google.protobuf.Timestamp / Duration. Any other
// well-known type, and any message with a map field, is handed to the library's printer, so the
// output is the library's in every case.
//
// Thread-safety: pure functions of their arguments.
#ifndef PEAKNAS_PROTO_JSON_H_
#define PEAKNAS_PROTO_JSON_H_

#include <google/protobuf/message.h>

#include <string>

#include "base/status.h"

namespace peaknas::proto {

struct JsonOptions {
  // Fields at their default value are printed too (proto3 scalars, enums and repeated fields;
  // unset messages, oneof members and `optional` fields are still left out), as grpc-gateway
  // prints them.
  bool always_print_primitive_fields = false;
  // "job_id" instead of "jobId".
  bool preserve_proto_field_names = false;
};

// Appends `message` as JSON to `out`. INVALID_ARGUMENT for a Timestamp or Duration outside the
// range JSON can carry (out is then unspecified).
Status AppendJson(const google::protobuf::Message& message, const JsonOptions& options,
                  std::string* out);

// `message` as JSON; "" for one AppendJson refuses (the library's printer leaves "" then too).
std::string ToJson(const google::protobuf::Message& message, const JsonOptions& options = {});

}  // namespace peaknas::proto

#endif  // PEAKNAS_PROTO_JSON_H_
