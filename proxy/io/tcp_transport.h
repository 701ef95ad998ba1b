#pragma once
// TcpTransport: a Transport over an accepted uv_tcp_t (the contract is in transport.h).
//
// Writes: when nothing is queued, write() tries uv_try_write() first; only the remainder is
// moved (not copied) into a uv_write request, so the common small response costs no allocation.
// Close: uv_close(); libuv completes the pending write and shutdown requests (ECANCELED) before
// the close callback, which then reports onTransportClosed() as its very last action (the owner
// may delete this transport there).
#include <uv.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "proxy/io/transport.h"

namespace portico::proxy {

class TcpTransport final : public Transport {
 public:
  // Takes a connected uv_tcp_t allocated with new; owns it from here on (TCP_NODELAY is set).
  explicit TcpTransport(uv_tcp_t* tcp);
  // Only after onTransportClosed() (the handle is gone by then).
  ~TcpTransport() override = default;
  TcpTransport(const TcpTransport&) = delete;
  TcpTransport& operator=(const TcpTransport&) = delete;

  // Transport
  void setEvents(TransportEvents* events) override { events_ = events; }
  bool established() const override { return true; }
  void readStart() override;
  void readStop() override;
  int write(std::string& data) override;
  int writeWithBody(std::string& data, std::string_view body,
                    std::shared_ptr<const void> keep) override;
  std::size_t pendingBytes() const override { return pending_; }
  void setCork(bool on) override;
  void shutdown() override;
  void close() override;
  const std::string& peerIp() const override { return peer_ip_; }

 private:
  static void onAlloc(uv_handle_t* h, std::size_t suggested, uv_buf_t* buf);
  static void onRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  static void onWriteDone(uv_write_t* req, int status);
  static void onClosed(uv_handle_t* h);

  uv_tcp_t* tcp_;
  TransportEvents* events_ = nullptr;
  std::string peer_ip_;
  std::size_t pending_ = 0;  // bytes in uv_write requests not completed yet
  bool reading_ = false;
  bool shut_down_ = false;
  bool closing_ = false;
};

}  // namespace portico::proxy
