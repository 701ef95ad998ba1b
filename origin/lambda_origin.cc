#include "origin/lambda_origin.h"

#include <algorithm>
#include <deque>
#include <functional>
#include <memory>
#include <simdjson.h>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "origin/http_origin.h"
#include "proxy/core/json_writer.h"
#include "proxy/core/uv_util.h"

namespace portico::origin {
namespace {

constexpr std::size_t kDeliverChunk = 64 * 1024;

// Multi-valued fields grouped by name, groups in first-seen order, values in arrival order.
// Flat: one vector of values chained per group and one of groups; names are looked up by a
// linear scan while there are few and through a hash index past that, so thousands of distinct
// names (a hostile head or query) cost linear time, not quadratic. Holds views: the names and
// values must outlive it (decoded query parts are kept in `owned`).
class FieldGroups {
 public:
  explicit FieldGroups(bool case_insensitive) : case_insensitive_(case_insensitive) {}

  void add(std::string_view name, std::string_view value) {
    const auto at = static_cast<std::uint32_t>(values_.size());
    values_.push_back({value, kNone});
    const std::uint32_t g = find(name);
    if (g == kNone) {
      groups_.push_back({name, at, at});
      if (!index_.empty()) index_.emplace(indexKey(name), static_cast<std::uint32_t>(groups_.size() - 1));
      else if (groups_.size() > kLinearGroups) buildIndex();
      return;
    }
    values_[groups_[g].last].next = at;
    groups_[g].last = at;
  }
  bool empty() const { return groups_.empty(); }
  void reserve(std::size_t fields) {
    groups_.reserve(fields);
    values_.reserve(fields);
  }

  // {name: last value} and {name: [values]} as members `single` and `multi`, or null both when
  // empty (as API Gateway sends).
  void write(core::JsonWriter& w, std::string_view single, std::string_view multi) const {
    for (const bool all_values : {false, true}) {
      w.key(all_values ? multi : single);
      if (groups_.empty()) {
        w.null();
        continue;
      }
      w.beginObject();
      for (const Group& g : groups_) {
        w.key(g.name);
        if (!all_values) {
          w.value(values_[g.last].value);
          continue;
        }
        w.beginArray();
        for (std::uint32_t v = g.first; v != kNone; v = values_[v].next) w.value(values_[v].value);
        w.endArray();
      }
      w.endObject();
    }
  }

  std::deque<std::string> owned;  // storage for values that are not views of the request

 private:
  static constexpr std::uint32_t kNone = 0xFFFFFFFFu;
  static constexpr std::size_t kLinearGroups = 16;
  struct Group {
    std::string_view name;
    std::uint32_t first, last;
  };
  struct Value {
    std::string_view value;
    std::uint32_t next;  // the group's next value, or kNone
  };

  std::string indexKey(std::string_view name) const {
    return case_insensitive_ ? core::toLower(name) : std::string(name);
  }
  void buildIndex() {
    index_.reserve(groups_.size() * 2);
    for (std::size_t i = 0; i < groups_.size(); ++i)
      index_.emplace(indexKey(groups_[i].name), static_cast<std::uint32_t>(i));
  }
  std::uint32_t find(std::string_view name) const {
    if (!index_.empty()) {
      auto it = index_.find(indexKey(name));
      return it == index_.end() ? kNone : it->second;
    }
    for (std::size_t i = 0; i < groups_.size(); ++i) {
      const std::string_view g = groups_[i].name;
      if (case_insensitive_ ? core::iequals(g, name) : g == name) return static_cast<std::uint32_t>(i);
    }
    return kNone;
  }

  bool case_insensitive_;
  std::vector<Group> groups_;
  std::vector<Value> values_;
  std::unordered_map<std::string, std::uint32_t> index_;  // past kLinearGroups names
};

// {name: value}, or null when absent or empty.
void writeMap(core::JsonWriter& w, const std::map<std::string, std::string>* map) {
  if (map == nullptr || map->empty()) {
    w.null();
    return;
  }
  w.beginObject();
  for (const auto& [k, v] : *map) {
    w.key(k);
    w.value(v);
  }
  w.endObject();
}

// The query's parameters, percent-decoded (the decoded texts live in out.owned).
void parseQuery(std::string_view query, FieldGroups& out) {
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    std::size_t eq = part.find('=');
    const std::string& key = out.owned.emplace_back(percentDecode(part.substr(0, eq)));
    const std::string& value = out.owned.emplace_back(
        eq == std::string_view::npos ? std::string() : percentDecode(part.substr(eq + 1)));
    out.add(key, value);
  }
}

bool isToken(std::string_view s) {
  static constexpr std::string_view kExtra = "!#$%&'*+-.^_`|~";
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           kExtra.find(c) != std::string_view::npos;
  });
}

bool isFieldValue(std::string_view s) {
  return !core::hasAnyOf(s, std::string_view("\r\n\0", 3));
}

// One invocation. Lifecycle (state_):
//   Buffering  -> request body chunks are appended; endBody() (or !has_body at start) invokes
//   Invoking   -> the inner HTTP fetch runs; its sink callbacks (this object) collect the answer
//   Delivering -> the mapped response is handed to the sink: head, body pieces, done
//   Finished   -> onOriginDone() has been called; nothing more happens
// A failure found outside a sink callback (request body too big) is delivered from a zero timer
// so that no sink call is ever made from inside fetch()/sendBody().
class LambdaFetch final : public Fetch, public ResponseSink {
 public:
  LambdaFetch(uv_loop_t* loop, CurlMulti& multi, const conf::LambdaOrigin& cfg,
              std::shared_ptr<const ParsedUrl> url, std::string unparsed_url, OriginRequest request,
              ResponseSink& sink)
      : loop_(loop),
        multi_(multi),
        timeout_ms_(cfg.timeout_ms),
        url_(std::move(url)),
        unparsed_url_(std::move(unparsed_url)),
        request_(std::move(request)),
        sink_(sink) {}

  ~LambdaFetch() override {
    if (destroyed_ != nullptr) *destroyed_ = true;
  }

  void start() {
    if (!request_.has_body) invoke();
  }

  // Fetch
  void sendBody(std::string_view chunk) override {
    if (state_ != State::Buffering || body_ended_) return;
    if (body_.size() + chunk.size() > LambdaOriginClient::kMaxEventBodyBytes) {
      body_.clear();
      body_.shrink_to_fit();
      failLater(FetchError::Internal);
      return;
    }
    body_.append(chunk);
  }
  void endBody() override {
    if (state_ != State::Buffering || body_ended_) return;
    body_ended_ = true;
    invoke();
  }
  std::size_t pendingBodyBytes() const override { return 0; }
  void resume() override {
    ++resumes_;  // a resume() inside onOriginBody() overrides that call's `false`
    if (state_ != State::Delivering || !paused_) return;
    paused_ = false;
    later([this] { deliver(); });
  }

  // ResponseSink: the invoke call's answer (called from CurlMulti's dispatch).
  void onOriginHead(core::ResponseHead head) override {
    invoke_status_ = head.status;
    function_error_ = head.headers.has("X-Amz-Function-Error");
  }
  bool onOriginBody(std::string_view chunk) override {
    if (answer_.size() + chunk.size() > LambdaOriginClient::kMaxResultBytes) {
      inner_.reset();  // cancels the invoke; its dispatch notices and returns
      finish(FetchError::BadResponse);
      return false;
    }
    answer_.append(chunk);
    return true;
  }
  void onOriginDone(FetchError error) override {
    // inner_ (done now) is kept until this fetch goes: releasing its libcurl handle costs a
    // curl_easy_reset, better spent after the answer has left than before.
    if (error != FetchError::None) return finish(error);
    if (function_error_) return finish(FetchError::FunctionError);
    if (invoke_status_ < 200 || invoke_status_ > 299) return finish(FetchError::BadResponse);
    std::string why;
    auto result = parseProxyResult(answer_, &why);
    answer_.clear();
    answer_.shrink_to_fit();
    if (!result) return finish(FetchError::BadResponse);
    out_head_ = std::move(result->head);
    out_body_ = std::move(result->body);
    // The whole body is known: the client gets its length (as API Gateway sends it), not a
    // chunked stream. Statuses that have no body get none.
    const int status = out_head_.status;
    if (status == 204 || status == 304 || status < 200) {
      out_body_.clear();
    } else {
      out_head_.headers.set("Content-Length", std::to_string(out_body_.size()));
    }
    state_ = State::Delivering;
    deliver();
  }

 private:
  enum class State { Buffering, Invoking, Delivering, Finished };

  void invoke() {
    state_ = State::Invoking;
    std::string event = buildProxyEvent(request_, body_, request_.has_body);
    body_.clear();
    body_.shrink_to_fit();
    HttpFetchSpec spec;
    spec.url = url_ ? url_->url() : unparsed_url_;
    spec.parsed_url = url_;
    spec.method = "POST";
    // X-Amz-Invocation-Type is not sent: RequestResponse is the Invoke API's default.
    spec.headers.add("Content-Type", "application/json");
    static constexpr std::string_view kInvokeFields[] = {"X-Amz-Function-Error"};
    spec.only_response_fields = kInvokeFields;
    spec.body = std::move(event);
    // API Gateway's integration timeout covers the whole invocation.
    spec.timeout_ms = timeout_ms_;
    spec.total_timeout_ms = timeout_ms_;
    spec.connect_timeout_ms = timeout_ms_;
    inner_ = startHttpFetch(multi_, std::move(spec), *this);
  }

  // Hands head, body pieces and done to the sink, stopping while the sink is paused.
  void deliver() {
    bool destroyed = false;
    destroyed_ = &destroyed;
    if (!head_sent_) {
      head_sent_ = true;
      sink_.onOriginHead(std::move(out_head_));
      if (destroyed) return;
    }
    while (!paused_ && body_off_ < out_body_.size()) {
      std::size_t n = std::min(kDeliverChunk, out_body_.size() - body_off_);
      std::string_view piece(out_body_.data() + body_off_, n);
      body_off_ += n;
      const unsigned resumes = resumes_;
      bool more = sink_.onOriginBody(piece);
      if (destroyed) return;
      if (!more && resumes_ == resumes) paused_ = true;
    }
    destroyed_ = nullptr;
    if (body_off_ == out_body_.size()) finish(FetchError::None);
  }

  // The sink's last call: `this` may be destroyed by it.
  void finish(FetchError error) {
    if (state_ == State::Finished) return;
    state_ = State::Finished;
    timer_.reset();
    sink_.onOriginDone(error);
  }

  void failLater(FetchError error) {
    state_ = State::Invoking;  // no more body; no invoke either
    later([this, error] { finish(error); });
  }

  // Runs `fn` from a later loop turn unless this fetch is destroyed first.
  void later(std::function<void()> fn) {
    if (!timer_) timer_ = std::make_unique<core::Timer>(loop_);
    timer_->start(0, std::move(fn));
  }

  uv_loop_t* loop_;
  CurlMulti& multi_;
  std::uint64_t timeout_ms_;
  std::shared_ptr<const ParsedUrl> url_;  // the invoke URL, parsed (null: libcurl refused it)
  std::string unparsed_url_;               // ... and then its text
  OriginRequest request_;
  ResponseSink& sink_;
  State state_ = State::Buffering;
  bool* destroyed_ = nullptr;
  std::unique_ptr<core::Timer> timer_;

  std::string body_;  // the request body, buffered until endBody()
  bool body_ended_ = false;

  FetchPtr inner_;  // the invoke call
  int invoke_status_ = 0;
  bool function_error_ = false;
  std::string answer_;  // the invoke answer (JSON), bounded by kMaxResultBytes

  core::ResponseHead out_head_;
  std::string out_body_;
  std::size_t body_off_ = 0;
  bool head_sent_ = false;
  bool paused_ = false;
  unsigned resumes_ = 0;
};

}  // namespace

// ---- the lambda origin ------------------------------------------------------------------------

LambdaOriginClient::LambdaOriginClient(uv_loop_t* loop, CurlMulti& multi, conf::LambdaOrigin cfg)
    : loop_(loop), multi_(multi), cfg_(std::move(cfg)) {}

std::string LambdaOriginClient::invokeUrl(const OriginRequest* request) const {
  const bool api = request != nullptr && request->api;
  const std::string& endpoint = api && !request->api->endpoint.empty() ? request->api->endpoint : cfg_.endpoint;
  const std::string& function = api && !request->api->function.empty() ? request->api->function : cfg_.function;
  return joinUrl(endpoint, "/2015-03-31/functions/" + function + "/invocations", "");
}

std::shared_ptr<const ParsedUrl> LambdaOriginClient::parsedInvokeUrl(const OriginRequest& request) {
  const bool own = !request.api || (request.api->endpoint.empty() && request.api->function.empty());
  if (own && default_url_) return default_url_;
  std::string url = invokeUrl(&request);
  auto it = parsed_.find(url);
  if (it != parsed_.end()) return it->second;
  auto parsed = ParsedUrl::parse(url);
  // libcurl rejects it (a stage variable made it malformed): not cached; the transfer gets the
  // text and fails the way a bad URL does.
  if (!parsed) return nullptr;
  if (own) {
    default_url_ = parsed;
  } else {
    // One URL per stage that overrides endpoint or function: few. Bounded all the same.
    if (parsed_.size() >= kMaxParsedUrls) parsed_.clear();
    parsed_.emplace(std::move(url), parsed);
  }
  return parsed;
}

FetchPtr LambdaOriginClient::fetch(OriginRequest request, ResponseSink& sink) {
  auto parsed = parsedInvokeUrl(request);
  std::string text = parsed ? std::string() : invokeUrl(&request);
  auto f = std::make_unique<LambdaFetch>(loop_, multi_, cfg_, std::move(parsed), std::move(text),
                                         std::move(request), sink);
  f->start();
  return f;
}

// ---- the event --------------------------------------------------------------------------------

std::string buildProxyEvent(const OriginRequest& request, std::string_view body, bool has_body) {
  const core::RequestHead& h = request.head;
  const ApiInvocation* api = request.api ? &*request.api : nullptr;
  const std::string& path = api ? api->path : request.path;
  const std::string& resource = api ? api->resource : request.path;
  const std::string_view stage = api ? std::string_view(api->stage) : std::string_view();

  std::string out;
  out.reserve(1024 + body.size() + body.size() / 3);
  core::JsonWriter w(out);
  w.beginObject();
  w.key("resource");
  w.value(resource);
  w.key("path");
  w.value(path);
  w.key("httpMethod");
  w.value(h.method);

  FieldGroups headers(/*case_insensitive=*/true);
  headers.reserve(h.headers.size());
  for (const auto& e : h.headers) headers.add(e.name, e.value);
  headers.write(w, "headers", "multiValueHeaders");
  FieldGroups query(/*case_insensitive=*/false);
  parseQuery(h.query, query);
  query.write(w, "queryStringParameters", "multiValueQueryStringParameters");

  w.key("pathParameters");
  if (api && !api->path_params.empty()) {
    w.beginObject();
    const auto& params = api->path_params;
    for (std::size_t i = 0; i < params.size(); ++i) {
      // A name given twice: the last value, once (an object has unique names).
      bool later = std::any_of(params.begin() + static_cast<std::ptrdiff_t>(i) + 1, params.end(),
                               [&](const auto& p) { return p.first == params[i].first; });
      if (later) continue;
      w.key(params[i].first);
      w.value(params[i].second);
    }
    w.endObject();
  } else {
    w.null();
  }
  w.key("stageVariables");
  writeMap(w, api ? &api->stage_variables : nullptr);

  w.key("requestContext");
  w.beginObject();
  w.key("resourcePath");
  w.value(resource);
  w.key("httpMethod");
  w.value(h.method);
  w.key("path");
  w.value(stage.empty() ? path : "/" + std::string(stage) + path);
  w.key("stage");
  w.value(stage);
  w.key("requestId");
  w.value(api ? std::string_view(api->request_id) : std::string_view());
  w.key("requestTimeEpoch");
  w.value(api ? api->request_time_ms : std::int64_t{0});
  w.key("identity");
  w.beginObject();
  w.key("sourceIp");
  w.value(h.client_ip);
  w.endObject();
  if (api && api->authorizer_claims) {
    w.key("authorizer");
    w.beginObject();
    w.key("claims");
    w.beginObject();
    for (const auto& [k, v] : *api->authorizer_claims) {
      w.key(k);
      w.value(v);
    }
    w.endObject();
    w.endObject();
  }
  w.key("protocol");
  w.value("HTTP/" + std::to_string(h.http_major) + "." + std::to_string(h.http_minor));
  w.key("accountId");
  w.value("000000000000");
  w.key("apiId");
  w.value("portico");
  w.key("domainName");
  w.value(h.authority);
  w.endObject();

  w.key("body");
  if (has_body && !body.empty()) {
    const bool text = core::isValidUtf8(body);
    if (text) {
      w.value(body);
    } else {
      w.value(base64Encode(body));
    }
    w.key("isBase64Encoded");
    w.value(!text);
  } else {
    w.null();
    w.key("isBase64Encoded");
    w.value(false);
  }
  w.endObject();
  return out;
}

// ---- the result -------------------------------------------------------------------------------

std::optional<ProxyResult> parseProxyResult(std::string_view text, std::string* why) {
  auto bad = [&](const char* reason) -> std::optional<ProxyResult> {
    if (why != nullptr) *why = reason;
    return std::nullopt;
  };
  // simdjson's DOM parser validates the whole document (grammar and UTF-8), like a full
  // parse must: a malformed answer is a 502 whatever part of it is broken. One parser per
  // worker thread keeps its buffers between calls. Members are read in one pass; a name given
  // twice counts once, with its last value (as a tree parser keeping the last would).
  // Answers above 1 MiB get a parser of their own, so a worker keeps no large buffers.
  thread_local simdjson::dom::parser shared_parser;
  std::optional<simdjson::dom::parser> own_parser;
  if (text.size() > (1u << 20)) own_parser.emplace();
  simdjson::dom::parser& parser = own_parser ? *own_parser : shared_parser;
  simdjson::dom::element root;
  if (parser.parse(text.data(), text.size()).get(root) != simdjson::SUCCESS) return bad("not JSON");
  simdjson::dom::object doc;
  if (root.get_object().get(doc) != simdjson::SUCCESS) return bad("not a JSON object");

  std::optional<simdjson::dom::element> status, multi_headers, headers, encoded, body;
  for (simdjson::dom::key_value_pair member : doc) {
    if (member.key == "statusCode") status = member.value;
    else if (member.key == "multiValueHeaders") multi_headers = member.value;
    else if (member.key == "headers") headers = member.value;
    else if (member.key == "isBase64Encoded") encoded = member.value;
    else if (member.key == "body") body = member.value;
  }
  // Absent and null are the same for every member but statusCode.
  auto present = [](const std::optional<simdjson::dom::element>& e) {
    return e.has_value() && !e->is_null();
  };

  std::int64_t code = 0;
  // An integer only: 200.0 or "200" are not status codes.
  if (!status || !status->is_int64() || status->get_int64().get(code) != simdjson::SUCCESS)
    return bad("statusCode missing or not an integer");
  if (code < 100 || code > 599) return bad("statusCode out of range");

  ProxyResult out;
  out.head.status = static_cast<int>(code);
  if (present(multi_headers)) {
    simdjson::dom::object mv;
    if (multi_headers->get_object().get(mv) != simdjson::SUCCESS)
      return bad("multiValueHeaders is not an object");
    for (simdjson::dom::key_value_pair field : mv) {
      simdjson::dom::array values;
      if (field.value.get_array().get(values) != simdjson::SUCCESS)
        return bad("multiValueHeaders value is not an array");
      if (!isToken(field.key)) return bad("bad header name");
      for (simdjson::dom::element v : values) {
        std::string_view value;
        if (v.get_string().get(value) != simdjson::SUCCESS || !isFieldValue(value)) {
          return bad("bad multiValueHeaders value");
        }
        out.head.headers.add(field.key, value);
      }
    }
  }
  if (present(headers)) {
    simdjson::dom::object hs;
    if (headers->get_object().get(hs) != simdjson::SUCCESS) return bad("headers is not an object");
    for (simdjson::dom::key_value_pair field : hs) {
      if (!isToken(field.key)) return bad("bad header name");
      std::string_view value;
      if (field.value.get_string().get(value) != simdjson::SUCCESS || !isFieldValue(value)) {
        return bad("bad headers value");
      }
      // API Gateway merges both; a pair present in multiValueHeaders is not repeated.
      bool dup = false;
      for (std::string_view existing : out.head.headers.getAll(field.key))
        dup = dup || existing == value;
      if (!dup) out.head.headers.add(field.key, value);
    }
  }
  stripHopByHop(out.head.headers);
  out.head.headers.remove("Content-Length");  // the proxy frames the body itself

  bool b64 = false;
  if (present(encoded) && encoded->get_bool().get(b64) != simdjson::SUCCESS)
    return bad("isBase64Encoded is not a boolean");
  if (present(body)) {
    std::string_view s;
    if (body->get_string().get(s) != simdjson::SUCCESS) return bad("body is not a string");
    if (b64) {
      auto decoded = base64Decode(s);
      if (!decoded) return bad("body is not valid base64");
      out.body = std::move(*decoded);
    } else {
      out.body = s;
    }
  }
  return out;
}

// ---- codecs -----------------------------------------------------------------------------------

std::string percentDecode(std::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

namespace {
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}  // namespace

std::string base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    std::uint32_t v = (p[i] << 16) | (p[i + 1] << 8) | p[i + 2];
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
  }
  std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    std::uint32_t v = p[i] << 16;
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += "==";
  } else if (rest == 2) {
    std::uint32_t v = (p[i] << 16) | (p[i + 1] << 8);
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::optional<std::string> base64Decode(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  out.reserve(text.size() / 4 * 3);
  std::uint32_t acc = 0;
  int bits = 0;
  std::size_t symbols = 0;
  std::size_t padding = 0;
  for (char c : text) {
    if (c == '\r' || c == '\n') continue;
    if (c == '=') {
      ++padding;
      continue;
    }
    if (padding > 0) return std::nullopt;  // data after padding
    int v = value(c);
    if (v < 0) return std::nullopt;
    ++symbols;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  if (symbols % 4 == 1) return std::nullopt;  // a lone 6-bit symbol encodes no byte
  if (padding > 2 || (padding > 0 && (symbols + padding) % 4 != 0)) return std::nullopt;
  return out;
}

}  // namespace portico::origin
