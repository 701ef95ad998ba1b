#include "origin/lambda_origin.h"

#include <algorithm>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <tuple>
#include <utility>
#include <vector>

#include "origin/http_origin.h"
#include "proxy/core/uv_util.h"

namespace portico::origin {
namespace {

using nlohmann::json;

constexpr std::size_t kDeliverChunk = 64 * 1024;

// Multi-valued fields grouped by name, in first-seen order.
using Groups = std::vector<std::pair<std::string, std::vector<std::string>>>;

void addToGroup(Groups& groups, std::string_view name, std::string value, bool case_insensitive) {
  auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) {
    return case_insensitive ? core::iequals(g.first, name) : g.first == name;
  });
  if (it == groups.end()) {
    groups.emplace_back(std::string(name), std::vector<std::string>{std::move(value)});
  } else {
    it->second.push_back(std::move(value));
  }
}

// {name: last value} and {name: [values]}, or null both when empty (as API Gateway sends).
std::pair<json, json> groupsToJson(const Groups& groups) {
  if (groups.empty()) return {json(nullptr), json(nullptr)};
  json single = json::object();
  json multi = json::object();
  for (const auto& [name, values] : groups) {
    single[name] = values.back();
    multi[name] = values;
  }
  return {std::move(single), std::move(multi)};
}

Groups parseQuery(std::string_view query) {
  Groups out;
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    std::size_t eq = part.find('=');
    std::string key = percentDecode(part.substr(0, eq));
    std::string value =
        eq == std::string_view::npos ? std::string() : percentDecode(part.substr(eq + 1));
    addToGroup(out, key, std::move(value), /*case_insensitive=*/false);
  }
  return out;
}

bool isToken(std::string_view s) {
  static constexpr std::string_view kExtra = "!#$%&'*+-.^_`|~";
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           kExtra.find(c) != std::string_view::npos;
  });
}

bool isFieldValue(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
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
  LambdaFetch(uv_loop_t* loop, CurlMulti& multi, const conf::LambdaOrigin& cfg, std::string url,
              OriginRequest request, ResponseSink& sink)
      : loop_(loop),
        multi_(multi),
        timeout_ms_(cfg.timeout_ms),
        url_(std::move(url)),
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
    inner_.reset();  // allowed: this is the inner fetch's last call
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
    spec.url = url_;
    spec.method = "POST";
    spec.headers.add("Content-Type", "application/json");
    spec.headers.add("X-Amz-Invocation-Type", "RequestResponse");
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
  std::string url_;
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

FetchPtr LambdaOriginClient::fetch(OriginRequest request, ResponseSink& sink) {
  auto f =
      std::make_unique<LambdaFetch>(loop_, multi_, cfg_, invokeUrl(&request), std::move(request), sink);
  f->start();
  return f;
}

// ---- the event --------------------------------------------------------------------------------

std::string buildProxyEvent(const OriginRequest& request, std::string_view body, bool has_body) {
  const core::RequestHead& h = request.head;
  json ev = json::object();
  const std::string path = request.api ? request.api->path : request.path;
  const std::string resource = request.api ? request.api->resource : request.path;
  const std::string stage = request.api ? request.api->stage : std::string();
  ev["resource"] = resource;
  ev["path"] = path;
  ev["httpMethod"] = h.method;

  Groups headers;
  for (const auto& e : h.headers) addToGroup(headers, e.name, e.value, /*case_insensitive=*/true);
  std::tie(ev["headers"], ev["multiValueHeaders"]) = groupsToJson(headers);
  std::tie(ev["queryStringParameters"], ev["multiValueQueryStringParameters"]) =
      groupsToJson(parseQuery(h.query));

  ev["pathParameters"] = nullptr;
  ev["stageVariables"] = nullptr;
  if (request.api && !request.api->path_params.empty()) {
    json params = json::object();
    for (const auto& [k, v] : request.api->path_params) params[k] = v;
    ev["pathParameters"] = std::move(params);
  }
  if (request.api && !request.api->stage_variables.empty()) {
    json vars = json::object();
    for (const auto& [k, v] : request.api->stage_variables) vars[k] = v;
    ev["stageVariables"] = std::move(vars);
  }

  json ctx = json::object();
  ctx["resourcePath"] = resource;
  ctx["httpMethod"] = h.method;
  ctx["path"] = stage.empty() ? path : "/" + stage + path;
  ctx["stage"] = stage;
  ctx["requestId"] = request.api ? request.api->request_id : std::string();
  ctx["requestTimeEpoch"] = request.api ? request.api->request_time_ms : 0;
  ctx["identity"] = json{{"sourceIp", h.client_ip}};
  if (request.api && request.api->authorizer_claims) {
    json claims = json::object();
    for (const auto& [k, v] : *request.api->authorizer_claims) claims[k] = v;
    ctx["authorizer"] = json{{"claims", std::move(claims)}};
  }
  ctx["protocol"] = "HTTP/" + std::to_string(h.http_major) + "." + std::to_string(h.http_minor);
  ctx["accountId"] = "000000000000";
  ctx["apiId"] = "portico";
  ctx["domainName"] = h.authority;
  ev["requestContext"] = std::move(ctx);

  if (has_body && !body.empty()) {
    const bool text = isValidUtf8(body);
    ev["body"] = text ? std::string(body) : base64Encode(body);
    ev["isBase64Encoded"] = !text;
  } else {
    ev["body"] = nullptr;
    ev["isBase64Encoded"] = false;
  }
  // Header values and decoded query strings may hold bytes that are not UTF-8: replace them
  // (U+FFFD) instead of throwing.
  return ev.dump(-1, ' ', false, json::error_handler_t::replace);
}

// ---- the result -------------------------------------------------------------------------------

std::optional<ProxyResult> parseProxyResult(std::string_view text, std::string* why) {
  auto bad = [&](const char* reason) -> std::optional<ProxyResult> {
    if (why != nullptr) *why = reason;
    return std::nullopt;
  };
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad("not JSON");
  if (!j.is_object()) return bad("not a JSON object");

  auto status = j.find("statusCode");
  if (status == j.end() || !status->is_number_integer())
    return bad("statusCode missing or not an integer");
  const auto code = status->get<std::int64_t>();
  if (code < 100 || code > 599) return bad("statusCode out of range");

  ProxyResult out;
  out.head.status = static_cast<int>(code);
  auto mv = j.find("multiValueHeaders");
  if (mv != j.end() && !mv->is_null()) {
    if (!mv->is_object()) return bad("multiValueHeaders is not an object");
    for (const auto& [name, values] : mv->items()) {
      if (!values.is_array()) return bad("multiValueHeaders value is not an array");
      if (!isToken(name)) return bad("bad header name");
      for (const auto& v : values) {
        if (!v.is_string() || !isFieldValue(v.get_ref<const std::string&>())) {
          return bad("bad multiValueHeaders value");
        }
        out.head.headers.add(name, v.get_ref<const std::string&>());
      }
    }
  }
  auto hs = j.find("headers");
  if (hs != j.end() && !hs->is_null()) {
    if (!hs->is_object()) return bad("headers is not an object");
    for (const auto& [name, v] : hs->items()) {
      if (!isToken(name)) return bad("bad header name");
      if (!v.is_string() || !isFieldValue(v.get_ref<const std::string&>())) {
        return bad("bad headers value");
      }
      const std::string& value = v.get_ref<const std::string&>();
      // API Gateway merges both; a pair present in multiValueHeaders is not repeated.
      bool dup = false;
      for (std::string_view existing : out.head.headers.getAll(name))
        dup = dup || existing == value;
      if (!dup) out.head.headers.add(name, value);
    }
  }
  stripHopByHop(out.head.headers);
  out.head.headers.remove("Content-Length");  // the proxy frames the body itself

  bool b64 = false;
  auto enc = j.find("isBase64Encoded");
  if (enc != j.end() && !enc->is_null()) {
    if (!enc->is_boolean()) return bad("isBase64Encoded is not a boolean");
    b64 = enc->get<bool>();
  }
  auto body = j.find("body");
  if (body != j.end() && !body->is_null()) {
    if (!body->is_string()) return bad("body is not a string");
    const std::string& s = body->get_ref<const std::string&>();
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

bool isValidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // no overlongs
      if (c == 0xED) hi = 0x9F;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;  // no overlongs
      if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
    } else {
      return false;
    }
    if (i + len > n) return false;
    if (p[i + 1] < lo || p[i + 1] > hi) return false;
    for (std::size_t k = 2; k < len; ++k) {
      if (p[i + k] < 0x80 || p[i + k] > 0xBF) return false;
    }
    i += len;
  }
  return true;
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
