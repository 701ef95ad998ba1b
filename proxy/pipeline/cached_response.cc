#include "proxy/pipeline/cached_response.h"

#include <algorithm>
#include <string>

#include "cache/policy.h"
#include "cache/validation.h"
#include "proxy/compress/content_coding.h"

namespace portico::proxy {
namespace {

// Pieces handed to the exchange at once. A piece is not a copy (the write holds a reference to
// the stored body, which exists anyway), so a slow client costs no memory for it; large pieces
// keep syscalls and wake-ups few (one writev for a whole stored body).
constexpr std::uint64_t kPiece = 16 * 1024 * 1024;

void decorate(core::ResponseHead& head, const cache::CachedObject& object,
              cache::CacheStatus status, core::WallTime now) {
  head.headers.set("Age", std::to_string(cache::currentAge(object.meta, now)));
  head.headers.set("X-Cache", cache::xCacheValue(status));
  addVia(head.headers);
}

}  // namespace

void addExtra(core::HeaderMap& headers, const core::HeaderMap& extra) {
  for (const auto& e : extra) {
    if (core::iequals(e.name, "vary")) {
      for (std::string_view list = e.value; !list.empty();) {
        const std::size_t comma = list.find(',');
        const std::string_view token = core::trimOws(list.substr(0, comma));
        if (!token.empty()) core::addVaryToken(headers, token);
        list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
      }
    } else {
      headers.set(e.name, e.value);  // the edge's value replaces the backend's (one field)
    }
  }
}

namespace {

}  // namespace

void addVia(core::HeaderMap& headers) {
  if (auto via = headers.getJoined("via")) {
    headers.set("Via", *via + ", 1.1 portico");
  } else {
    headers.add("Via", "1.1 portico");
  }
}

ServedObject serveObject(Exchange& ex, const cache::CachedObject& object,
                         cache::CacheStatus status, core::WallTime now, std::uint64_t& offset,
                         std::uint64_t& end, bool vary_accept_encoding,
                         const core::HeaderMap* extra) {
  const core::RequestHead& req = ex.request();
  const std::uint64_t size = object.bodySize();
  ServedObject served;
  offset = 0;
  end = 0;

  if (cache::evaluateConditional(req, object) == cache::ConditionalOutcome::NotModified) {
    core::ResponseHead head = cache::notModifiedHead(object.head);
    head.status = 304;
    decorate(head, object, status, now);
    if (vary_accept_encoding) addVaryAcceptEncoding(head.headers);
    if (extra) addExtra(head.headers, *extra);
    served.status = 304;
    ex.sendHead(std::move(head), std::nullopt);
    return served;
  }

  core::ResponseHead head = object.head;
  decorate(head, object, status, now);
  if (vary_accept_encoding) addVaryAcceptEncoding(head.headers);
  if (extra) addExtra(head.headers, *extra);
  cache::ByteRange range = object.head.status == 200 ? cache::requestedRange(req, object)
                                                     : cache::ByteRange{};
  switch (range.kind) {
    case cache::RangeKind::Unsatisfiable:
      head.status = 416;
      head.reason.clear();
      head.headers.set("Content-Range", cache::unsatisfiedContentRange(size));
      head.headers.set("Content-Type", "text/plain; charset=utf-8");
      {
        static const std::string kBody = "416 Range Not Satisfiable\n";
        served.status = 416;
        ex.sendHead(std::move(head), kBody.size());
        ex.sendBody(kBody);
        served.body_bytes = kBody.size();
      }
      return served;
    case cache::RangeKind::Single:
      head.status = 206;
      head.reason.clear();
      head.headers.set("Content-Range", cache::contentRange(range, size));
      offset = range.first;
      end = range.last + 1;
      break;
    case cache::RangeKind::None:
      end = size;
      break;
  }
  if (head.status == 200 || head.status == 206) head.headers.set("Accept-Ranges", "bytes");
  served.status = head.status;
  ex.sendHead(std::move(head), end - offset);
  if (req.isHead()) {
    offset = end;
    return served;
  }
  served.complete = continueObject(ex, object, offset, end, served.body_bytes);
  return served;
}

bool continueObject(Exchange& ex, const cache::CachedObject& object, std::uint64_t& offset,
                    std::uint64_t end, std::uint64_t& body_bytes) {
  while (offset < end) {
    std::uint64_t n = std::min(kPiece, end - offset);
    std::string_view piece = object.bodyView().substr(offset, n);
    offset += n;
    body_bytes += n;
    const bool more = ex.sendSharedBody(piece, object.bodyOwner());
    if (!more) return offset >= end;
  }
  return true;
}

}  // namespace portico::proxy
