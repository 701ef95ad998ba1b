#pragma once
// Listening sockets with SO_REUSEPORT: one socket per worker per address, so the kernel spreads
// accepted connections over the workers (no shared accept lock, no thundering herd). The first
// socket of an address may bind port 0; the others bind the port it got (h2o's dup_listener()).
#include <string>
#include <vector>

#include "conf/config.h"

namespace portico::proxy {

// One listening socket handed to a worker: plain HTTP or TLS.
struct ListenSocket {
  int fd = -1;
  bool tls = false;
};

// Creates `count` bound (not yet listening) sockets for `addr`. On success returns the fds and
// sets `bound` to the actual address (port resolved). On failure returns {} and sets `error`.
std::vector<int> bindReusePort(const conf::ListenAddress& addr, int count,
                               conf::ListenAddress& bound, std::string& error);

// One plain bound socket (admin listener).
int bindSingle(const conf::ListenAddress& addr, conf::ListenAddress& bound, std::string& error);

}  // namespace portico::proxy
