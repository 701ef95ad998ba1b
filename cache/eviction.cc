#include "cache/eviction.h"

#include <algorithm>
#include <cassert>
#include <functional>

namespace portico::cache {

std::string_view toString(EvictionKind k) {
  switch (k) {
    case EvictionKind::Lru: return "lru";
    case EvictionKind::S3Fifo: return "s3fifo";
  }
  return "unknown";
}

std::unique_ptr<EvictionPolicy> makeEvictionPolicy(EvictionKind kind, std::uint64_t capacity) {
  switch (kind) {
    case EvictionKind::Lru: return std::make_unique<LruPolicy>(capacity);
    case EvictionKind::S3Fifo: return std::make_unique<S3FifoPolicy>(capacity);
  }
  return std::make_unique<S3FifoPolicy>(capacity);
}

// ---- NodeList -------------------------------------------------------------------------------

void NodeList::pushFront(EvictionNode* n) {
  n->prev = nullptr;
  n->next = head_;
  if (head_ != nullptr) head_->prev = n;
  head_ = n;
  if (tail_ == nullptr) tail_ = n;
  ++size_;
}

void NodeList::unlink(EvictionNode* n) {
  if (n->prev != nullptr) n->prev->next = n->next; else head_ = n->next;
  if (n->next != nullptr) n->next->prev = n->prev; else tail_ = n->prev;
  n->prev = n->next = nullptr;
  --size_;
}

// ---- LruPolicy ------------------------------------------------------------------------------

void LruPolicy::admit(EvictionNode* node, std::uint64_t bytes,
                      std::vector<EvictionNode*>& victims) {
  assert(node->queue == 0);
  node->bytes = bytes;
  node->queue = 1;
  list_.pushFront(node);
  bytes_ += bytes;
  evict(victims);
}

void LruPolicy::update(EvictionNode* node, std::uint64_t bytes,
                       std::vector<EvictionNode*>& victims) {
  assert(node->queue == 1);
  bytes_ = bytes_ - node->bytes + bytes;
  node->bytes = bytes;
  access(node);
  evict(victims);
}

void LruPolicy::access(EvictionNode* node) {
  list_.unlink(node);
  list_.pushFront(node);
}

void LruPolicy::remove(EvictionNode* node) {
  assert(node->queue == 1);
  list_.unlink(node);
  bytes_ -= node->bytes;
  node->queue = 0;
}

void LruPolicy::evict(std::vector<EvictionNode*>& victims) {
  while (bytes_ > capacity_ && !list_.empty()) {
    EvictionNode* t = list_.back();
    remove(t);
    victims.push_back(t);
  }
}

// ---- S3FifoPolicy ---------------------------------------------------------------------------

namespace {
constexpr std::uint8_t kMaxFreq = 3;  // 2-bit counter, as in the paper
constexpr std::size_t kMinGhost = 64;
std::uint64_t keyHash(std::string_view key) { return std::hash<std::string_view>{}(key); }
}  // namespace

S3FifoPolicy::S3FifoPolicy(std::uint64_t capacity, unsigned small_percent,
                           unsigned promote_threshold)
    : capacity_(capacity),
      small_capacity_(capacity * std::min(small_percent, 100u) / 100),
      promote_threshold_(promote_threshold) {}

void S3FifoPolicy::admit(EvictionNode* node, std::uint64_t bytes,
                         std::vector<EvictionNode*>& victims) {
  assert(node->queue == kNone);
  node->bytes = bytes;
  node->freq = 0;
  if (ghostTake(keyHash(node->key))) {
    // Seen recently and dropped by the small queue only for lack of hits there: it is coming
    // back, so it goes to main directly (the ghost's whole point).
    node->queue = kMain;
    main_.pushFront(node);
    main_bytes_ += bytes;
  } else {
    node->queue = kSmall;
    small_.pushFront(node);
    small_bytes_ += bytes;
  }
  while (this->bytes() > capacity_ && size() > 0) evictOne(victims);
}

void S3FifoPolicy::update(EvictionNode* node, std::uint64_t bytes,
                          std::vector<EvictionNode*>& victims) {
  assert(node->queue != kNone);
  std::uint64_t& q = node->queue == kSmall ? small_bytes_ : main_bytes_;
  q = q - node->bytes + bytes;
  node->bytes = bytes;
  access(node);
  while (this->bytes() > capacity_ && size() > 0) evictOne(victims);
}

void S3FifoPolicy::access(EvictionNode* node) {
  if (node->freq < kMaxFreq) ++node->freq;
}

void S3FifoPolicy::remove(EvictionNode* node) {
  if (node->queue == kSmall) {
    small_.unlink(node);
    small_bytes_ -= node->bytes;
  } else if (node->queue == kMain) {
    main_.unlink(node);
    main_bytes_ -= node->bytes;
  }
  node->queue = kNone;
}

// One eviction. Reinsertions (small -> main, main -> main head with freq-1) free no bytes, so
// the loop runs until a node actually leaves; it terminates because every reinsertion lowers a
// counter or moves a node out of the small queue.
void S3FifoPolicy::evictOne(std::vector<EvictionNode*>& victims) {
  for (;;) {
    if (!small_.empty() && (small_bytes_ >= small_capacity_ || main_.empty())) {
      EvictionNode* t = small_.back();
      small_.unlink(t);
      small_bytes_ -= t->bytes;
      if (t->freq >= promote_threshold_) {
        t->freq = 0;
        t->queue = kMain;
        main_.pushFront(t);
        main_bytes_ += t->bytes;
        continue;
      }
      t->queue = kNone;
      ghostAdd(keyHash(t->key));
      victims.push_back(t);
      return;
    }
    if (main_.empty()) return;
    EvictionNode* t = main_.back();
    main_.unlink(t);
    if (t->freq > 0) {
      --t->freq;
      main_.pushFront(t);
      continue;
    }
    main_bytes_ -= t->bytes;
    t->queue = kNone;
    victims.push_back(t);
    return;
  }
}

void S3FifoPolicy::ghostAdd(std::uint64_t hash) {
  const std::uint64_t seq = next_seq_++;
  ghost_fifo_.push_back({hash, seq});
  ghost_seq_[hash] = seq;
  const std::size_t limit = std::max(size(), kMinGhost);
  while (ghost_fifo_.size() > limit) {
    const GhostSlot old = ghost_fifo_.front();
    ghost_fifo_.pop_front();
    auto it = ghost_seq_.find(old.hash);
    if (it != ghost_seq_.end() && it->second == old.seq) ghost_seq_.erase(it);
  }
}

bool S3FifoPolicy::ghostTake(std::uint64_t hash) {
  auto it = ghost_seq_.find(hash);
  if (it == ghost_seq_.end()) return false;
  ghost_seq_.erase(it);  // its FIFO slot goes stale and is skipped when it falls off
  return true;
}

bool S3FifoPolicy::inGhost(std::string_view key) const {
  return ghost_seq_.count(keyHash(key)) != 0;
}

}  // namespace portico::cache
