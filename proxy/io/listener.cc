#include "proxy/io/listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace portico::proxy {
namespace {

bool makeSockaddr(const conf::ListenAddress& addr, sockaddr_storage& ss, socklen_t& len) {
  std::memset(&ss, 0, sizeof ss);
  std::string host = addr.host.empty() ? "0.0.0.0" : addr.host;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(addr.port));
    len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(addr.port));
    len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

int bindOne(const sockaddr_storage& ss, socklen_t len, bool reuseport, std::string& error) {
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuseport && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    error = std::string("SO_REUSEPORT: ") + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  if (ss.ss_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&ss), len) != 0) {
    error = std::string("bind: ") + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

int boundPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

}  // namespace

std::vector<int> bindReusePort(const conf::ListenAddress& addr, int count,
                               conf::ListenAddress& bound, std::string& error) {
  sockaddr_storage ss;
  socklen_t len;
  if (!makeSockaddr(addr, ss, len)) {
    error = "not an IP address: " + addr.host;
    return {};
  }
  std::vector<int> fds;
  bound = addr;
  for (int i = 0; i < count; ++i) {
    int fd = bindOne(ss, len, true, error);
    if (fd < 0) {
      for (int f : fds) ::close(f);
      return {};
    }
    if (i == 0) {
      bound.port = boundPort(fd);
      reinterpret_cast<sockaddr_in*>(&ss)->sin_port = htons(static_cast<uint16_t>(bound.port));
      if (ss.ss_family == AF_INET6) {
        reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = htons(static_cast<uint16_t>(bound.port));
      }
    }
    fds.push_back(fd);
  }
  return fds;
}

int bindSingle(const conf::ListenAddress& addr, conf::ListenAddress& bound, std::string& error) {
  sockaddr_storage ss;
  socklen_t len;
  if (!makeSockaddr(addr, ss, len)) {
    error = "not an IP address: " + addr.host;
    return -1;
  }
  int fd = bindOne(ss, len, false, error);
  if (fd >= 0) {
    bound = addr;
    bound.port = boundPort(fd);
  }
  return fd;
}

}  // namespace portico::proxy
