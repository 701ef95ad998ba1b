#include "proxy/core/block_cache.h"

#include <gtest/gtest.h>

#include <cstring>
#include <thread>

namespace portico::core {
namespace {

struct Tag {};
struct OtherTag {};

#if PORTICO_BLOCK_CACHE_ENABLED
TEST(BlockCache, RecyclesBlocksOfItsSizeOnItsThread) {
  void* a = BlockCache<Tag>::take(2000);
  std::memset(a, 1, 2000);  // usable memory
  BlockCache<Tag>::give(a, 2000);
  EXPECT_EQ(BlockCache<Tag>::cached(), 1u);
  EXPECT_EQ(BlockCache<Tag>::take(2000), a);  // the same block back
  EXPECT_EQ(BlockCache<Tag>::cached(), 0u);
  // Another thread has a cache of its own: the block given here is not seen there.
  BlockCache<Tag>::give(a, 2000);
  std::size_t there = 99;
  std::thread([&] { there = BlockCache<Tag>::cached(); }).join();
  EXPECT_EQ(there, 0u);
  void* b = BlockCache<Tag>::take(2000);
  EXPECT_EQ(b, a);
  // A block of another size is not kept next to blocks of the cached size.
  void* c = BlockCache<Tag>::take(3000);
  BlockCache<Tag>::give(b, 2000);
  BlockCache<Tag>::give(c, 3000);
  EXPECT_EQ(BlockCache<Tag>::cached(), 1u);
  BlockCache<Tag>::give(BlockCache<Tag>::take(2000), 2000);
}

TEST(BlockCache, KeepsAtMostItsBound) {
  constexpr std::size_t kMax = 4;
  void* blocks[kMax + 2];
  for (auto& p : blocks) p = BlockCache<OtherTag, kMax>::take(64);
  for (auto* p : blocks) BlockCache<OtherTag, kMax>::give(p, 64);
  EXPECT_EQ((BlockCache<OtherTag, kMax>::cached()), kMax);  // the rest went back to the heap
  BlockCache<OtherTag, kMax>::give(nullptr, 64);             // harmless
  EXPECT_EQ((BlockCache<OtherTag, kMax>::cached()), kMax);
}
#else
TEST(BlockCache, OffUnderAddressSanitizer) {
  void* a = BlockCache<Tag>::take(2000);
  BlockCache<Tag>::give(a, 2000);
  EXPECT_EQ(BlockCache<Tag>::cached(), 0u);
}
#endif

}  // namespace
}  // namespace portico::core
