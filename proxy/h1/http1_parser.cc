#include "proxy/h1/http1_parser.h"

#include <algorithm>
#include <charconv>
#include <optional>

namespace portico::proxy {
namespace {
Http1Parser* self(llhttp_t* p) { return static_cast<Http1Parser*>(p->data); }

bool isToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 32 || u >= 127 || c == '(' || c == ')' || c == ',' || c == '/' || c == ':' ||
        c == ';' || c == '<' || c == '=' || c == '>' || c == '?' || c == '@' || c == '[' ||
        c == '\\' || c == ']' || c == '{' || c == '}' || c == '"') {
      return false;
    }
  }
  return true;
}
}  // namespace

Http1Parser::Http1Parser(Http1ParserEvents& events, ParseLimits limits)
    : events_(events), limits_(limits) {
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = &Http1Parser::onMessageBegin;
  settings_.on_url = &Http1Parser::onUrl;
  settings_.on_method = &Http1Parser::onMethod;
  settings_.on_header_field = &Http1Parser::onHeaderField;
  settings_.on_header_value = &Http1Parser::onHeaderValue;
  settings_.on_header_value_complete = &Http1Parser::onHeaderValueComplete;
  settings_.on_headers_complete = &Http1Parser::onHeadersComplete;
  settings_.on_body = &Http1Parser::onBody;
  settings_.on_message_complete = &Http1Parser::onMessageComplete;
  settings_.on_chunk_header = &Http1Parser::onChunkHeader;
  llhttp_init(&parser_, HTTP_REQUEST, &settings_);
  parser_.data = this;
}

int Http1Parser::fail(int status, std::string reason) {
  if (state_ != State::Error) {
    state_ = State::Error;
    error_status_ = status;
    error_reason_ = std::move(reason);
  }
  return -1;  // any non-zero, non-pause value stops llhttp with HPE_CB_*
}

bool Http1Parser::addHeadBytes(std::size_t n) {
  head_bytes_ += n;
  return head_bytes_ <= limits_.max_header_bytes;
}

int Http1Parser::onMessageBegin(llhttp_t* p) {
  Http1Parser* s = self(p);
  s->state_ = State::Head;
  s->head_ = core::RequestHead{};
  s->field_.clear();
  s->value_.clear();
  s->in_value_ = false;
  s->body_bytes_ = 0;
  s->head_bytes_ = 0;
  s->message_done_ = false;
  return 0;
}

int Http1Parser::onMethod(llhttp_t* p, const char* at, std::size_t len) {
  Http1Parser* s = self(p);
  if (!s->addHeadBytes(len)) return s->fail(431, "request head too large");
  s->head_.method.append(at, len);
  return 0;
}

int Http1Parser::onUrl(llhttp_t* p, const char* at, std::size_t len) {
  Http1Parser* s = self(p);
  if (!s->addHeadBytes(len)) return s->fail(431, "request head too large");
  s->head_.target.append(at, len);
  return 0;
}

int Http1Parser::onHeaderField(llhttp_t* p, const char* at, std::size_t len) {
  Http1Parser* s = self(p);
  if (!s->addHeadBytes(len + 4)) return s->fail(431, "request head too large");
  if (s->head_.headers.size() >= 200 && !s->in_value_ && s->field_.empty()) {
    return s->fail(431, "too many header fields");
  }
  s->field_.append(at, len);
  return 0;
}

bool Http1Parser::precededByNewline(const char* at) const {
  const char* q = at;
  while (q > data_begin_ && (q[-1] == ' ' || q[-1] == '\t')) --q;
  if (q > data_begin_) return q[-1] == '\n';
  // Reached the start of this feed: continue into the tail of the previous one.
  for (int i = 1; i >= 0; --i) {
    char c = prev_tail_[i];
    if (c == ' ' || c == '\t') continue;
    return c == '\n';
  }
  return false;
}

int Http1Parser::onHeaderValue(llhttp_t* p, const char* at, std::size_t len) {
  Http1Parser* s = self(p);
  if (!s->addHeadBytes(len)) return s->fail(431, "request head too large");
  // RFC 9112 §5.2: obsolete line folding (a value continued on a line starting with SP/HT) is
  // rejected, never unfolded: a folded Transfer-Encoding is a classic smuggling vector.
  if (len > 0 && s->precededByNewline(at)) {
    return s->fail(400, "obsolete line folding in a header field");
  }
  s->in_value_ = true;
  s->value_.append(at, len);
  return 0;
}

int Http1Parser::onHeaderValueComplete(llhttp_t* p) {
  Http1Parser* s = self(p);
  // RFC 9112 §5.2: obsolete line folding is rejected, never unfolded (a folded
  // Transfer-Encoding is a classic smuggling vector).
  if (core::hasAnyOf(s->value_, "\r\n")) {
    return s->fail(400, "obsolete line folding in a header field");
  }
  s->head_.headers.add(s->field_, core::trimOws(s->value_));
  s->field_.clear();
  s->value_.clear();
  s->in_value_ = false;
  return 0;
}

int Http1Parser::validateHead(RequestFraming& framing) {
  core::RequestHead& h = head_;
  h.http_major = llhttp_get_http_major(&parser_);
  h.http_minor = llhttp_get_http_minor(&parser_);
  if (h.http_major != 1) return fail(505, "HTTP version not supported");
  if (!isToken(h.method)) return fail(400, "invalid method");
  if (h.method == "CONNECT") return fail(405, "CONNECT is not supported");

  std::string authority;
  if (!core::splitTarget(h.target, h.path, h.query, &authority)) {
    return fail(400, "invalid request target");
  }
  // The fields framing depends on, in one pass over the head.
  std::string_view host_first, te_first, cl_first;
  std::optional<std::string_view> expect;
  std::size_t hosts = 0, tes = 0, cls = 0;
  for (const auto& e : h.headers) {
    const std::string& n = e.name;
    switch (n.size()) {
      case 4:
        if (core::iequals(n, "host") && hosts++ == 0) host_first = e.value;
        break;
      case 6:
        if (!expect && core::iequals(n, "expect")) expect = e.value;
        break;
      case 14:
        if (core::iequals(n, "content-length") && cls++ == 0) cl_first = e.value;
        break;
      case 17:
        if (core::iequals(n, "transfer-encoding") && tes++ == 0) te_first = e.value;
        break;
      default:
        break;
    }
  }
  if (hosts > 1) return fail(400, "several Host fields");
  if (hosts == 0 && h.http_minor >= 1 && authority.empty()) return fail(400, "missing Host");
  std::string_view host_value = !authority.empty() ? std::string_view(authority) : host_first;
  if (!host_value.empty()) {
    h.authority = core::normalizeHost(host_value);
    if (h.authority.empty()) return fail(400, "invalid Host");
  }

  // RFC 9112 §6.3: Transfer-Encoding and Content-Length must not both be present, Content-Length
  // must be one valid number, and a request's transfer coding must end in (and here: be) chunked.
  if (tes > 0 && cls > 0) return fail(400, "both Transfer-Encoding and Content-Length");
  // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means faulty framing.
  if (tes > 0 && h.http_minor == 0) return fail(400, "Transfer-Encoding in an HTTP/1.0 request");
  if (tes > 0) {
    // Several fields make a list of codings ("chunked, chunked" included): never just chunked.
    if (tes > 1 || !core::iequals(core::trimOws(te_first), "chunked")) {
      return fail(400, "unsupported Transfer-Encoding");
    }
    framing.chunked = true;
    framing.has_body = true;
  } else if (cls > 0) {
    if (cls > 1) return fail(400, "several Content-Length fields");
    std::string_view v = cl_first;
    std::uint64_t n = 0;
    auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (v.empty() || ec != std::errc() || ptr != v.data() + v.size()) {
      return fail(400, "invalid Content-Length");
    }
    framing.content_length = n;
    framing.has_body = n > 0;
    if (n > limits_.max_body_bytes) return fail(413, "request body too large");
  }
  framing.keep_alive = llhttp_should_keep_alive(&parser_) != 0;
  if (expect) {
    if (!core::iequals(*expect, "100-continue")) return fail(417, "unsupported expectation");
    framing.expect_continue = h.http_minor >= 1;
  }
  if (llhttp_get_upgrade(&parser_)) return fail(400, "protocol upgrade is not supported");
  return 0;
}

int Http1Parser::onHeadersComplete(llhttp_t* p) {
  Http1Parser* s = self(p);
  RequestFraming framing;
  if (s->validateHead(framing) != 0) return -1;
  s->state_ = State::Body;
  s->events_.onRequestHead(std::move(s->head_), framing);
  // Returning 0 lets llhttp decide body framing from the (validated) headers.
  return 0;
}

int Http1Parser::onBody(llhttp_t* p, const char* at, std::size_t len) {
  Http1Parser* s = self(p);
  s->body_bytes_ += len;
  if (s->body_bytes_ > s->limits_.max_body_bytes) return s->fail(413, "request body too large");
  if (p->flags & F_CHUNKED) {
    s->chunk_remaining_ -= std::min<std::uint64_t>(len, s->chunk_remaining_);
    if (s->chunk_remaining_ == 0) {
      s->crlf_pending_ = 2;
      if (!s->checkChunkTerminator(at + len)) return s->fail(400, "malformed chunk: no CRLF after chunk data");
    }
  }
  s->events_.onRequestBody(std::string_view(at, len));
  if (s->pause_requested_) return HPE_PAUSED;
  return 0;
}

int Http1Parser::onChunkHeader(llhttp_t* p) {
  Http1Parser* s = self(p);
  s->chunk_remaining_ = p->content_length;
  return 0;
}

// Checks that chunk data is followed by exactly CRLF (RFC 9112 §7.1), starting at `from`.
bool Http1Parser::checkChunkTerminator(const char* from) {
  static constexpr char kCrlf[2] = {'\r', '\n'};
  while (crlf_pending_ > 0 && from < data_end_) {
    if (*from != kCrlf[2 - crlf_pending_]) return false;
    --crlf_pending_;
    ++from;
  }
  return true;
}

int Http1Parser::onMessageComplete(llhttp_t* p) {
  Http1Parser* s = self(p);
  s->state_ = State::Done;
  s->message_done_ = true;
  s->events_.onRequestComplete();
  return HPE_PAUSED;  // one message at a time (pipelining)
}

Http1Parser::Result Http1Parser::feed(std::string_view data, std::size_t& consumed) {
  consumed = 0;
  if (state_ == State::Error) return Result::Error;
  if (state_ == State::Done) return Result::MessageBoundary;
  if (data.empty()) return Result::Ok;
  data_begin_ = data.data();
  data_end_ = data.data() + data.size();
  if (crlf_pending_ > 0 && !checkChunkTerminator(data_begin_)) {
    fail(400, "malformed chunk: no CRLF after chunk data");
    return Result::Error;
  }
  llhttp_errno_t err = llhttp_execute(&parser_, data.data(), data.size());
  if (err == HPE_OK || err == HPE_PAUSED) {
    std::size_t used = err == HPE_OK ? data.size()
                                     : static_cast<std::size_t>(llhttp_get_error_pos(&parser_) - data.data());
    if (used >= 2) {
      prev_tail_[0] = data[used - 2];
      prev_tail_[1] = data[used - 1];
    } else if (used == 1) {
      prev_tail_[0] = prev_tail_[1];
      prev_tail_[1] = data[0];
    }
  }
  if (err == HPE_OK) {
    consumed = data.size();
    if (state_ == State::Head && !addHeadBytes(0)) {
      fail(431, "request head too large");
      return Result::Error;
    }
    return Result::Ok;
  }
  const char* pos = llhttp_get_error_pos(&parser_);
  consumed = pos ? static_cast<std::size_t>(pos - data.data()) : data.size();
  if (err == HPE_PAUSED) {
    if (message_done_) return Result::MessageBoundary;
    pause_requested_ = false;
    return Result::Paused;
  }
  if (state_ != State::Error) {
    // An error llhttp found itself (malformed syntax, CL+TE, bad chunk size, ...).
    fail(400, llhttp_get_error_reason(&parser_) ? llhttp_get_error_reason(&parser_)
                                                  : "malformed request");
  }
  return Result::Error;
}

Http1Parser::Result Http1Parser::finish() {
  if (state_ == State::Idle || state_ == State::Done) return Result::Ok;
  if (state_ == State::Error) return Result::Error;
  fail(400, "connection closed mid-request");
  return Result::Error;
}

void Http1Parser::resume() {
  pause_requested_ = false;
  if (state_ == State::Done) {
    state_ = State::Idle;
    message_done_ = false;
    head_bytes_ = 0;
  }
  if (llhttp_get_errno(&parser_) == HPE_PAUSED) llhttp_resume(&parser_);
}

}  // namespace portico::proxy
