#include "origin/http_origin.h"

#include <curl/curl.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <utility>

#include "proxy/core/uv_util.h"

namespace portico::origin {
namespace {

// Response bytes buffered (delivered to nobody yet) before the socket is paused. The write
// callback may overshoot by one libcurl write (CURL_MAX_WRITE_SIZE, 16 KiB by default).
constexpr std::size_t kHighWater = 64 * 1024;
// Largest piece handed to one onOriginBody() call.
constexpr std::size_t kDeliverChunk = 64 * 1024;
// A response head bigger than this is treated as malformed.
constexpr std::size_t kMaxHeadBytes = 256 * 1024;

constexpr std::array<std::string_view, 7> kHopByHop = {
    "Connection", "Keep-Alive",        "Proxy-Connection", "TE",
    "Trailer",    "Transfer-Encoding", "Upgrade"};

bool safeFieldText(std::string_view s) {
  return !core::hasAnyOf(s, std::string_view("\r\n\0", 3));
}

FetchError mapCurlResult(int code) {
  switch (static_cast<CURLcode>(code)) {
    case CURLE_OK:
      return FetchError::None;
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
      return FetchError::ConnectFailed;
    case CURLE_OPERATION_TIMEDOUT:
      return FetchError::Timeout;
    case CURLE_OUT_OF_MEMORY:
    case CURLE_URL_MALFORMAT:
    case CURLE_FAILED_INIT:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_UNKNOWN_OPTION:
    case CURLE_NOT_BUILT_IN:
      return FetchError::Internal;
    default:
      // Weird/empty reply, reset, truncated body, bad chunking, HTTP/0.9, ...
      return FetchError::BadResponse;
  }
}

// One upstream HTTP exchange on one easy handle. Lifecycle:
//   constructed -> start(): easy configured and added (or failed: done_ with Internal)
//   libcurl callbacks buffer head / body / drained flags and schedule() a dispatch
//   onCurlDone(): done_ (easy already removed from the multi)
//   onDispatch(): drained? -> head -> body pieces until paused -> done (exactly once)
//   destroyed at any point: easy removed, nothing delivered after.
class HttpTransfer final : public Fetch, public CurlTransfer {
 public:
  HttpTransfer(CurlMulti& multi, ResponseSink& sink, HttpFetchSpec spec)
      : CurlTransfer(multi), sink_(sink), spec_(std::move(spec)) {}

  ~HttpTransfer() override {
    if (destroyed_ != nullptr) *destroyed_ = true;
    detachEasy();
    if (curl_ != nullptr) {
      if (multi() != nullptr)
        multi()->releaseEasy(curl_);
      else
        curl_easy_cleanup(curl_);
    }
    curl_slist_free_all(header_list_);
  }

  void start() {
    if (!configure() || !startEasy(curl_)) return fail(FetchError::Internal);
    armDeadline();
  }

  // Fetch
  void sendBody(std::string_view chunk) override {
    if (!spec_.has_body || body_ended_ || chunk.empty()) return;
    if (tx_off_ > 0 && tx_off_ == tx_.size()) {
      tx_.clear();
      tx_off_ = 0;
    }
    tx_.append(chunk);
    unpauseSend();
  }
  void endBody() override {
    if (!spec_.has_body || body_ended_) return;
    body_ended_ = true;
    unpauseSend();  // the read callback now answers EOF once the queue is empty
  }
  std::size_t pendingBodyBytes() const override { return tx_.size() - tx_off_; }
  void resume() override {
    ++resumes_;  // a resume() inside onOriginBody() overrides that call's `false`
    if (!user_paused_) return;
    user_paused_ = false;
    armDeadline();  // waiting on the upstream again
    schedule();     // never deliver from inside resume(): the caller may be in onOriginBody()
  }

 private:
  // CurlTransfer
  void onCurlDone(int result) override {
    stopDeadline();
    if (retryOnFreshConnection(result)) {
      retry_pending_ = true;  // onDispatch() re-adds the easy handle, outside libcurl's stack
      return;
    }
    done_ = true;
    error_ = bad_response_ ? FetchError::BadResponse : mapCurlResult(result);
    if (error_ == FetchError::None && !head_complete_) error_ = FetchError::BadResponse;
  }
  void onDispatch() override;
  void onMultiGone() override { deadline_.reset(); }

  bool configure();
  // A pooled connection the upstream had already closed (it closed right after its last
  // answer, without "Connection: close", and libcurl reused it before the FIN arrived): the
  // request failed before a single byte came back. Like nginx's proxy_next_upstream, an
  // idempotent request without a streamed body is sent once more, on a new connection.
  bool retryOnFreshConnection(int result) const {
    const auto code = static_cast<CURLcode>(result);
    if (retried_ || curl_ == nullptr || status_seen_ || head_bytes_ > 0 || !rx_.empty()) return false;
    if (code != CURLE_GOT_NOTHING && code != CURLE_SEND_ERROR && code != CURLE_RECV_ERROR) return false;
    const std::string& m = spec_.method;
    if (spec_.has_body || !(m == "GET" || m == "HEAD" || m == "OPTIONS")) return false;
    long connects = -1;
    return curl_easy_getinfo(curl_, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK && connects == 0;
  }
  void fail(FetchError e) {
    stopDeadline();
    done_ = true;
    error_ = e;
    schedule();
  }
  void unpauseSend() {
    if (!send_paused_ || easy() == nullptr) return;
    send_paused_ = false;
    armDeadline();
    curl_easy_pause(curl_, recv_paused_ ? CURLPAUSE_RECV : CURLPAUSE_CONT);
  }

  // The upstream-wait clock (HttpFetchSpec::timeout_ms): (re)started on progress, stopped while
  // we wait on our own client. Safe inside libcurl callbacks.
  void armDeadline() {
    if (spec_.timeout_ms == 0 || done_ || user_paused_ || multi() == nullptr) return;
    if (!deadline_) deadline_ = std::make_unique<core::Timer>(multi()->loop());
    deadline_->start(spec_.timeout_ms, [this] { onDeadline(); });
  }
  void stopDeadline() {
    if (deadline_) deadline_->stop();
  }
  // A uv timer callback: outside libcurl, so the easy handle may be removed here.
  void onDeadline() {
    if (done_ || easy() == nullptr) return;
    detachEasy();
    done_ = true;
    error_ = FetchError::Timeout;
    schedule();
  }

  // libcurl callbacks: buffer and flag only.
  static size_t onHeader(char* data, size_t size, size_t n, void* self) {
    auto* t = static_cast<HttpTransfer*>(self);
    return t->headerLine(std::string_view(data, size * n)) ? size * n : 0;
  }
  static size_t onWrite(char* data, size_t size, size_t n, void* self) {
    return static_cast<HttpTransfer*>(self)->write(data, size * n);
  }
  static size_t onRead(char* buf, size_t size, size_t n, void* self) {
    return static_cast<HttpTransfer*>(self)->read(buf, size * n);
  }
  bool headerLine(std::string_view line);
  size_t write(const char* data, size_t n);
  size_t read(char* buf, size_t cap);

  ResponseSink& sink_;
  HttpFetchSpec spec_;
  CURL* curl_ = nullptr;
  curl_slist* header_list_ = nullptr;
  bool* destroyed_ = nullptr;  // set while onDispatch() runs user code
  std::unique_ptr<core::Timer> deadline_;

  // Response head, built line by line by the header callback.
  core::ResponseHead head_;
  std::size_t head_bytes_ = 0;
  bool status_seen_ = false;
  bool field_seen_ = false;     // a field line of this head was read
  bool field_dropped_ = false;  // ... and the last one was not kept (only_response_fields)
  bool head_complete_ = false;
  bool head_delivered_ = false;
  bool bad_response_ = false;

  // Response body not yet delivered: rx_[rx_off_..].
  std::string rx_;
  std::size_t rx_off_ = 0;
  bool user_paused_ = false;  // the sink returned false
  unsigned resumes_ = 0;      // resume() calls so far
  bool recv_paused_ = false;  // the write callback returned CURL_WRITEFUNC_PAUSE

  // Request body queued and not yet taken: tx_[tx_off_..].
  std::string tx_;
  std::size_t tx_off_ = 0;
  bool body_ended_ = false;
  bool send_paused_ = false;  // the read callback returned CURL_READFUNC_PAUSE
  bool drained_pending_ = false;

  bool done_ = false;
  bool done_delivered_ = false;
  bool retry_pending_ = false;  // see retryOnFreshConnection()
  bool retried_ = false;
  FetchError error_ = FetchError::None;
};

bool HttpTransfer::configure() {
  if (multi() == nullptr) return false;
  curl_ = static_cast<CURL*>(multi()->acquireEasy());
  if (curl_ == nullptr) return false;
  CURLcode rc = CURLE_OK;
  auto set = [&](CURLoption opt, auto value) {
    if (rc == CURLE_OK) rc = curl_easy_setopt(curl_, opt, value);
  };
  set(CURLOPT_URL, spec_.url.c_str());
  // With both set, libcurl connects by the parsed handle (CURLOPT_CURLU takes precedence) and
  // keeps the string as the transfer's URL, so it neither parses the string nor prints the
  // handle back into one (each about as costly as the rest of the request set-up).
  if (spec_.parsed_url) set(CURLOPT_CURLU, spec_.parsed_url->handle());
  // Never an environment proxy (http_proxy & co.), and no look at no_proxy either: "*" says
  // no host goes through a proxy, which also spares libcurl two getenv() calls per transfer.
  set(CURLOPT_PROXY, "");
  set(CURLOPT_NOPROXY, "*");
  set(CURLOPT_NOSIGNAL, 1L);
  set(CURLOPT_PROTOCOLS_STR, "http,https");
  set(CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  set(CURLOPT_FOLLOWLOCATION, 0L);
  set(CURLOPT_PATH_AS_IS, 1L);              // forward the path exactly; no dot-segment squashing
  set(CURLOPT_HTTP_CONTENT_DECODING, 0L);   // bytes pass through untouched
  set(CURLOPT_HTTP_TRANSFER_DECODING, 1L);  // but de-chunk: the proxy re-frames
  set(CURLOPT_TIMEOUT_MS, static_cast<long>(spec_.total_timeout_ms));
  set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(spec_.connect_timeout_ms));
  set(CURLOPT_HEADERFUNCTION, &HttpTransfer::onHeader);
  set(CURLOPT_HEADERDATA, static_cast<void*>(this));
  set(CURLOPT_WRITEFUNCTION, &HttpTransfer::onWrite);
  set(CURLOPT_WRITEDATA, static_cast<void*>(this));

  const std::string& m = spec_.method;
  const bool head = m == "HEAD";
  const bool body_mode =
      !head && (spec_.has_body || spec_.body || m == "POST" || m == "PUT" || m == "PATCH");
  if (head) {
    set(CURLOPT_NOBODY, 1L);
  } else if (spec_.body) {
    // The whole body now: libcurl sends it in the same write as the head when it fits. The
    // spec (and so the string) lives as long as the transfer.
    set(CURLOPT_POST, 1L);
    set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(spec_.body->size()));
    set(CURLOPT_POSTFIELDS, spec_.body->data());
    if (m != "POST") set(CURLOPT_CUSTOMREQUEST, m.c_str());
  } else if (body_mode) {
    // CURLOPT_POST + a read callback streams the body; CUSTOMREQUEST only renames the method.
    set(CURLOPT_POST, 1L);
    curl_off_t size = 0;
    if (spec_.has_body) {
      size = spec_.body_length_hint > 0 ? static_cast<curl_off_t>(spec_.body_length_hint) : -1;
    }
    set(CURLOPT_POSTFIELDSIZE_LARGE, size);
    set(CURLOPT_READFUNCTION, &HttpTransfer::onRead);
    set(CURLOPT_READDATA, static_cast<void*>(this));
    if (m != "POST") set(CURLOPT_CUSTOMREQUEST, m.c_str());
  } else if (m == "GET") {
    set(CURLOPT_HTTPGET, 1L);
  } else {
    set(CURLOPT_CUSTOMREQUEST, m.c_str());
  }

  auto append = [&](const std::string& line) {
    curl_slist* next = curl_slist_append(header_list_, line.c_str());
    if (next == nullptr)
      rc = CURLE_OUT_OF_MEMORY;
    else
      header_list_ = next;
  };
  for (const auto& e : spec_.headers) {
    if (e.name.empty() || core::hasAnyOf(e.name, ": \t")) continue;
    if (!safeFieldText(e.name) || !safeFieldText(e.value)) continue;
    // "Name;" is libcurl's spelling of an empty field ("Name:" would delete the field).
    append(e.value.empty() ? e.name + ";" : e.name + ": " + e.value);
  }
  // An empty "Name:" suppresses what libcurl would add on its own. Not when signing: libcurl
  // 7.88's SigV4 signs every listed header, the suppressors included, and the server would then
  // miss headers it never received. (Signed requests are the s3 origin's GET/HEAD: no Expect
  // or Content-Type arise, and libcurl's "Accept: */*" is harmless there.)
  const bool signing = !spec_.aws_sigv4.empty();
  if (!signing) {
    append("Expect:");
    if (!spec_.headers.has("Accept")) append("Accept:");
    if (body_mode && !spec_.headers.has("Content-Type")) append("Content-Type:");
  }
  if (spec_.has_body && spec_.body_length_hint == 0 && !head) {
    append("Transfer-Encoding: chunked");
  }
  set(CURLOPT_HTTPHEADER, header_list_);

  if (signing) {
    set(CURLOPT_AWS_SIGV4, spec_.aws_sigv4.c_str());
    set(CURLOPT_USERNAME, spec_.aws_access_key.c_str());
    set(CURLOPT_PASSWORD, spec_.aws_secret_key.c_str());
  }
  return rc == CURLE_OK;
}

bool HttpTransfer::headerLine(std::string_view line) {
  if (head_complete_) return true;  // trailers after a chunked body: ignored
  head_bytes_ += line.size();
  if (head_bytes_ > kMaxHeadBytes) {
    bad_response_ = true;
    return false;
  }
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.empty()) {
    if (!status_seen_) {
      bad_response_ = true;
      return false;
    }
    if (head_.status < 200) {  // interim 1xx: discard, the final head follows
      status_seen_ = false;
      field_seen_ = false;
      head_ = core::ResponseHead{};
      return true;
    }
    stripHopByHop(head_.headers);
    head_complete_ = true;
    armDeadline();  // from now on: the longest silence between body bytes
    schedule();
    return true;
  }
  if (!status_seen_) {
    // "HTTP/1.1 200 OK" (libcurl has validated the shape; be strict anyway).
    std::size_t sp = line.find(' ');
    if (line.substr(0, 5) != "HTTP/" || sp == std::string_view::npos || line.size() < sp + 4) {
      bad_response_ = true;
      return false;
    }
    std::string_view code = line.substr(sp + 1, 3);
    if (!std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        (line.size() > sp + 4 && line[sp + 4] != ' ')) {
      bad_response_ = true;
      return false;
    }
    head_ = core::ResponseHead{};
    head_.status = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
    if (head_.status < 100) {
      bad_response_ = true;
      return false;
    }
    if (line.size() > sp + 5) head_.reason = std::string(line.substr(sp + 5));
    status_seen_ = true;
    return true;
  }
  if (line.front() == ' ' || line.front() == '\t') {  // obs-fold (RFC 9112 §5.2): join
    if (!field_seen_) {
      bad_response_ = true;
      return false;
    }
    if (field_dropped_) return true;  // the continuation of a field not kept
    auto& last = head_.headers.entries().back().value;
    last += ' ';
    last += core::trimOws(line);
    return true;
  }
  std::size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0 ||
      core::hasAnyOf(line.substr(0, colon), " \t")) {
    bad_response_ = true;
    return false;
  }
  const std::string_view name = line.substr(0, colon);
  field_seen_ = true;
  const auto& only = spec_.only_response_fields;
  field_dropped_ = !only.empty() && std::none_of(only.begin(), only.end(), [&](std::string_view f) {
    return core::iequals(f, name);
  });
  if (!field_dropped_) head_.headers.add(name, core::trimOws(line.substr(colon + 1)));
  return true;
}

size_t HttpTransfer::write(const char* data, size_t n) {
  if (user_paused_ || rx_.size() - rx_off_ >= kHighWater) {
    // libcurl keeps these bytes and offers them again after curl_easy_pause(CONT).
    recv_paused_ = true;
    return CURL_WRITEFUNC_PAUSE;
  }
  if (rx_off_ > 0 && rx_off_ == rx_.size()) {
    rx_.clear();
    rx_off_ = 0;
  }
  rx_.append(data, n);
  armDeadline();
  schedule();
  return n;
}

size_t HttpTransfer::read(char* buf, size_t cap) {
  std::size_t avail = tx_.size() - tx_off_;
  if (avail == 0) {
    if (body_ended_) return 0;  // EOF: libcurl ends the body (last chunk if chunked)
    send_paused_ = true;
    stopDeadline();  // waiting for our client, not for the upstream
    return CURL_READFUNC_PAUSE;
  }
  armDeadline();
  std::size_t n = std::min(avail, cap);
  std::memcpy(buf, tx_.data() + tx_off_, n);
  tx_off_ += n;
  if (tx_off_ == tx_.size()) {
    tx_.clear();
    tx_off_ = 0;
    drained_pending_ = true;
    schedule();
  }
  return n;
}

void HttpTransfer::onDispatch() {
  if (done_delivered_) return;
  if (retry_pending_) {
    retry_pending_ = false;
    retried_ = true;
    curl_easy_setopt(curl_, CURLOPT_FRESH_CONNECT, 1L);
    if (!startEasy(curl_)) return fail(FetchError::BadResponse);
    armDeadline();
    return;
  }
  bool destroyed = false;
  destroyed_ = &destroyed;
  // Every sink call may destroy `this`; after each one, return at once if it did.
  if (drained_pending_) {
    drained_pending_ = false;
    sink_.onRequestBodyDrained();
    if (destroyed) return;
  }
  if (head_complete_ && !head_delivered_) {
    head_delivered_ = true;
    sink_.onOriginHead(std::move(head_));
    if (destroyed) return;
  }
  while (head_delivered_ && !user_paused_ && rx_off_ < rx_.size()) {
    std::size_t n = std::min(kDeliverChunk, rx_.size() - rx_off_);
    std::string_view piece(rx_.data() + rx_off_, n);
    rx_off_ += n;
    // resume() and sendBody() never touch rx_, so `piece` stays valid during the call.
    const unsigned resumes = resumes_;
    bool more = sink_.onOriginBody(piece);
    if (destroyed) return;
    if (!more && resumes_ == resumes) {
      user_paused_ = true;
      stopDeadline();  // a slow client is not an origin timeout
    }
  }
  if (rx_off_ == rx_.size()) {
    rx_.clear();
    rx_off_ = 0;
  }
  destroyed_ = nullptr;
  if (done_ && rx_.empty()) {
    done_delivered_ = true;
    sink_.onOriginDone(error_);  // last call: `this` may be gone after it
    return;
  }
  if (recv_paused_ && !user_paused_ && rx_.empty() && easy() != nullptr) {
    // Re-delivers the bytes refused earlier through write() (which schedules a dispatch).
    recv_paused_ = false;
    curl_easy_pause(curl_, send_paused_ ? CURLPAUSE_SEND : CURLPAUSE_CONT);
  }
}

}  // namespace

FetchPtr startHttpFetch(CurlMulti& multi, HttpFetchSpec spec, ResponseSink& sink) {
  auto t = std::make_unique<HttpTransfer>(multi, sink, std::move(spec));
  t->start();
  return t;
}

// ---- ParsedUrl --------------------------------------------------------------------------------

std::shared_ptr<const ParsedUrl> ParsedUrl::parse(const std::string& url) {
  CURLU* h = curl_url();
  if (h == nullptr) return nullptr;
  // As CURLOPT_URL with CURLOPT_PATH_AS_IS parses it (no dot-segment squashing), schemes
  // limited to what the transfer allows anyway (CURLOPT_PROTOCOLS_STR).
  if (curl_url_set(h, CURLUPART_URL, url.c_str(), CURLU_PATH_AS_IS) != CURLUE_OK) {
    curl_url_cleanup(h);
    return nullptr;
  }
  char* scheme = nullptr;
  const bool http = curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
                    (std::strcmp(scheme, "http") == 0 || std::strcmp(scheme, "https") == 0);
  curl_free(scheme);
  if (!http) {
    curl_url_cleanup(h);
    return nullptr;
  }
  return std::shared_ptr<const ParsedUrl>(new ParsedUrl(url, h));
}

ParsedUrl::~ParsedUrl() { curl_url_cleanup(static_cast<CURLU*>(handle_)); }

// ---- the http origin --------------------------------------------------------------------------

HttpOriginClient::HttpOriginClient(CurlMulti& multi, conf::HttpOrigin cfg)
    : multi_(multi), cfg_(std::move(cfg)) {}

FetchPtr HttpOriginClient::fetch(OriginRequest request, ResponseSink& sink) {
  HttpFetchSpec spec;
  const bool stage_endpoint = request.api && !request.api->endpoint.empty();
  spec.url = joinUrl(stage_endpoint ? request.api->endpoint : cfg_.endpoint, request.path,
                     request.head.query);
  spec.method = request.head.method;
  spec.headers = forwardedRequestHeaders(request.head);
  spec.has_body = request.has_body;
  spec.body_length_hint = request.body_length_hint;
  spec.timeout_ms = cfg_.timeout_ms;
  spec.connect_timeout_ms = cfg_.connect_timeout_ms;
  return startHttpFetch(multi_, std::move(spec), sink);
}

// ---- pure helpers -----------------------------------------------------------------------------

bool isHopByHop(std::string_view name) {
  return std::any_of(kHopByHop.begin(), kHopByHop.end(),
                     [&](std::string_view h) { return core::iequals(h, name); });
}

void stripHopByHop(core::HeaderMap& headers) {
  std::vector<std::string> named;
  for (std::string_view v : headers.getAll("Connection")) {
    while (!v.empty()) {
      std::size_t comma = v.find(',');
      std::string_view token = core::trimOws(v.substr(0, comma));
      if (!token.empty()) named.emplace_back(token);
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  for (const auto& n : named) headers.remove(n);
  for (std::string_view h : kHopByHop) headers.remove(h);
}

std::string joinUrl(std::string_view endpoint, std::string_view path, std::string_view query) {
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.remove_suffix(1);
  std::string url(endpoint);
  if (path.empty() || path.front() != '/') url += '/';
  url += path;
  if (!query.empty()) {
    url += '?';
    url += query;
  }
  return url;
}

core::HeaderMap forwardedRequestHeaders(const core::RequestHead& head) {
  core::HeaderMap out = head.headers;
  stripHopByHop(out);
  // libcurl writes Host (for the upstream) and the body framing itself; Expect is ours to
  // answer, not the upstream's.
  out.remove("Host");
  out.remove("Content-Length");
  out.remove("Expect");

  std::string host(head.headers.get("Host").value_or(std::string_view(head.authority)));
  if (!host.empty()) out.set("X-Forwarded-Host", host);

  std::string xff = out.getJoined("X-Forwarded-For").value_or("");
  if (!head.client_ip.empty()) xff = xff.empty() ? head.client_ip : xff + ", " + head.client_ip;
  if (!xff.empty()) out.set("X-Forwarded-For", xff);

  out.set("X-Forwarded-Proto", head.scheme.empty() ? "http" : head.scheme);

  std::string via = out.getJoined("Via").value_or("");
  out.set("Via", via.empty() ? "1.1 portico" : via + ", 1.1 portico");
  return out;
}

}  // namespace portico::origin
