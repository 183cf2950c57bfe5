#include "server/http_api.h"

#include <google/protobuf/util/json_util.h>

#include <cctype>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <string_view>
#include <utility>
#include <vector>

#include "proto/json.h"
#include "server/dashboard_assets.h"
#include "server/metrics.h"

namespace peaknas::server {
namespace {

namespace pb = google::protobuf;

// grpc-gateway's defaults: zero values printed, lowerCamelCase names.
constexpr proto::JsonOptions kJsonOptions{.always_print_primitive_fields = true,
                                          .preserve_proto_field_names = false};

// The length of the well-formed UTF-8 sequence at the start of `s` (RFC 3629: no overlong
// forms, no surrogates, at most U+10FFFF), or 0 when it is not one.
std::size_t Utf8SequenceLength(std::string_view s) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const auto continuation = [&](std::size_t i) { return i < s.size() && (byte(i) & 0xC0) == 0x80; };
  const unsigned char c = byte(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return continuation(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!continuation(1) || !continuation(2)) return 0;
    if (c == 0xE0 && byte(1) < 0xA0) return 0;   // overlong
    if (c == 0xED && byte(1) >= 0xA0) return 0;  // surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!continuation(1) || !continuation(2) || !continuation(3)) return 0;
    if (c == 0xF0 && byte(1) < 0x90) return 0;   // overlong
    if (c == 0xF4 && byte(1) >= 0x90) return 0;  // beyond U+10FFFF
    return 4;
  }
  return 0;
}

// `text` as a JSON string. Bytes that are not UTF-8 (an error message may quote a request's
// path, which is anyone's bytes) become U+FFFD, so the answer is always valid JSON.
std::string JsonString(std::string_view text) {
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else if (c < 0x20) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 15];
      ++i;
    } else if (const std::size_t n = Utf8SequenceLength(text.substr(i)); n > 0) {
      out.append(text.substr(i, n));
      i += n;
    } else {
      out += "\\ufffd";
      ++i;
    }
  }
  return out + "\"";
}

HttpResponse Error(grpc::StatusCode code, std::string_view message) {
  HttpResponse r;
  r.status = HttpStatusOf(code);
  r.body = "{\"code\": " + std::to_string(static_cast<int>(code)) +
           ", \"message\": " + JsonString(message) + ", \"status\": \"" +
           std::string(StatusCodeName(static_cast<StatusCode>(code))) + "\"}\n";
  return r;
}

HttpResponse Text(int status, std::string body) {
  return {.status = status,
          .content_type = "text/plain; charset=utf-8",
          .body = std::move(body),
          .stream = nullptr};
}

HttpResponse Json(const pb::Message& message) {
  HttpResponse r;
  const Status printed = proto::AppendJson(message, kJsonOptions, &r.body);
  if (!printed.ok()) return Error(grpc::StatusCode::INTERNAL, printed.message());
  r.body += '\n';
  return r;
}

// The gRPC answer as JSON, or its error.
HttpResponse Answer(const grpc::Status& status, const pb::Message& response) {
  if (!status.ok()) return Error(status.error_code(), status.error_message());
  return Json(response);
}

// Answers a job's call whose request carries nothing but the job's id.
template <typename Request, typename Response>
HttpResponse AnswerJobCall(JobServiceImpl& jobs, const Caller& caller,
                           grpc::Status (JobServiceImpl::*call)(const Caller&, const Request&,
                                                                Response*),
                           const std::string& job_id) {
  Request request;
  request.set_job_id(job_id);
  Response response;
  return Answer((jobs.*call)(caller, request, &response), response);
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() &&
               std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

struct Target {
  std::string path;
  std::map<std::string, std::string> query;
};

Target ParseTarget(std::string_view target) {
  Target t;
  const auto q = target.find('?');
  t.path = PercentDecode(target.substr(0, q));
  if (q == std::string_view::npos) return t;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    const auto eq = pair.find('=');
    t.query[PercentDecode(pair.substr(0, eq))] =
        eq == std::string_view::npos ? "" : PercentDecode(pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  return t;
}

// page_size from the query: INVALID_ARGUMENT naming it when it is not a number.
bool ReadPageSize(const Target& t, int* out, HttpResponse* error) {
  const auto it = t.query.find("page_size");
  if (it == t.query.end()) return true;
  try {
    std::size_t used = 0;
    *out = std::stoi(it->second, &used);
    if (used == it->second.size()) return true;
  } catch (const std::exception&) {
  }
  *error = Error(grpc::StatusCode::INVALID_ARGUMENT,
                 "page_size: \"" + it->second + "\" is not a number");
  return false;
}

// A boolean from the query ("true"/"false", "1"/"0", or the bare key for true):
// INVALID_ARGUMENT naming it otherwise.
bool ReadBool(const Target& t, const std::string& key, bool* out, HttpResponse* error) {
  const auto it = t.query.find(key);
  if (it == t.query.end()) return true;
  if (it->second == "true" || it->second == "1" || it->second.empty()) {
    *out = true;
    return true;
  }
  if (it->second == "false" || it->second == "0") {
    *out = false;
    return true;
  }
  *error = Error(grpc::StatusCode::INVALID_ARGUMENT,
                 key + ": \"" + it->second + "\" is not true or false");
  return false;
}

std::string QueryValue(const Target& t, const std::string& key) {
  const auto it = t.query.find(key);
  return it == t.query.end() ? "" : it->second;
}

}  // namespace

// Event texts ("id: N\ndata: JSON\n\n") by job and sequence: a dashboard's viewers all stream
// the same events, and protobuf's JSON printer is the dearest step of sending one. Keeps the
// most recent `capacity` texts.
class EventTextCache {
 public:
  // The text of a whole batch: made once for every stream the batch is handed to (the streams
  // at one place of a log share one batch). The last few batches are kept, pinned, so a
  // batch's address names it while it is here.
  std::shared_ptr<const std::string> BatchText(
      const std::string& job, const std::shared_ptr<const std::vector<v1::JobEvent>>& batch) {
    {
      std::lock_guard lock(mu_);
      for (const auto& [events, text] : batches_) {
        if (events == batch) return text;
      }
    }
    std::string text;
    for (const v1::JobEvent& event : *batch) text += Text(job, event);
    auto shared = std::make_shared<const std::string>(std::move(text));
    std::lock_guard lock(mu_);
    batches_.emplace_back(batch, shared);
    if (batches_.size() > kBatches) batches_.pop_front();
    return shared;
  }

  std::string Text(const std::string& job, const v1::JobEvent& event) {
    const auto key = std::make_pair(job, event.sequence());
    {
      std::lock_guard lock(mu_);
      if (auto it = texts_.find(key); it != texts_.end()) return it->second;
    }
    std::string text = "id: " + std::to_string(event.sequence()) + "\ndata: ";
    (void)proto::AppendJson(event, kJsonOptions, &text);
    text += "\n\n";
    std::lock_guard lock(mu_);
    if (texts_.emplace(key, text).second) {
      order_.push_back(key);
      if (order_.size() > kCapacity) {
        texts_.erase(order_.front());
        order_.pop_front();
      }
    }
    return text;
  }

 private:
  static constexpr std::size_t kCapacity = 4096;
  static constexpr std::size_t kBatches = 8;
  std::mutex mu_;
  std::deque<std::pair<std::shared_ptr<const std::vector<v1::JobEvent>>,
                       std::shared_ptr<const std::string>>>
      batches_;                                                        // guarded by mu_
  std::map<std::pair<std::string, std::int64_t>, std::string> texts_;  // guarded by mu_
  std::deque<std::pair<std::string, std::int64_t>> order_;             // guarded by mu_
};

std::shared_ptr<EventTextCache> NewEventTextCache() { return std::make_shared<EventTextCache>(); }

namespace {

// A job's events as Server-Sent Events, from ParkedCalls: each batch is one write.
class JobEventStream final : public EventStream,
                             public std::enable_shared_from_this<JobEventStream> {
 public:
  JobEventStream(ParkedCalls& parked, std::shared_ptr<EventTextCache> texts, std::string job_id,
                 std::int64_t after)
      : read_(parked), texts_(std::move(texts)), job_id_(std::move(job_id)), after_(after) {}

  void Next(Send send) override {
    const bool parked = read_.Park([&](ParkedCalls& calls) {
      return calls.Events(
          job_id_, after_,
          [self = shared_from_this(), send = std::move(send)](StatusOr<ParkedCalls::EventBatch> b) {
            if (!b.ok()) {
              return send(
                  "event: error\ndata: " +
                      Error(static_cast<grpc::StatusCode>(b.status().code()), b.status().message())
                          .body +
                      "\n",
                  true);
            }
            bool end = b->ended;
            for (const v1::JobEvent& event : *b->events) {
              self->after_ = event.sequence();
              if (event.has_job_finished()) end = true;
            }
            send(b->events->empty() ? std::string()
                                    : *self->texts_->BatchText(self->job_id_, b->events),
                 end);
          });
    });
    // Outside the lock: `send` may run the server's next step at once, which may Cancel.
    if (!parked) send("", true);
  }

  void Cancel() override { read_.Cancel(); }

 private:
  ParkedRead read_;
  const std::shared_ptr<EventTextCache> texts_;  // the API's, shared by its streams
  const std::string job_id_;
  std::int64_t after_;  // written by the completion, read by the next Next: never at once
};

}  // namespace

int HttpStatusOf(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return 200;
    case grpc::StatusCode::CANCELLED:
      return 499;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE:
      return 400;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return 504;
    case grpc::StatusCode::NOT_FOUND:
      return 404;
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::ABORTED:
      return 409;
    case grpc::StatusCode::PERMISSION_DENIED:
      return 403;
    case grpc::StatusCode::UNAUTHENTICATED:
      return 401;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return 429;
    case grpc::StatusCode::UNIMPLEMENTED:
      return 501;
    case grpc::StatusCode::UNAVAILABLE:
      return 503;
    default:
      return 500;  // UNKNOWN, INTERNAL, DATA_LOSS
  }
}

HttpResponse HttpApi::Handle(const HttpRequest& request) {
  const Target t = ParseTarget(request.target);
  const bool get = request.method == "GET" || request.method == "HEAD";
  const bool post = request.method == "POST";
  const auto wrong_method = [&] {
    HttpResponse r =
        Error(grpc::StatusCode::UNIMPLEMENTED, request.method + " is not allowed on " + t.path);
    r.status = 405;
    return r;
  };
  if (t.path == "/livez") return get ? Text(200, "ok\n") : wrong_method();
  if (t.path == "/readyz") {
    if (!get) return wrong_method();
    const auto jobs = coordinator_.ListJobs();
    return jobs.ok() ? Text(200, "ready\n") : Text(503, jobs.status().ToString() + "\n");
  }
  // Every path but the probes and the dashboard's own files needs a caller allowed to read
  // (server/auth.h); the jobs' paths apply its tenant.
  const auto caller_for = [&](Permission permission) {
    return jobs_.auth().Check(request.authorization, permission);
  };
  const auto refuse = [](const Status& status) {
    return Error(static_cast<grpc::StatusCode>(status.code()), status.message());
  };
  if (t.path == "/metrics") {
    if (!get) return wrong_method();
    if (auto caller = caller_for(Permission::kRead); !caller.ok()) return refuse(caller.status());
    return Metrics();
  }
  // The dashboard: "/" is its page, "/assets/NAME" its files.
  if (t.path == "/" || t.path.rfind("/assets/", 0) == 0) {
    if (!get) return wrong_method();
    const std::string name = t.path == "/" ? "index.html" : t.path.substr(8);
    for (const DashboardAsset& asset : DashboardAssets()) {
      if (asset.name == name) {
        return {.status = 200,
                .content_type = std::string(asset.content_type),
                .body = std::string(asset.data),
                .stream = nullptr};
      }
    }
    return Error(grpc::StatusCode::NOT_FOUND, "no such file: " + t.path);
  }

  if (t.path == "/v1/workers") {
    if (!get) return wrong_method();
    v1::ListWorkersRequest req;
    HttpResponse error;
    bool all = false;
    if (!ReadBool(t, "all", &all, &error)) return error;
    req.set_all(all);
    auto caller = caller_for(Permission::kRead);
    if (!caller.ok()) return refuse(caller.status());
    v1::ListWorkersResponse resp;
    return Answer(jobs_.ListWorkers(*caller, req, &resp), resp);
  }
  if (t.path == "/v1/calibrations") {
    if (!get) return wrong_method();
    v1::ListCalibrationsRequest req;
    req.set_device_profile(QueryValue(t, "device_profile"));
    req.set_framework(QueryValue(t, "framework"));
    auto caller = caller_for(Permission::kRead);
    if (!caller.ok()) return refuse(caller.status());
    v1::ListCalibrationsResponse resp;
    return Answer(jobs_.ListCalibrations(*caller, req, &resp), resp);
  }
  constexpr std::string_view kJobs = "/v1/jobs";
  if (t.path == kJobs) {
    if (get) {
      v1::ListJobsRequest req;
      HttpResponse error;
      int size = 0;
      if (!ReadPageSize(t, &size, &error)) return error;
      req.set_page_size(size);
      req.set_page_token(QueryValue(t, "page_token"));
      auto caller = caller_for(Permission::kRead);
      if (!caller.ok()) return refuse(caller.status());
      v1::ListJobsResponse resp;
      return Answer(jobs_.ListJobs(*caller, req, &resp), resp);
    }
    if (post) {
      auto caller = caller_for(Permission::kSubmit);
      if (!caller.ok()) return refuse(caller.status());
      v1::SubmitJobRequest req;
      const auto parsed = pb::util::JsonStringToMessage(request.body, &req);
      if (!parsed.ok()) {
        return Error(grpc::StatusCode::INVALID_ARGUMENT,
                     "body: not a SubmitJobRequest: " + std::string(parsed.message()));
      }
      v1::SubmitJobResponse resp;
      return Answer(jobs_.SubmitJob(*caller, req, &resp), resp);
    }
    return wrong_method();
  }
  if (t.path.rfind(std::string(kJobs) + "/", 0) != 0) {
    return Error(grpc::StatusCode::NOT_FOUND, "no such path: " + t.path);
  }
  // /v1/jobs/{id}[:cancel | /frontier | /trials]
  std::string rest = t.path.substr(kJobs.size() + 1);
  std::string sub;
  if (const auto slash = rest.find('/'); slash != std::string::npos) {
    sub = rest.substr(slash + 1);
    rest.resize(slash);
  }
  if (rest.size() > 7 && rest.ends_with(":cancel") && sub.empty()) {
    if (!post) return wrong_method();
    auto caller = caller_for(Permission::kSubmit);
    if (!caller.ok()) return refuse(caller.status());
    return AnswerJobCall(jobs_, *caller, &JobServiceImpl::CancelJob,
                         rest.substr(0, rest.size() - 7));
  }
  const std::string& id = rest;
  auto caller = caller_for(Permission::kRead);
  if (!caller.ok()) return refuse(caller.status());
  // Another tenant's job is not there.
  if (Status visible = jobs_.Visible(*caller, id); !visible.ok()) return refuse(visible);
  if (sub.empty()) {
    if (!get) return wrong_method();
    return AnswerJobCall(jobs_, *caller, &JobServiceImpl::GetJob, id);
  }
  if (sub == "frontier") {
    if (!get) return wrong_method();
    return AnswerJobCall(jobs_, *caller, &JobServiceImpl::GetFrontier, id);
  }
  if (sub == "events") {
    if (!get) return wrong_method();
    std::string after_text =
        !request.last_event_id.empty() ? request.last_event_id : QueryValue(t, "after");
    std::int64_t after = 0;
    if (!after_text.empty()) {
      try {
        std::size_t used = 0;
        after = std::stoll(after_text, &used);
        if (used != after_text.size() || after < 0) throw std::invalid_argument("");
      } catch (const std::exception&) {
        return Error(grpc::StatusCode::INVALID_ARGUMENT,
                     "after: \"" + after_text + "\" is not an event sequence (>= 0)");
      }
    }
    // An unknown job is a 404 now, not an error event later.
    v1::GetJobRequest req;
    req.set_job_id(id);
    v1::GetJobResponse resp;
    if (const grpc::Status known = jobs_.GetJob(*caller, req, &resp); !known.ok()) {
      return Answer(known, resp);
    }
    HttpResponse r;
    r.content_type = "text/event-stream";
    r.stream = std::make_shared<JobEventStream>(parked_, event_texts_, id, after);
    return r;
  }
  if (sub == "hypervolume") {
    if (!get) return wrong_method();
    return HypervolumeHistory(id);
  }
  if (sub.rfind("trials/", 0) == 0 && sub.size() > 13 && sub.ends_with("/model")) {
    if (!get) return wrong_method();
    const std::string trial = sub.substr(7, sub.size() - 13);
    auto file = coordinator_.GetArtifact(id, trial);
    if (!file.ok()) {
      return Error(static_cast<grpc::StatusCode>(file.status().code()), file.status().message());
    }
    std::ifstream in(file->path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) {
      return Error(grpc::StatusCode::DATA_LOSS, "cannot read the model of " + trial);
    }
    if (static_cast<std::int64_t>(bytes.size()) != file->size_bytes) {
      return Error(grpc::StatusCode::DATA_LOSS,
                   "the model of " + trial + " changed on disk (" + std::to_string(bytes.size()) +
                       " bytes, recorded " + std::to_string(file->size_bytes) + ")");
    }
    return {.status = 200,
            .content_type = "application/octet-stream",
            .body = std::move(bytes),
            .stream = nullptr,
            .headers = {{"Content-Disposition", "attachment; filename=\"" + file->filename + "\""},
                        {"X-Checksum-SHA256", file->sha256}}};
  }
  if (sub == "trials") {
    if (!get) return wrong_method();
    v1::ListTrialsRequest req;
    req.set_job_id(id);
    HttpResponse error;
    int size = 0;
    if (!ReadPageSize(t, &size, &error)) return error;
    req.set_page_size(size);
    req.set_page_token(QueryValue(t, "page_token"));
    // states=SUCCEEDED,FAILED (with or without the TRIAL_STATE_ prefix).
    const std::string states_text = QueryValue(t, "states");
    std::string_view states = states_text;
    while (!states.empty()) {
      const auto comma = states.find(',');
      std::string name(states.substr(0, comma));
      for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      if (name.rfind("TRIAL_STATE_", 0) != 0) name = "TRIAL_STATE_" + name;
      v1::TrialState state;
      if (!v1::TrialState_Parse(name, &state) || state == v1::TRIAL_STATE_UNSPECIFIED) {
        return Error(grpc::StatusCode::INVALID_ARGUMENT,
                     "states: \"" + std::string(states.substr(0, comma)) +
                         "\" is not a trial state (pending, running, succeeded, failed, "
                         "rejected, cancelled)");
      }
      req.add_states(state);
      if (comma == std::string_view::npos) break;
      states = states.substr(comma + 1);
    }
    bool on_frontier = false;
    if (!ReadBool(t, "on_frontier", &on_frontier, &error)) return error;
    req.set_on_frontier(on_frontier);
    v1::ListTrialsResponse resp;
    return Answer(jobs_.ListTrials(*caller, req, &resp), resp);
  }
  return Error(grpc::StatusCode::NOT_FOUND, "no such path: " + t.path);
}

// The frontier's hypervolume at each of its versions, against the trials finished by then,
// read from the job's event log (every frontier change is an event).
HttpResponse HttpApi::HypervolumeHistory(const std::string& job_id) {
  std::string points;
  std::int64_t after = 0;
  int finished = 0;
  while (true) {
    auto events = coordinator_.WatchEvents(job_id, after, 1000, {});
    if (!events.ok()) {
      return Error(static_cast<grpc::StatusCode>(events.status().code()),
                   events.status().message());
    }
    if (events->empty()) break;
    for (const v1::JobEvent& e : *events) {
      after = e.sequence();
      if (e.has_trial_finished()) ++finished;
      if (!e.has_frontier_changed()) continue;
      const v1::Frontier& f = e.frontier_changed().frontier();
      char hv[32];
      std::snprintf(hv, sizeof hv, "%.9g", f.hypervolume());
      if (!points.empty()) points += ", ";
      points += "{\"version\": " + std::to_string(f.version()) + ", \"hypervolume\": " + hv +
                ", \"trialsFinished\": " + std::to_string(finished) +
                ", \"frontierSize\": " + std::to_string(f.points_size()) +
                ", \"sequence\": " + std::to_string(e.sequence()) + "}";
    }
  }
  return {.status = 200,
          .content_type = "application/json",
          .body = "{\"jobId\": " + JsonString(job_id) + ", \"lastSequence\": " +
                  std::to_string(after) + ", \"points\": [" + points + "]}\n",
          .stream = nullptr};
}

HttpResponse HttpApi::Metrics() {
  MetricsSnapshot snapshot;
  auto jobs = coordinator_.ListJobs();
  if (!jobs.ok()) return Text(503, jobs.status().ToString() + "\n");
  snapshot.jobs = std::move(jobs).value();
  snapshot.stats = coordinator_.stats();
  snapshot.parked_calls = parked_.size();
  return {.status = 200,
          .content_type = "text/plain; version=0.0.4; charset=utf-8",
          .body = PrometheusText(snapshot) + (rpc_ != nullptr ? rpc_->Text() : std::string()),
          .stream = nullptr};
}

}  // namespace peaknas::server
