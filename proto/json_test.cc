#include "proto/json.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "peaknas/v1/peaknas.pb.h"

namespace peaknas::proto {
namespace {

namespace pb = google::protobuf;
using FD = pb::FieldDescriptor;

std::string Library(const pb::Message& m, const JsonOptions& options) {
  pb::util::JsonPrintOptions library;
  library.always_print_primitive_fields = options.always_print_primitive_fields;
  library.preserve_proto_field_names = options.preserve_proto_field_names;
  std::string json;
  EXPECT_TRUE(pb::util::MessageToJsonString(m, &json, library).ok());
  return json;
}

std::string Ours(const pb::Message& m, const JsonOptions& options) {
  std::string json;
  const Status printed = AppendJson(m, options, &json);
  EXPECT_TRUE(printed.ok()) << printed.ToString();
  return json;
}

const JsonOptions kAllOptions[] = {{false, false}, {true, false}, {false, true}, {true, true}};

// Fills `m` at random through reflection: every field kind, extremes, unknown enum numbers,
// strings with escapes and non-ASCII text, nested messages down to `depth`.
class Filler {
 public:
  explicit Filler(std::uint64_t seed) : rng_(seed) {}

  void Fill(pb::Message* m, int depth) {
    const pb::Descriptor* d = m->GetDescriptor();
    if (d->well_known_type() == pb::Descriptor::WELLKNOWNTYPE_TIMESTAMP) {
      const pb::Reflection* r = m->GetReflection();
      r->SetInt64(m, d->field(0),
                  Pick({0LL, 1'700'000'000LL, -62'135'596'800LL, 253'402'300'799LL,
                        static_cast<long long>(rng_() % 253'402'300'799LL),
                        -static_cast<long long>(rng_() % 62'135'596'800LL)}));
      r->SetInt32(m, d->field(1),
                  static_cast<std::int32_t>(
                      Pick<long long>({0, 1'000'000, 123'000, 7, 999'999'999,
                                       static_cast<long long>(rng_() % 1'000'000'000)})));
      return;
    }
    for (int i = 0; i < d->field_count(); ++i) {
      if (rng_() % 10 < 3) continue;  // some fields stay unset
      const FD* field = d->field(i);
      if (field->cpp_type() == FD::CPPTYPE_MESSAGE && depth <= 0) continue;
      const int n = field->is_repeated() ? static_cast<int>(rng_() % 4) : 1;
      for (int k = 0; k < n; ++k) Set(m, field, depth);
    }
  }

 private:
  template <typename T>
  T Pick(std::initializer_list<T> values) {
    return values.begin()[rng_() % values.size()];
  }

  std::int64_t Int64() {
    return Pick<std::int64_t>({0, 1, -1, 42, std::numeric_limits<std::int64_t>::max(),
                               std::numeric_limits<std::int64_t>::min(),
                               static_cast<std::int64_t>(rng_())});
  }

  double Double() {
    switch (rng_() % 4) {
      case 0: {
        const std::uint64_t bits = rng_();
        double v;
        std::memcpy(&v, &bits, sizeof v);
        return v;  // NaN and infinities included
      }
      case 1:
        return Pick({0.0, -0.0, 0.1, 1e21, 1e-7, 33.25, 1.0 / 3,
                     std::numeric_limits<double>::infinity(),
                     std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::max(),
                     std::numeric_limits<double>::denorm_min()});
      default:
        return std::uniform_real_distribution<double>(-1e6, 1e6)(rng_);
    }
  }

  std::string Text() {
    static const char* const kPieces[] = {
        "j-1",        "a",      " ",      "\"",      "\\",   "/",          "<",      ">",
        "&",          "\n",     "\t",     "\x01",    "\x7f", "é",          "\u2028", "\u00ad",
        "\U0001F600", "\u200b", "\ufeff", "conv3x3", "w-17", "\U000E0041", "\u0600"};
    std::string s;
    const int n = static_cast<int>(rng_() % 6);
    for (int i = 0; i < n; ++i) s += kPieces[rng_() % std::size(kPieces)];
    return s;
  }

  // Adds a random value to a repeated field, or sets a singular one.
  void Set(pb::Message* m, const FD* field, int depth) {
    using R = pb::Reflection;
    const R* r = m->GetReflection();
    const bool rep = field->is_repeated();
    // Stores `v` with `add` for a repeated field, with `set` for a singular one.
    const auto put = [&](auto add, auto set, auto v) { (r->*(rep ? add : set))(m, field, v); };
    switch (field->cpp_type()) {
      case FD::CPPTYPE_INT32:
        return put(&R::AddInt32, &R::SetInt32, static_cast<std::int32_t>(Int64()));
      case FD::CPPTYPE_UINT32:
        return put(&R::AddUInt32, &R::SetUInt32, static_cast<std::uint32_t>(Int64()));
      case FD::CPPTYPE_INT64:
        return put(&R::AddInt64, &R::SetInt64, Int64());
      case FD::CPPTYPE_UINT64:
        return put(&R::AddUInt64, &R::SetUInt64, static_cast<std::uint64_t>(Int64()));
      case FD::CPPTYPE_DOUBLE:
        return put(&R::AddDouble, &R::SetDouble, Double());
      case FD::CPPTYPE_FLOAT:
        return put(&R::AddFloat, &R::SetFloat, static_cast<float>(Double()));
      case FD::CPPTYPE_BOOL:
        return put(&R::AddBool, &R::SetBool, rng_() % 2 == 0);
      case FD::CPPTYPE_ENUM: {
        const pb::EnumDescriptor* e = field->enum_type();
        const int v = rng_() % 5 == 0
                          ? 1000 + static_cast<int>(rng_() % 10)  // unknown
                          : e->value(static_cast<int>(rng_() % e->value_count()))->number();
        return put(&R::AddEnumValue, &R::SetEnumValue, v);
      }
      case FD::CPPTYPE_STRING: {
        std::string v = Text();
        if (field->type() == FD::TYPE_BYTES) {
          v.clear();
          for (int i = static_cast<int>(rng_() % 8); i > 0; --i) v += static_cast<char>(rng_());
        }
        return put(&R::AddString, &R::SetString, std::move(v));
      }
      case FD::CPPTYPE_MESSAGE:
        Fill(rep ? r->AddMessage(m, field) : r->MutableMessage(m, field), depth - 1);
        break;
    }
  }

  std::mt19937_64 rng_;
};

void CollectMessages(const pb::Descriptor* d, std::vector<const pb::Descriptor*>* out) {
  out->push_back(d);
  for (int i = 0; i < d->nested_type_count(); ++i) CollectMessages(d->nested_type(i), out);
}

TEST(Json, EveryPeaknasMessageFilledAtRandomPrintsAsTheLibraryPrintsIt) {
  const pb::FileDescriptor* file = v1::JobEvent::descriptor()->file();
  std::vector<const pb::Descriptor*> messages;
  for (int i = 0; i < file->message_type_count(); ++i) {
    CollectMessages(file->message_type(i), &messages);
  }
  ASSERT_GT(messages.size(), 30u);
  int compared = 0;
  for (const pb::Descriptor* d : messages) {
    const pb::Message* prototype = pb::MessageFactory::generated_factory()->GetPrototype(d);
    ASSERT_NE(prototype, nullptr) << d->full_name();
    for (std::uint64_t seed = 0; seed < 40; ++seed) {
      std::unique_ptr<pb::Message> m(prototype->New());
      Filler(seed * 7919 + static_cast<std::uint64_t>(compared)).Fill(m.get(), seed < 2 ? 0 : 3);
      for (const JsonOptions& options : kAllOptions) {
        ASSERT_EQ(Ours(*m, options), Library(*m, options))
            << d->full_name() << " seed " << seed << " always_print "
            << options.always_print_primitive_fields << " proto_names "
            << options.preserve_proto_field_names << "\n"
            << m->DebugString();
        ++compared;
      }
    }
  }
  EXPECT_GT(compared, 1000);
}

TEST(Json, EveryUnicodeCodePointIsEscapedAsTheLibraryEscapesIt) {
  v1::Trial t;
  std::string chunk;
  const auto flush = [&] {
    t.set_reason(chunk);
    const std::string ours = Ours(t, {});
    const std::string library = Library(t, {});
    if (ours != library) {
      // Find the first code point that differs, to name it.
      std::size_t i = 0;
      while (i < ours.size() && i < library.size() && ours[i] == library[i]) ++i;
      FAIL() << "differs at byte " << i << ": ours ..." << ours.substr(i > 20 ? i - 20 : 0, 60)
             << "\nlibrary ..." << library.substr(i > 20 ? i - 20 : 0, 60);
    }
    chunk.clear();
  };
  for (std::uint32_t cp = 1; cp <= 0x10ffff; ++cp) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;  // surrogates are not characters
    if (cp < 0x80) {
      chunk += static_cast<char>(cp);
    } else if (cp < 0x800) {
      chunk += static_cast<char>(0xc0 | (cp >> 6));
      chunk += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      chunk += static_cast<char>(0xe0 | (cp >> 12));
      chunk += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      chunk += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      chunk += static_cast<char>(0xf0 | (cp >> 18));
      chunk += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      chunk += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      chunk += static_cast<char>(0x80 | (cp & 0x3f));
    }
    if (chunk.size() >= 1 << 16) {
      flush();
      if (HasFatalFailure()) return;
    }
  }
  flush();
}

TEST(Json, DoublesOfRandomBitsPrintAsTheLibraryPrintsThem) {
  std::mt19937_64 rng(3);
  v1::TrialMetrics m;
  for (int i = 0; i < 20'000; ++i) {
    std::uint64_t bits = rng();
    if (i % 4 == 1) bits >>= 12 + i % 40;  // small and subnormal magnitudes
    double v;
    std::memcpy(&v, &bits, sizeof v);
    if (i % 4 == 2) v = std::round(v * 1e3) / 1e3;  // short decimals, as measurements are
    if (i % 4 == 3) v = static_cast<double>(static_cast<std::int64_t>(bits >> 20)) / 1024;
    m.set_psnr(v);
    ASSERT_EQ(Ours(m, {}), Library(m, {})) << "bits " << bits;
  }
}

TEST(Json, TimestampsOutsideTheJsonRangeAreRefusedLikeTheLibraryDoes) {
  v1::Job job;
  job.mutable_created()->set_seconds(253'402'300'800);  // year 10000
  std::string json;
  EXPECT_EQ(AppendJson(job, {}, &json).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ToJson(job), "");
  std::string library;
  EXPECT_FALSE(pb::util::MessageToJsonString(job, &library).ok());
  job.mutable_created()->set_seconds(253'402'300'799);
  job.mutable_created()->set_nanos(999'999'999);
  EXPECT_EQ(ToJson(job), Library(job, {}));
  EXPECT_NE(ToJson(job).find("9999-12-31T23:59:59.999999999Z"), std::string::npos);
}

TEST(Json, OtherWellKnownTypesAreLeftToTheLibrary) {
  pb::Struct s;
  (*s.mutable_fields())["b"].set_number_value(2);
  (*s.mutable_fields())["a"].mutable_list_value()->add_values()->set_string_value("<x>");
  for (const JsonOptions& options : kAllOptions) EXPECT_EQ(Ours(s, options), Library(s, options));
}

}  // namespace
}  // namespace peaknas::proto
