#pragma once
// MappedBody: a large stored body kept in a sealed memfd (anonymous shared memory) instead of
// the heap, mapped read-only for readers that need the bytes and handed to sendfile(2) by the
// connection, so that a hit of a large object goes from the cache's pages to the socket
// without a copy through user space (what nginx gets from the page cache). Immutable once
// created: the memfd is sealed against writes, shrinking and growing. The fd and the mapping
// live as long as the last reference.
#include <cstddef>
#include <memory>
#include <string_view>

namespace portico::cache {

class MappedBody {
 public:
  // Copies `bytes` into a new sealed memfd. Null if the system refuses (no memfd, no memory)
  // or if mapped bodies already hold a quarter of the process's file-descriptor limit (client
  // sockets must never starve): the caller then keeps the body on the heap.
  static std::shared_ptr<const MappedBody> create(std::string_view bytes);
  // Mapped bodies alive now (each holds one file descriptor).
  static std::size_t live();
  ~MappedBody();
  MappedBody(const MappedBody&) = delete;
  MappedBody& operator=(const MappedBody&) = delete;

  std::string_view view() const { return {data_, size_}; }
  std::size_t size() const { return size_; }
  int fd() const { return fd_; }

 private:
  MappedBody(int fd, const char* data, std::size_t size) : fd_(fd), data_(data), size_(size) {}
  int fd_;
  const char* data_;
  std::size_t size_;
};

}  // namespace portico::cache
