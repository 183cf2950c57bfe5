#include "proto/json.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace peaknas::proto {

namespace {

namespace pb = google::protobuf;
using FD = pb::FieldDescriptor;

// The library's escaping: the two-character escapes for \b \t \n \f \r " \, \uXXXX for the
// other C0 and C1 controls, '<', '>', DEL, and the format and separator characters browsers
// treat specially; everything else, non-ASCII included, stays as UTF-8.
bool EscapedCodePoint(std::uint32_t cp) {
  return cp < 0x20 || cp == '<' || cp == '>' || (cp >= 0x7f && cp <= 0x9f) || cp == 0xad ||
         (cp >= 0x600 && cp <= 0x603) || cp == 0x6dd || cp == 0x70f || cp == 0x17b4 ||
         cp == 0x17b5 || (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) ||
         (cp >= 0x2060 && cp <= 0x2064) || (cp >= 0x206a && cp <= 0x206f) || cp == 0xfeff ||
         (cp >= 0xfff9 && cp <= 0xfffb) || (cp >= 0x1d173 && cp <= 0x1d17a) || cp == 0xe0001 ||
         (cp >= 0xe0020 && cp <= 0xe007f);
}

void AppendUnicodeEscape(std::uint32_t unit, std::string* out) {
  char buffer[8];
  std::snprintf(buffer, sizeof buffer, "\\u%04x", unit);
  out->append(buffer, 6);
}

void AppendString(std::string_view s, std::string* out) {
  out->push_back('"');
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '<' && c != '>') {
      // Runs of plain ASCII, the common case, are copied at once.
      std::size_t j = i + 1;
      while (j < s.size()) {
        const auto d = static_cast<unsigned char>(s[j]);
        if (d < 0x20 || d >= 0x7f || d == '"' || d == '\\' || d == '<' || d == '>') break;
        ++j;
      }
      out->append(s.data() + i, j - i);
      i = j;
      continue;
    }
    switch (c) {
      case '"':
        out->append("\\\"");
        ++i;
        continue;
      case '\\':
        out->append("\\\\");
        ++i;
        continue;
      case '\b':
        out->append("\\b");
        ++i;
        continue;
      case '\t':
        out->append("\\t");
        ++i;
        continue;
      case '\n':
        out->append("\\n");
        ++i;
        continue;
      case '\f':
        out->append("\\f");
        ++i;
        continue;
      case '\r':
        out->append("\\r");
        ++i;
        continue;
      default:
        break;
    }
    if (c < 0x80) {
      AppendUnicodeEscape(c, out);
      ++i;
      continue;
    }
    // A UTF-8 sequence (proto3 strings are valid UTF-8).
    const std::size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
    if (i + n > s.size()) {
      out->append(s.data() + i, s.size() - i);
      break;
    }
    std::uint32_t cp = n == 4 ? c & 0x07u : n == 3 ? c & 0x0fu : c & 0x1fu;
    for (std::size_t k = 1; k < n; ++k)
      cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3fu);
    if (!EscapedCodePoint(cp)) {
      out->append(s.data() + i, n);
    } else if (cp < 0x10000) {
      AppendUnicodeEscape(cp, out);
    } else {
      cp -= 0x10000;
      AppendUnicodeEscape(0xd800 + (cp >> 10), out);
      AppendUnicodeEscape(0xdc00 + (cp & 0x3ff), out);
    }
    i += n;
  }
  out->push_back('"');
}

// The library's SimpleDtoa / SimpleFtoa: the shortest of 15 (6) and 17 (9) significant digits
// that reads back to the same value.
void AppendDouble(double v, std::string* out) {
  if (std::isnan(v)) {
    out->append("\"NaN\"");
    return;
  }
  if (std::isinf(v)) {
    out->append(v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    return;
  }
  char buffer[32];
  auto r = std::to_chars(buffer, buffer + sizeof buffer, v, std::chars_format::general, 15);
  double back = 0;
  std::from_chars(buffer, r.ptr, back);
  if (back != v)
    r = std::to_chars(buffer, buffer + sizeof buffer, v, std::chars_format::general, 17);
  out->append(buffer, r.ptr);
}

void AppendFloat(float v, std::string* out) {
  if (std::isnan(v) || std::isinf(v)) return AppendDouble(v, out);
  char buffer[32];
  int n = std::snprintf(buffer, sizeof buffer, "%.6g", static_cast<double>(v));
  if (std::strtof(buffer, nullptr) != v) {
    n = std::snprintf(buffer, sizeof buffer, "%.9g", static_cast<double>(v));
  }
  out->append(buffer, static_cast<std::size_t>(n));
}

template <typename Int>
void AppendInt(Int v, bool quoted, std::string* out) {
  char buffer[24];
  const auto r = std::to_chars(buffer, buffer + sizeof buffer, v);
  if (quoted) out->push_back('"');
  out->append(buffer, r.ptr);
  if (quoted) out->push_back('"');
}

// Standard base64 with padding, as the library prints bytes.
void AppendBase64(std::string_view bytes, std::string* out) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  out->push_back('"');
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = (static_cast<unsigned char>(bytes[i]) << 16) |
                            (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                            static_cast<unsigned char>(bytes[i + 2]);
    for (int shift : {18, 12, 6, 0}) out->push_back(kAlphabet[(v >> shift) & 63]);
  }
  if (i + 1 == bytes.size()) {
    const std::uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
    out->push_back(kAlphabet[(v >> 18) & 63]);
    out->push_back(kAlphabet[(v >> 12) & 63]);
    out->append("==");
  } else if (i + 2 == bytes.size()) {
    const std::uint32_t v = (static_cast<unsigned char>(bytes[i]) << 16) |
                            (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out->push_back(kAlphabet[(v >> 18) & 63]);
    out->push_back(kAlphabet[(v >> 12) & 63]);
    out->push_back(kAlphabet[(v >> 6) & 63]);
    out->push_back('=');
  }
  out->push_back('"');
}

// Nanoseconds as the library prints them after a second: none, or 3, 6 or 9 digits.
void AppendNanos(std::int32_t nanos, std::string* out) {
  if (nanos == 0) return;
  char buffer[16];
  if (nanos % 1'000'000 == 0) {
    std::snprintf(buffer, sizeof buffer, ".%03d", nanos / 1'000'000);
  } else if (nanos % 1'000 == 0) {
    std::snprintf(buffer, sizeof buffer, ".%06d", nanos / 1'000);
  } else {
    std::snprintf(buffer, sizeof buffer, ".%09d", nanos);
  }
  out->append(buffer);
}

Status AppendTimestamp(const pb::Message& m, std::string* out) {
  const pb::Reflection* r = m.GetReflection();
  const pb::Descriptor* d = m.GetDescriptor();
  const std::int64_t seconds = r->GetInt64(m, d->field(0));
  const std::int32_t nanos = r->GetInt32(m, d->field(1));
  // 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z, as RFC 3339 allows.
  if (seconds < -62'135'596'800 || seconds > 253'402'300'799 || nanos < 0 || nanos > 999'999'999) {
    return Status::InvalidArgument("timestamp out of range: " + std::to_string(seconds) + " s " +
                                   std::to_string(nanos) + " ns");
  }
  // The civil date of the day (Hinnant's days-to-civil: proleptic Gregorian, UTC).
  std::int64_t days = seconds / 86'400;
  std::int64_t in_day = seconds % 86'400;
  if (in_day < 0) {
    in_day += 86'400;
    --days;
  }
  const std::int64_t z = days + 719'468;
  const std::int64_t era = (z >= 0 ? z : z - 146'096) / 146'097;
  const std::int64_t doe = z - era * 146'097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36'524 - doe / 146'096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const std::int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const std::int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  char buffer[24] = "\"YYYY-MM-DDThh:mm:ss";
  const auto digits = [&](int at, std::int64_t value, int n) {
    for (int i = n - 1; i >= 0; --i, value /= 10)
      buffer[at + i] = static_cast<char>('0' + value % 10);
  };
  digits(1, year, 4);
  digits(6, month, 2);
  digits(9, day, 2);
  digits(12, in_day / 3600, 2);
  digits(15, in_day / 60 % 60, 2);
  digits(18, in_day % 60, 2);
  out->append(buffer, 20);
  AppendNanos(nanos, out);
  out->append("Z\"");
  return Status::Ok();
}

Status AppendDuration(const pb::Message& m, std::string* out) {
  const pb::Reflection* r = m.GetReflection();
  const pb::Descriptor* d = m.GetDescriptor();
  const std::int64_t seconds = r->GetInt64(m, d->field(0));
  const std::int32_t nanos = r->GetInt32(m, d->field(1));
  if (seconds < -315'576'000'000 || seconds > 315'576'000'000 || nanos <= -1'000'000'000 ||
      nanos >= 1'000'000'000 || (seconds < 0 && nanos > 0) || (seconds > 0 && nanos < 0)) {
    return Status::InvalidArgument("duration out of range: " + std::to_string(seconds) + " s " +
                                   std::to_string(nanos) + " ns");
  }
  out->push_back('"');
  if (seconds < 0 || nanos < 0) out->push_back('-');
  AppendInt(seconds < 0 ? -seconds : seconds, false, out);
  AppendNanos(nanos < 0 ? -nanos : nanos, out);
  out->append("s\"");
  return Status::Ok();
}

Status AppendMessage(const pb::Message& m, const JsonOptions& options, std::string* out);

// One value of `field` (the index-th element when repeated).
Status AppendValue(const pb::Message& m, const FD* field, int index, const JsonOptions& options,
                   std::string* out) {
  const pb::Reflection* r = m.GetReflection();
  const bool rep = field->is_repeated();
  switch (field->cpp_type()) {
    case FD::CPPTYPE_INT32:
      AppendInt(rep ? r->GetRepeatedInt32(m, field, index) : r->GetInt32(m, field), false, out);
      break;
    case FD::CPPTYPE_UINT32:
      AppendInt(rep ? r->GetRepeatedUInt32(m, field, index) : r->GetUInt32(m, field), false, out);
      break;
    case FD::CPPTYPE_INT64:
      AppendInt(rep ? r->GetRepeatedInt64(m, field, index) : r->GetInt64(m, field), true, out);
      break;
    case FD::CPPTYPE_UINT64:
      AppendInt(rep ? r->GetRepeatedUInt64(m, field, index) : r->GetUInt64(m, field), true, out);
      break;
    case FD::CPPTYPE_DOUBLE:
      AppendDouble(rep ? r->GetRepeatedDouble(m, field, index) : r->GetDouble(m, field), out);
      break;
    case FD::CPPTYPE_FLOAT:
      AppendFloat(rep ? r->GetRepeatedFloat(m, field, index) : r->GetFloat(m, field), out);
      break;
    case FD::CPPTYPE_BOOL:
      out->append((rep ? r->GetRepeatedBool(m, field, index) : r->GetBool(m, field)) ? "true"
                                                                                     : "false");
      break;
    case FD::CPPTYPE_ENUM: {
      const int number = rep ? r->GetRepeatedEnumValue(m, field, index) : r->GetEnumValue(m, field);
      if (field->enum_type()->full_name() == "google.protobuf.NullValue") {
        out->append("null");
      } else if (const pb::EnumValueDescriptor* v = field->enum_type()->FindValueByNumber(number)) {
        out->push_back('"');
        out->append(v->name());
        out->push_back('"');
      } else {
        AppendInt(number, false, out);
      }
      break;
    }
    case FD::CPPTYPE_STRING: {
      std::string scratch;
      const std::string& s = rep ? r->GetRepeatedStringReference(m, field, index, &scratch)
                                 : r->GetStringReference(m, field, &scratch);
      if (field->type() == FD::TYPE_BYTES) {
        AppendBase64(s, out);
      } else {
        AppendString(s, out);
      }
      break;
    }
    case FD::CPPTYPE_MESSAGE:
      return AppendMessage(rep ? r->GetRepeatedMessage(m, field, index) : r->GetMessage(m, field),
                           options, out);
  }
  return Status::Ok();
}

// Whether the library's printer must print this message: well-known types other than
// Timestamp and Duration, and messages with map fields (their order follows the binary form).
bool LibraryPrints(const pb::Descriptor* d) {
  if (d->file()->name().rfind("google/protobuf/", 0) == 0) return true;
  for (int i = 0; i < d->field_count(); ++i) {
    if (d->field(i)->is_map()) return true;
  }
  return false;
}

// Whether the library prints `d` itself, and the order it prints the fields of `d` in. Without
// defaults: as the binary form holds them (by number). With them: every other field in declaration
// order, then the members of oneofs (proto3 `optional` included) by number, then the
// well-known-type fields (Timestamp) by number (its default-filling writer lays out the fields it
// fills by default first and appends the others as they come; json_test.cc pins the order down).
struct Layout {
  bool library_prints = false;  // LibraryPrints(d)
  std::vector<const FD*> order;
};
Layout MakeLayout(const pb::Descriptor* d, bool defaults) {
  Layout layout;
  layout.library_prints = LibraryPrints(d);
  std::vector<const FD*>& order = layout.order;
  std::vector<const FD*> oneof_members, well_known;
  for (int i = 0; i < d->field_count(); ++i) {
    const FD* field = d->field(i);
    if (defaults && field->containing_oneof() != nullptr) {
      oneof_members.push_back(field);
    } else if (defaults && !field->is_repeated() && field->cpp_type() == FD::CPPTYPE_MESSAGE &&
               field->message_type()->file()->name().rfind("google/protobuf/", 0) == 0) {
      well_known.push_back(field);
    } else {
      order.push_back(field);
    }
  }
  const auto by_number = [](const FD* a, const FD* b) { return a->number() < b->number(); };
  if (!defaults) std::sort(order.begin(), order.end(), by_number);
  for (std::vector<const FD*>* appended : {&oneof_members, &well_known}) {
    std::sort(appended->begin(), appended->end(), by_number);
    order.insert(order.end(), appended->begin(), appended->end());
  }
  return layout;
}

// The layouts made so far, shared by every thread: an immutable map behind an atomic pointer,
// replaced by a larger copy (under a mutex) when a message type is printed for the first time.
// Readers take no lock. Every map made is kept until exit (a reader may still hold an old one).
using Layouts = std::unordered_map<const pb::Descriptor*, Layout>;
std::atomic<const Layouts*> g_layouts[2];

const Layout& LayoutOf(const pb::Descriptor* d, bool defaults) {
  if (const Layouts* known = g_layouts[defaults].load(std::memory_order_acquire)) {
    if (auto it = known->find(d); it != known->end()) return it->second;
  }
  static std::mutex mu;
  static std::vector<std::unique_ptr<Layouts>> kept;
  std::lock_guard lock(mu);
  const Layouts* known = g_layouts[defaults].load(std::memory_order_acquire);
  if (known != nullptr) {
    if (auto it = known->find(d); it != known->end()) return it->second;
  }
  auto grown = known != nullptr ? std::make_unique<Layouts>(*known) : std::make_unique<Layouts>();
  grown->emplace(d, MakeLayout(d, defaults));
  const Layout& made = grown->at(d);
  g_layouts[defaults].store(grown.get(), std::memory_order_release);
  kept.push_back(std::move(grown));
  return made;
}

Status AppendMessage(const pb::Message& m, const JsonOptions& options, std::string* out) {
  const pb::Descriptor* d = m.GetDescriptor();
  if (d->well_known_type() == pb::Descriptor::WELLKNOWNTYPE_TIMESTAMP) {
    return AppendTimestamp(m, out);
  }
  if (d->well_known_type() == pb::Descriptor::WELLKNOWNTYPE_DURATION) {
    return AppendDuration(m, out);
  }
  const Layout& layout = LayoutOf(d, options.always_print_primitive_fields);
  if (layout.library_prints) {
    pb::util::JsonPrintOptions library;
    library.always_print_primitive_fields = options.always_print_primitive_fields;
    library.preserve_proto_field_names = options.preserve_proto_field_names;
    std::string json;
    const auto printed = pb::util::MessageToJsonString(m, &json, library);
    if (!printed.ok()) return Status::InvalidArgument(std::string(printed.message()));
    out->append(json);
    return Status::Ok();
  }
  const pb::Reflection* r = m.GetReflection();
  out->push_back('{');
  bool first = true;
  for (const FD* field : layout.order) {
    if (field->is_repeated()) {
      if (r->FieldSize(m, field) == 0 && !options.always_print_primitive_fields) continue;
    } else if (field->has_presence()) {
      // Messages, oneof members and proto3 `optional`: printed when set.
      if (!r->HasField(m, field)) continue;
    } else if (!options.always_print_primitive_fields && !r->HasField(m, field)) {
      continue;  // a proto3 scalar at its default
    }
    if (!first) out->push_back(',');
    first = false;
    out->push_back('"');
    out->append(options.preserve_proto_field_names ? field->name() : field->json_name());
    out->append("\":");
    if (field->is_repeated()) {
      out->push_back('[');
      const int n = r->FieldSize(m, field);
      for (int k = 0; k < n; ++k) {
        if (k > 0) out->push_back(',');
        PEAKNAS_RETURN_IF_ERROR(AppendValue(m, field, k, options, out));
      }
      out->push_back(']');
    } else {
      PEAKNAS_RETURN_IF_ERROR(AppendValue(m, field, -1, options, out));
    }
  }
  out->push_back('}');
  return Status::Ok();
}

}  // namespace

Status AppendJson(const pb::Message& message, const JsonOptions& options, std::string* out) {
  return AppendMessage(message, options, out);
}

std::string ToJson(const pb::Message& message, const JsonOptions& options) {
  std::string out;
  if (!AppendJson(message, options, &out).ok()) return {};
  return out;
}

}  // namespace peaknas::proto
