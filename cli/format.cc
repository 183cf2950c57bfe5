#include "cli/format.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <system_error>

#include "base/app.h"
#include "proto/convert.h"
#include "search/architecture.h"

namespace peaknas::cli {
namespace {

namespace pb = google::protobuf;

// INVALID_ARGUMENT "PATH.KEY: unknown field; allowed: ..." for the first key of `value` that
// names no field of `descriptor` (by proto or JSON name), recursing into message fields.
Status CheckKnownFields(const Json& value, const pb::Descriptor& descriptor,
                        const std::string& path) {
  if (!value.is_object()) return Status::Ok();  // JsonStringToMessage reports the type
  for (const auto& [key, item] : value.items()) {
    const pb::FieldDescriptor* field = nullptr;
    for (int i = 0; i < descriptor.field_count() && field == nullptr; ++i) {
      const pb::FieldDescriptor* f = descriptor.field(i);
      if (f->name() == key || f->json_name() == key) field = f;
    }
    if (field == nullptr) {
      std::string allowed;
      for (int i = 0; i < descriptor.field_count(); ++i) {
        allowed += (i ? ", " : "") + descriptor.field(i)->name();
      }
      return Status::InvalidArgument(path + "." + key + ": unknown field; allowed: " + allowed);
    }
    if (field->type() != pb::FieldDescriptor::TYPE_MESSAGE) continue;
    const std::string sub = path + "." + field->name();
    if (field->is_repeated() && item.is_array()) {
      for (std::size_t i = 0; i < item.size(); ++i) {
        PEAKNAS_RETURN_IF_ERROR(
            CheckKnownFields(item[i], *field->message_type(), sub + "[" + std::to_string(i) + "]"));
      }
    } else {
      PEAKNAS_RETURN_IF_ERROR(CheckKnownFields(item, *field->message_type(), sub));
    }
  }
  return Status::Ok();
}

}  // namespace

std::string StripPrefix(const std::string& name, std::string_view prefix) {
  return name.rfind(prefix, 0) == 0 ? name.substr(prefix.size()) : name;
}
std::string StateName(v1::JobState state) {
  return StripPrefix(v1::JobState_Name(state), "JOB_STATE_");
}
std::string StateName(v1::TrialState state) {
  return StripPrefix(v1::TrialState_Name(state), "TRIAL_STATE_");
}
bool Ended(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

std::string Fixed(double value, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << value;
  return s.str();
}

std::string ArchJson(const v1::Architecture& arch) {
  StatusOr<search::Architecture> a = proto::FromProto(arch, "architecture");
  return a.ok() ? search::ToCanonicalJson(*a) : std::string();
}
Json ArchJsonValue(const v1::Architecture& arch) {
  const std::string text = ArchJson(arch);
  return text.empty() ? Json(nullptr) : Json::parse(text);
}

std::string CsvField(const std::string& value) {
  if (value.find_first_of(",\"\n") == std::string::npos) return value;
  std::string quoted = "\"";
  for (char c : value) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

void PrintCsv(std::ostream& out, const std::vector<std::vector<std::string>>& rows) {
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) out << (i ? "," : "") << CsvField(row[i]);
    out << "\n";
  }
}

void PrintTable(std::ostream& out, const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()), 0);
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    out << line << "\n";
  }
}

std::string Counts(const v1::TrialCounts& c) {
  return "pending " + std::to_string(c.pending()) + ", running " + std::to_string(c.running()) +
         ", succeeded " + std::to_string(c.succeeded()) + ", failed " + std::to_string(c.failed()) +
         ", rejected " + std::to_string(c.rejected()) + ", cancelled " +
         std::to_string(c.cancelled()) +
         (c.over_budget_ancestors() > 0
              ? " (" + std::to_string(c.over_budget_ancestors()) +
                    " of them over-budget pruning ancestors, never on the frontier)"
              : std::string());
}

std::string LineageText(bool has_lineage, const v1::Lineage& l) {
  if (!has_lineage) return "-";
  std::string text = l.parent_trial_id().empty() ? l.role() : l.parent_trial_id() + " " + l.role();
  if (l.role() == "level") text += " " + std::to_string(l.level());
  if (l.iteration() > 0) text += ", step " + std::to_string(l.iteration());
  if (l.over_budget()) text += ", over budget";
  return text;
}
int Done(const v1::TrialCounts& c) { return c.succeeded() + c.failed(); }

StatusOr<v1::JobSpec> ReadJobSpec(const std::string& path) {
  const std::string where = "\"" + path + "\": ";
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return Status::InvalidArgument(where + "is a directory, not a job spec file");
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) return Status::NotFound(where + "cannot open: " + std::strerror(errno));
  std::ostringstream buffer;
  buffer << file.rdbuf();
  const std::string text = buffer.str();

  Json json;
  try {
    json = Json::parse(text);
  } catch (const Json::parse_error& e) {
    return Status::InvalidArgument(where + "malformed JSON at byte " + std::to_string(e.byte));
  }
  if (!json.is_object()) return Status::InvalidArgument(where + "expected a JSON object");
  if (Status s = CheckKnownFields(json, *v1::JobSpec::descriptor(), "spec"); !s.ok()) {
    return Status::InvalidArgument(where + s.message());
  }

  v1::JobSpec spec;
  pb::util::JsonParseOptions parse;
  parse.ignore_unknown_fields = false;
  const auto status = pb::util::JsonStringToMessage(text, &spec, parse);
  if (!status.ok()) {
    return Status::InvalidArgument(where + "spec: " + base::OneLine(std::string(status.message())));
  }
  return spec;
}

}  // namespace peaknas::cli
