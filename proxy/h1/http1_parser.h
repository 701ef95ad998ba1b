#pragma once
// Http1Parser: llhttp adapter for requests. Bytes in, events out; no sockets (unit-testable with
// byte strings). Enforces the limits and the anti-smuggling rules of RFC 9112 §6:
//  - a head larger than max_header_bytes -> 431;
//  - both Content-Length and Transfer-Encoding, several Content-Length values, an invalid
//    Content-Length, or a Transfer-Encoding that is not exactly "chunked" -> 400 (llhttp's own
//    strict checks plus ours: we never run llhttp in a lenient mode);
//  - HTTP/1.1 without Host, or several Host fields -> 400;
//  - a body larger than max_body_bytes -> 413 (known length: at the head; chunked: when crossed).
// After an error the parser is dead: the connection answers the error status and closes.
//
// Pipelining: the parser stops after each complete message (feed() returns with the unconsumed
// bytes counted), so the connection answers one request at a time; resume() continues with the
// next message.
#include <llhttp.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/core/http_message.h"

namespace portico::proxy {

struct ParseLimits {
  std::uint64_t max_header_bytes = 65536;
  std::uint64_t max_body_bytes = 10 * 1024 * 1024;
};

// Body framing of a parsed request.
struct RequestFraming {
  bool has_body = false;         // Content-Length > 0 or chunked
  bool chunked = false;
  std::uint64_t content_length = 0;  // when !chunked
  bool keep_alive = true;        // per the version and Connection header
  bool expect_continue = false;  // "Expect: 100-continue"
};

class Http1ParserEvents {
 public:
  virtual ~Http1ParserEvents() = default;
  // A complete, validated head. The events object may call Http1Parser::pause() from here.
  virtual void onRequestHead(core::RequestHead head, const RequestFraming& framing) = 0;
  virtual void onRequestBody(std::string_view chunk) = 0;
  virtual void onRequestComplete() = 0;
};

class Http1Parser {
 public:
  Http1Parser(Http1ParserEvents& events, ParseLimits limits);
  Http1Parser(const Http1Parser&) = delete;
  Http1Parser& operator=(const Http1Parser&) = delete;

  enum class Result {
    Ok,              // all bytes consumed
    MessageBoundary, // stopped after a complete message; `consumed` bytes were used
    Paused,          // stopped because pause() was called during a callback
    Error,           // see errorStatus()/errorReason()
  };
  // Feeds bytes; `consumed` tells how many were used (the rest must be fed again later).
  Result feed(std::string_view data, std::size_t& consumed);
  // The peer closed its side: an incomplete message is an error (400).
  Result finish();
  // From inside an event: stop after the current callback.
  void pause() { pause_requested_ = true; }
  // Continue after MessageBoundary / Paused.
  void resume();

  // True while between messages (no byte of the next head seen yet).
  bool idle() const { return state_ == State::Idle; }
  bool inHead() const { return state_ == State::Head; }
  int errorStatus() const { return error_status_; }
  const std::string& errorReason() const { return error_reason_; }

 private:
  enum class State { Idle, Head, Body, Done, Error };
  static int onMessageBegin(llhttp_t* p);
  static int onUrl(llhttp_t* p, const char* at, std::size_t len);
  static int onMethod(llhttp_t* p, const char* at, std::size_t len);
  static int onHeaderField(llhttp_t* p, const char* at, std::size_t len);
  static int onHeaderValue(llhttp_t* p, const char* at, std::size_t len);
  static int onHeaderValueComplete(llhttp_t* p);
  static int onHeadersComplete(llhttp_t* p);
  static int onBody(llhttp_t* p, const char* at, std::size_t len);
  static int onChunkHeader(llhttp_t* p);
  static int onMessageComplete(llhttp_t* p);

  int fail(int status, std::string reason);
  bool precededByNewline(const char* at) const;
  bool checkChunkTerminator(const char* from);
  bool addHeadBytes(std::size_t n);
  int validateHead(RequestFraming& framing);

  Http1ParserEvents& events_;
  ParseLimits limits_;
  llhttp_settings_t settings_;
  llhttp_t parser_;
  State state_ = State::Idle;
  bool pause_requested_ = false;
  bool message_done_ = false;
  std::uint64_t head_bytes_ = 0;
  std::uint64_t body_bytes_ = 0;
  int error_status_ = 0;
  std::string error_reason_;
  core::RequestHead head_;
  std::string field_;
  std::string value_;
  bool in_value_ = false;
  // llhttp 8.1 neither rejects obsolete line folding nor checks the CRLF after chunk data; both
  // are smuggling vectors, so the parser checks them against the raw bytes itself.
  const char* data_begin_ = nullptr;
  const char* data_end_ = nullptr;
  char prev_tail_[2] = {0, 0};    // the last bytes of the previous feed
  std::uint64_t chunk_remaining_ = 0;
  int crlf_pending_ = 0;          // bytes of the chunk-data CRLF still to check (next feed)
};

}  // namespace portico::proxy
