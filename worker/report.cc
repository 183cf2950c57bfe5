#include "worker/report.h"

#include <google/protobuf/message.h>

#include <cstdint>

#include "proto/convert.h"
#include "search/architecture.h"

namespace peaknas::worker {
namespace {

using Json = nlohmann::json;

double Ratio(std::int64_t predicted, std::int64_t measured) {
  return measured > 0 ? static_cast<double>(predicted) / static_cast<double>(measured) : 0.0;
}

}  // namespace

Json MessageNumbersJson(const google::protobuf::Message& m) {
  using google::protobuf::FieldDescriptor;
  Json j = Json::object();
  const auto* descriptor = m.GetDescriptor();
  const auto* reflection = m.GetReflection();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor* f = descriptor->field(i);
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        j[f->name()] = reflection->GetString(m, f);
        break;
      case FieldDescriptor::CPPTYPE_DOUBLE:
        j[f->name()] = reflection->GetDouble(m, f);
        break;
      case FieldDescriptor::CPPTYPE_INT32:
        j[f->name()] = reflection->GetInt32(m, f);
        break;
      case FieldDescriptor::CPPTYPE_INT64:
        j[f->name()] = reflection->GetInt64(m, f);
        break;
      default:
        break;
    }
  }
  return j;
}

nlohmann::json TrialReport(const TrialSpec& spec, const TrialResult& r) {
  Json j = MessageNumbersJson(proto::ToProto(r));
  j["arch"] = Json::parse(search::ToCanonicalJson(r.arch));
  j["arch_hash"] = search::CanonicalHashHex(r.arch);
  j["precision"] = Name(spec.precision);
  j["dtype"] = search::Name(r.dtype);
  j["threads"] = r.intra_op_threads;
  j["seed"] = spec.seed;
  j["data"] = spec.data_dir;
  j["lr"] = spec.learning_rate;
  j["train_batch"] = spec.train_shape.batch;
  j["patch"] = spec.train_shape.size;
  j["batch"] = spec.tile.batch;
  j["tile"] = spec.tile.size;
  j["eval_batch"] = spec.eval_batch;
  if (r.parent_arch.has_value()) {
    j["parent"] = spec.parent_model;
    j["parent_arch"] = Json::parse(search::ToCanonicalJson(*r.parent_arch));
    j["importance"] = Name(spec.importance);
  }
  j["psnr_gain"] = r.scores.psnr - r.noisy.psnr;
  j["inference_ratio"] = Ratio(r.predicted_inference_peak_bytes, r.measured_inference_peak_bytes);
  j["train_ratio"] = Ratio(r.predicted_train_peak_bytes, r.measured_train_peak_bytes);
  j["export"] = r.export_path.has_value() ? Json(*r.export_path) : Json();
  return j;
}

}  // namespace peaknas::worker
