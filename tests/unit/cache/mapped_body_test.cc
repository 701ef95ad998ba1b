// MappedBody: a sealed memfd holding a stored body; the bytes read back through the mapping and
// through the fd, the seals refuse writes, and the fd goes away with the last reference.
#include "cache/mapped_body.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

namespace portico::cache {
namespace {

TEST(MappedBody, HoldsTheBytesSealed) {
  std::string bytes(300 * 1024, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7);
  const std::size_t before = MappedBody::live();
  auto body = MappedBody::create(bytes);
  ASSERT_NE(body, nullptr);
  EXPECT_EQ(MappedBody::live(), before + 1);
  EXPECT_EQ(body->size(), bytes.size());
  EXPECT_EQ(body->view(), bytes);
  char buf[16];
  ASSERT_EQ(::pread(body->fd(), buf, sizeof buf, 1000), static_cast<ssize_t>(sizeof buf));
  EXPECT_EQ(std::string(buf, sizeof buf), bytes.substr(1000, sizeof buf));
  EXPECT_LT(::pwrite(body->fd(), "x", 1, 0), 0);  // F_SEAL_WRITE
  EXPECT_NE(::ftruncate(body->fd(), 10), 0);      // F_SEAL_SHRINK
  const int fd = body->fd();
  body.reset();
  EXPECT_EQ(MappedBody::live(), before);
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1);  // closed
}

TEST(MappedBody, EmptyIsRefused) { EXPECT_EQ(MappedBody::create(""), nullptr); }

}  // namespace
}  // namespace portico::cache
