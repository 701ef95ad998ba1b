#pragma once
// Shared by the origin component tests: a ResponseSink that records every callback and checks
// the origin contract (origin/origin_client.h) as it goes, plus request builders.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "origin/origin_client.h"

namespace portico::origin::test_support {

class RecordingSink : public ResponseSink {
 public:
  void onOriginHead(core::ResponseHead h) override {
    if (in_fetch) ++sync_calls;
    if (heads > 0 || dones > 0 || body_calls > 0) ++violations;
    ++heads;
    head = std::move(h);
    if (on_head) on_head();
  }
  bool onOriginBody(std::string_view chunk) override {
    if (in_fetch) ++sync_calls;
    if (heads == 0 || dones > 0 || (paused && check_pause)) ++violations;  // none while paused
    ++body_calls;
    max_chunk = std::max(max_chunk, chunk.size());
    body.append(chunk);
    bool more = on_body ? on_body(chunk) : true;
    if (!more) paused = true;
    return more;
  }
  void onOriginDone(FetchError e) override {
    if (in_fetch) ++sync_calls;
    if (dones > 0) ++violations;
    ++dones;
    error = e;
    if (on_done) on_done();
  }
  void onRequestBodyDrained() override {
    if (in_fetch) ++sync_calls;
    ++drained;
  }

  std::string header(std::string_view name) const {
    return std::string(head.headers.get(name).value_or(""));
  }
  int callbacks() const { return heads + body_calls + dones; }

  bool in_fetch = false;    // set by the test around fetch(): a callback then is a violation
  bool paused = false;      // the last onOriginBody() returned false (the test clears it)
  bool check_pause = true;  // a body call while `paused` is a violation
  int sync_calls = 0;
  int violations = 0;
  int heads = 0;
  int body_calls = 0;
  int dones = 0;
  int drained = 0;
  core::ResponseHead head;
  std::string body;
  std::size_t max_chunk = 0;
  FetchError error = FetchError::None;
  std::function<void()> on_head;
  std::function<bool(std::string_view)> on_body;  // default: keep delivering
  std::function<void()> on_done;
};

// A client request as the pipeline would hand it over: Host, client ip, path, query.
inline OriginRequest makeRequest(std::string method, std::string path, std::string query = "") {
  OriginRequest r;
  r.head.method = std::move(method);
  r.head.path = path;
  r.head.query = query;
  r.head.target = path + (query.empty() ? "" : "?" + query);
  r.head.authority = "client.example";
  r.head.headers.add("Host", "client.example");
  r.head.client_ip = "192.0.2.7";
  r.path = std::move(path);
  return r;
}

// Starts `client.fetch()` and checks that it called nothing synchronously.
template <typename Client>
FetchPtr startFetch(Client& client, OriginRequest request, RecordingSink& sink) {
  sink.in_fetch = true;
  FetchPtr f = client.fetch(std::move(request), sink);
  sink.in_fetch = false;
  return f;
}

// A loopback port that refuses connections: a socket bound to 127.0.0.1:0 that never listens.
// Nobody else can take the port while this object lives.
class RefusingPort {
 public:
  RefusingPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~RefusingPort() { ::close(fd_); }
  RefusingPort(const RefusingPort&) = delete;
  RefusingPort& operator=(const RefusingPort&) = delete;
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace portico::origin::test_support
