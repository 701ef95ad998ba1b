#pragma once
// Transport: the byte stream under one client connection (style.md 4.2). Http1Connection talks
// only to this interface; TcpTransport is a uv_tcp_t, TlsTransport runs OpenSSL over another
// Transport (a TcpTransport in production, an in-memory one in tests).
//
// Contract (G11), for every implementation:
//   - Loop thread only. Every event is delivered on the loop, never from inside close().
//   - Reads: after readStart(), each chunk of application bytes arrives as
//     onTransportRead(n > 0, data); `data` is valid during the call only. A negative n is a libuv
//     error code: UV_EOF = the peer finished sending (writing may go on); any other = the stream
//     is broken and the owner should close(). A chunk already being delivered is delivered whole
//     even if readStop() is called in the middle (as with libuv's own read callback).
//   - Writes: write(data) takes every byte of `data` (left empty) and sends it in order. Bytes that
//     could not go out at once are counted by pendingBytes(); onTransportWritten() reports each
//     completion. A negative return means the stream is broken.
//   - close() is idempotent; afterwards no event but onTransportClosed() fires, exactly once. The
//     owner destroys the transport from (or after) onTransportClosed(), never before.
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace portico::proxy {

// What a TLS connection negotiated (access log, metrics). The views point to static strings.
struct TlsInfo {
  std::string_view protocol;  // "TLSv1.2" | "TLSv1.3"
  std::string_view cipher;    // e.g. "TLS_AES_128_GCM_SHA256"
  std::string_view alpn;      // "http/1.1", or empty when the client offered no ALPN
  bool resumed = false;       // session ticket or session cache hit
  std::string server_name;    // SNI as sent by the client (may be empty)
};

class TransportEvents {
 public:
  virtual ~TransportEvents() = default;
  // The handshake finished: application bytes flow from now on. Never called for a transport
  // whose established() is true from the start (plain TCP).
  virtual void onTransportEstablished() {}
  virtual void onTransportRead(ssize_t n, const char* data) = 0;
  // A write that did not complete synchronously finished (status 0) or failed (< 0).
  // pendingBytes() is already updated.
  virtual void onTransportWritten(int status) = 0;
  virtual void onTransportClosed() = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Set once, before the first event can fire (i.e. before returning to the loop).
  virtual void setEvents(TransportEvents* events) = 0;
  // True when application bytes can flow (plain TCP: always; TLS: after the handshake).
  virtual bool established() const = 0;
  virtual void readStart() = 0;
  virtual void readStop() = 0;
  // Takes all of `data` (it is left empty, its capacity kept when it was sent at once).
  // Returns 0, or a negative libuv error code when the stream is broken.
  virtual int write(std::string& data) = 0;
  // write(data), then `body` without copying it where the transport can (plain TCP: one
  // writev of both; TLS encrypts from it): `keep` owns the bytes and is held until they are
  // sent. For the immutable bodies of stored objects. Same return as write().
  virtual int writeWithBody(std::string& data, std::string_view body,
                            std::shared_ptr<const void> keep) {
    (void)keep;
    data.append(body);
    return write(data);
  }
  virtual std::size_t pendingBytes() const = 0;
  // Large bodies: while corked, the kernel sends only full segments (TCP_CORK, nginx's
  // tcp_nopush); uncorking pushes what is left at once. No-op where it means nothing.
  virtual void setCork(bool /*on*/) {}
  // Ends the sending direction once everything written has gone out (TLS: close_notify, then
  // FIN). Reading goes on. Idempotent.
  virtual void shutdown() = 0;
  virtual void close() = 0;
  // The peer's IP address, without the port ("" if unknown).
  virtual const std::string& peerIp() const = 0;
  // Null for a plaintext transport; for TLS, what was negotiated (null until established).
  virtual const TlsInfo* tls() const { return nullptr; }
};

}  // namespace portico::proxy
