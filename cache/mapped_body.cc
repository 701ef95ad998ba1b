#include "cache/mapped_body.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

namespace portico::cache {

namespace {

std::atomic<std::size_t> g_live{0};

std::size_t fdBudget() {
  static const std::size_t budget = [] {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return std::size_t{256};
    return static_cast<std::size_t>(rl.rlim_cur / 4);
  }();
  return budget;
}

}  // namespace

std::size_t MappedBody::live() { return g_live.load(std::memory_order_relaxed); }

std::shared_ptr<const MappedBody> MappedBody::create(std::string_view bytes) {
  if (bytes.empty()) return nullptr;
  if (g_live.fetch_add(1, std::memory_order_relaxed) >= fdBudget()) {
    g_live.fetch_sub(1, std::memory_order_relaxed);
    return nullptr;
  }
  int fd = ::memfd_create("portico-body", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) {
    g_live.fetch_sub(1, std::memory_order_relaxed);
    return nullptr;
  }
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      g_live.fetch_sub(1, std::memory_order_relaxed);
      return nullptr;
    }
    done += static_cast<std::size_t>(n);
  }
  // Seal first: a shared mapping of an unsealed memfd counts as writable and makes
  // F_SEAL_WRITE fail; after the seal the kernel allows read-only shared mappings only.
  if (::fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    ::close(fd);
    g_live.fetch_sub(1, std::memory_order_relaxed);
    return nullptr;
  }
  void* map = ::mmap(nullptr, bytes.size(), PROT_READ, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) {
    ::close(fd);
    g_live.fetch_sub(1, std::memory_order_relaxed);
    return nullptr;
  }
  return std::shared_ptr<const MappedBody>(
      new MappedBody(fd, static_cast<const char*>(map), bytes.size()));
}

MappedBody::~MappedBody() {
  ::munmap(const_cast<char*>(data_), size_);
  ::close(fd_);
  g_live.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace portico::cache
