#pragma once
// BlockCache: per-thread recycling of the memory of one class of per-request objects that are
// bigger than glibc's thread cache takes (tcache stops at 1032 bytes). Above it every malloc /
// free pair goes through the arena's bins, with a consolidation of the fast bins before each
// large allocation; a request pipeline (about 2 KiB) paid that on every request. Blocks freed on
// a thread are kept (up to kMax) for the next allocation on that thread; the rest go back to the
// heap. Under AddressSanitizer the cache is off, so use-after-free stays visible.
//
//   class Big {
//    public:
//     static void* operator new(std::size_t n) { return core::BlockCache<Big>::take(n); }
//     static void operator delete(void* p, std::size_t n) noexcept { core::BlockCache<Big>::give(p, n); }
//   };
#include <cstddef>
#include <new>

#if defined(__SANITIZE_ADDRESS__)
#define PORTICO_BLOCK_CACHE_ENABLED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PORTICO_BLOCK_CACHE_ENABLED 0
#endif
#endif
#ifndef PORTICO_BLOCK_CACHE_ENABLED
#define PORTICO_BLOCK_CACHE_ENABLED 1
#endif

namespace portico::core {

template <typename Tag, std::size_t kMax = 64>
class BlockCache {
 public:
  static void* take(std::size_t n) {
    if constexpr (PORTICO_BLOCK_CACHE_ENABLED) {
      Cache& c = cache();
      if (c.count > 0 && n == c.size) return c.blocks[--c.count];
    }
    return ::operator new(n);
  }
  static void give(void* p, std::size_t n) noexcept {
    if (p == nullptr) return;
    if constexpr (PORTICO_BLOCK_CACHE_ENABLED) {
      Cache& c = cache();
      if (c.count == 0) c.size = n;  // one size per Tag: the first one seen (final classes)
      if (c.count < kMax && n == c.size) {
        c.blocks[c.count++] = p;
        return;
      }
    }
    ::operator delete(p, n);
  }
  // Blocks kept on this thread (tests).
  static std::size_t cached() { return cache().count; }

 private:
  struct Cache {
    void* blocks[kMax];
    std::size_t count = 0;
    std::size_t size = 0;
    ~Cache() {
      while (count > 0) ::operator delete(blocks[--count], size);
    }
  };
  static Cache& cache() {
    thread_local Cache c;
    return c;
  }
};

}  // namespace portico::core
