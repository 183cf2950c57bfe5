#include "cli/format.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <set>
#include <sstream>
#include <system_error>

#include "base/app.h"
#include "proto/convert.h"
#include "search/architecture.h"
#include "search/units.h"

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
  return ParseJobSpec(buffer.str(), where);
}

StatusOr<v1::JobSpec> ParseJobSpec(const std::string& text, const std::string& where) {
  Json json;
  try {
    json = Json::parse(text);
  } catch (const Json::parse_error& e) {
    return Status::InvalidArgument(where + "malformed JSON at byte " + std::to_string(e.byte));
  } catch (const Json::exception& e) {  // a number beyond a double (1e400)
    return Status::InvalidArgument(where + "malformed JSON: " + e.what());
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

namespace {

std::string XmlEscape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string Num(double v) { return Fixed(v, 1); }

}  // namespace

double NoisyPsnr(const std::vector<v1::Trial>& trials) {
  double noisy = 0;
  for (const v1::Trial& t : trials) noisy = std::max(noisy, t.metrics().noisy_psnr());
  return noisy;
}

std::string FrontierSvg(const v1::Job& job, const v1::Frontier& frontier,
                        const std::vector<v1::Trial>& trials) {
  constexpr double kWidth = 760, kHeight = 460, kLeft = 70, kRight = 20, kTop = 50, kBottom = 60;
  const bool training = job.spec().budget().mode() == v1::BUDGET_MODE_TRAINING;
  const double budget = static_cast<double>(job.spec().budget().bytes());
  const double noisy = NoisyPsnr(trials);
  std::set<std::string> on_front;
  for (const auto& p : frontier.points()) on_front.insert(p.trial_id());
  struct Point {
    double peak, gain;
    std::string id;
  };
  std::vector<Point> front, other, rejected;
  for (const auto& p : frontier.points()) {
    front.push_back({static_cast<double>(p.peak_bytes()), p.psnr() - noisy, p.trial_id()});
  }
  for (const v1::Trial& t : trials) {
    const double peak = static_cast<double>(training ? t.predicted_train_peak_bytes()
                                                     : t.predicted_inference_peak_bytes());
    if (peak <= 0) continue;
    if (t.state() == v1::TRIAL_STATE_REJECTED) rejected.push_back({peak, 0, t.id()});
    if (t.state() == v1::TRIAL_STATE_SUCCEEDED && !on_front.contains(t.id())) {
      other.push_back({peak, t.metrics().psnr() - noisy, t.id()});
    }
  }
  // Axes: peak on a log scale around everything drawn and the budget; gain from 0 (or lower).
  double lo = budget > 0 ? budget : 1, hi = lo, gain_lo = 0, gain_hi = 1;
  for (const auto* group : {&front, &other, &rejected}) {
    for (const Point& p : *group) {
      lo = std::min(lo, p.peak);
      hi = std::max(hi, p.peak);
      gain_lo = std::min(gain_lo, p.gain);
      gain_hi = std::max(gain_hi, p.gain);
    }
  }
  lo /= 1.5;
  hi *= 1.5;
  gain_hi += 0.1 * (gain_hi - gain_lo);
  const auto x = [&](double peak) {
    return kLeft + (std::log(peak) - std::log(lo)) / (std::log(hi) - std::log(lo)) *
                       (kWidth - kLeft - kRight);
  };
  const auto y = [&](double gain) {
    return kHeight - kBottom - (gain - gain_lo) / (gain_hi - gain_lo) * (kHeight - kTop - kBottom);
  };
  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + Num(kWidth) +
                    "\" height=\"" + Num(kHeight) + "\" viewBox=\"0 0 " + Num(kWidth) + " " +
                    Num(kHeight) + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg += "<text x=\"" + Num(kLeft) + "\" y=\"24\" font-size=\"15\" font-weight=\"bold\">" +
         XmlEscape(job.id() + " " + job.spec().name()) + ": " + std::to_string(front.size()) +
         " frontier models, hypervolume " + Fixed(frontier.hypervolume(), 3) + "</text>\n";
  // Axes, with ticks at 1-2-5 steps of MiB and whole dB.
  svg += "<g stroke=\"#98a2b3\">\n<line x1=\"" + Num(kLeft) + "\" y1=\"" + Num(kHeight - kBottom) +
         "\" x2=\"" + Num(kWidth - kRight) + "\" y2=\"" + Num(kHeight - kBottom) +
         "\"/>\n<line x1=\"" + Num(kLeft) + "\" y1=\"" + Num(kTop) + "\" x2=\"" + Num(kLeft) +
         "\" y2=\"" + Num(kHeight - kBottom) + "\"/>\n</g>\n";
  for (double decade = std::pow(10, std::floor(std::log10(lo / 1048576.0)));
       decade * 1048576.0 < hi; decade *= 10) {
    for (double step : {1.0, 2.0, 5.0}) {
      const double mib = decade * step, bytes = mib * 1048576.0;
      if (bytes < lo || bytes > hi) continue;
      svg += "<text x=\"" + Num(x(bytes)) + "\" y=\"" + Num(kHeight - kBottom + 16) +
             "\" text-anchor=\"middle\" fill=\"#667085\">" +
             search::FormatBytes(static_cast<std::int64_t>(bytes)) + "</text>\n";
    }
  }
  const double gain_step = gain_hi - gain_lo > 8 ? 2 : 1;
  for (double g = std::ceil(gain_lo / gain_step) * gain_step; g <= gain_hi; g += gain_step) {
    svg += "<text x=\"" + Num(kLeft - 8) + "\" y=\"" + Num(y(g) + 4) +
           "\" text-anchor=\"end\" fill=\"#667085\">" + Fixed(g, 0) + "</text>\n";
  }
  svg += "<text x=\"" + Num((kLeft + kWidth - kRight) / 2) + "\" y=\"" + Num(kHeight - 18) +
         "\" text-anchor=\"middle\">predicted " + (training ? "training" : "inference") +
         " peak</text>\n";
  svg += "<text transform=\"translate(18 " + Num((kTop + kHeight - kBottom) / 2) +
         ") rotate(-90)\" text-anchor=\"middle\">PSNR gain over the noisy input (dB)</text>\n";
  if (budget > 0) {
    svg += "<line class=\"budget\" x1=\"" + Num(x(budget)) + "\" y1=\"" + Num(kTop) + "\" x2=\"" +
           Num(x(budget)) + "\" y2=\"" + Num(kHeight - kBottom) +
           "\" stroke=\"#b54708\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>\n<text x=\"" +
           Num(x(budget) + 4) + "\" y=\"" + Num(kTop + 12) + "\" fill=\"#b54708\">budget " +
           search::FormatBytes(job.spec().budget().bytes()) + "</text>\n";
  }
  for (const Point& p : other) {
    svg += "<circle class=\"dominated\" cx=\"" + Num(x(p.peak)) + "\" cy=\"" + Num(y(p.gain)) +
           "\" r=\"3.5\" fill=\"#98a2b3\" fill-opacity=\"0.6\"><title>" + XmlEscape(p.id) +
           "</title></circle>\n";
  }
  for (const Point& p : rejected) {
    const double cx = x(p.peak), cy = y(gain_lo);
    svg += "<path class=\"rejected\" d=\"M" + Num(cx - 4) + " " + Num(cy - 4) + "L" + Num(cx + 4) +
           " " + Num(cy + 4) + "M" + Num(cx - 4) + " " + Num(cy + 4) + "L" + Num(cx + 4) + " " +
           Num(cy - 4) + "\" stroke=\"#b42318\" stroke-width=\"1.5\"><title>" + XmlEscape(p.id) +
           " rejected before training</title></path>\n";
  }
  if (!front.empty()) {
    std::string path = "M" + Num(x(front[0].peak)) + " " + Num(y(front[0].gain));
    for (std::size_t i = 1; i < front.size(); ++i) {
      path += "H" + Num(x(front[i].peak)) + "V" + Num(y(front[i].gain));
    }
    svg += "<path d=\"" + path + "\" fill=\"none\" stroke=\"#2e6bd6\" stroke-width=\"2\"/>\n";
  }
  for (const Point& p : front) {
    svg += "<circle class=\"front\" cx=\"" + Num(x(p.peak)) + "\" cy=\"" + Num(y(p.gain)) +
           "\" r=\"5\" fill=\"#2e6bd6\"><title>" + XmlEscape(p.id) + ": " + Fixed(p.gain, 2) +
           " dB at " + search::FormatBytes(static_cast<std::int64_t>(p.peak)) +
           "</title></circle>\n";
  }
  // Legend.
  const double ly = kTop - 14;
  svg += "<g font-size=\"11\"><circle cx=\"" + Num(kWidth - 330) + "\" cy=\"" + Num(ly - 4) +
         "\" r=\"4\" fill=\"#2e6bd6\"/><text x=\"" + Num(kWidth - 322) + "\" y=\"" + Num(ly) +
         "\">frontier</text><circle cx=\"" + Num(kWidth - 262) + "\" cy=\"" + Num(ly - 4) +
         "\" r=\"3.5\" fill=\"#98a2b3\"/><text x=\"" + Num(kWidth - 254) + "\" y=\"" + Num(ly) +
         "\">other trained</text><text x=\"" + Num(kWidth - 170) + "\" y=\"" + Num(ly) +
         "\" fill=\"#b42318\">x rejected before training</text></g>\n";
  svg += "</svg>\n";
  return svg;
}

}  // namespace peaknas::cli
