#pragma once
// MemoryTransport: a Transport with no socket, for unit tests of what runs over one (the TLS
// transport, the HTTP/1 connection). The test plays the peer: deliver() hands bytes to the
// reader as a socket read would, `written` collects what was written, finishClose() completes a
// close() (as libuv's close callback would, later, on the loop).
#include <string>

#include "proxy/io/transport.h"

namespace portico::test {

class MemoryTransport final : public proxy::Transport {
 public:
  // The test keeps raw pointers to these fields: the transport itself is owned by the code
  // under test, which deletes it from onTransportClosed().
  struct Wire {
    std::string written;
    bool reading = false;
    bool shut_down = false;
    bool close_requested = false;
    proxy::TransportEvents* events = nullptr;
  };

  explicit MemoryTransport(Wire* wire) : wire_(wire) {}

  // Peer side (the test).
  static void deliver(Wire& w, const std::string& bytes) {
    w.events->onTransportRead(static_cast<ssize_t>(bytes.size()), bytes.data());
  }
  static void deliverError(Wire& w, ssize_t code) { w.events->onTransportRead(code, nullptr); }
  static void finishClose(Wire& w) {
    proxy::TransportEvents* e = w.events;
    w.events = nullptr;
    if (e != nullptr) e->onTransportClosed();
  }

  // Transport
  void setEvents(proxy::TransportEvents* events) override { wire_->events = events; }
  bool established() const override { return true; }
  void readStart() override { wire_->reading = true; }
  void readStop() override { wire_->reading = false; }
  int write(std::string& data) override {
    wire_->written += data;
    data.clear();
    return 0;
  }
  std::size_t pendingBytes() const override { return 0; }
  void shutdown() override { wire_->shut_down = true; }
  void close() override { wire_->close_requested = true; }
  const std::string& peerIp() const override { return ip_; }

 private:
  Wire* wire_;
  std::string ip_ = "192.0.2.1";
};

}  // namespace portico::test
