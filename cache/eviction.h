#pragma once
// Eviction policies for the memory tier (style.md G2): byte accounting and victim choice, kept
// apart from the key -> object map (Pingora EvictionManager::admit "Return[s] one or more items
// to evict"). A policy never frees anything: it tells its owner which entries to drop.
//
// Nodes are intrusive: the owner (MemoryStore's shard) embeds one EvictionNode in each map entry,
// so tracking an object costs no extra allocation and no second hash lookup per hit. The node's
// `key` views the owner's copy of the key, which must stay put (std::unordered_map nodes do) from
// admit() until the node is removed or handed back as a victim.
//
// Thread: none of their own. A policy is guarded by its owner's lock (one per shard).
//
// Two implementations:
//  - LruPolicy: byte-weighted LRU, the baseline.
//  - S3FifoPolicy: S3-FIFO (Yang et al., SOSP'23 "FIFO queues are all you need for cache
//    eviction"; Pingora TinyUFO): a small FIFO (10% of bytes) filters one-hit wonders, a main FIFO
//    with 2-bit frequency reinsertion keeps the popular objects, and a ghost FIFO of key hashes
//    lets objects evicted from the small queue go straight to main when they come back. It beats
//    LRU on Zipf workloads (see deploy/bench/cache_sim.cc and the table in the report), and a hit
//    is a counter bump instead of a list move.
#include <cstdint>
#include <deque>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace portico::cache {

enum class EvictionKind { Lru, S3Fifo };
std::string_view toString(EvictionKind k);

struct EvictionNode {
  std::string_view key;         // views the owner's key; set by the owner before admit()
  std::uint64_t bytes = 0;      // charged size; set by admit()/update()
  EvictionNode* prev = nullptr;  // intrusive list links, owned by the policy
  EvictionNode* next = nullptr;
  std::uint8_t queue = 0;  // policy-private: which list the node is on (0: none)
  std::uint8_t freq = 0;   // policy-private: S3-FIFO access counter (0..3)
};

class EvictionPolicy {
 public:
  virtual ~EvictionPolicy() = default;

  // Starts tracking `node` (not tracked yet) with `bytes`, then picks victims until the total
  // fits the capacity. Victims are unlinked and appended to `victims`; the caller must drop them
  // (and may then destroy the nodes). `node` itself may be among them (S3-FIFO: a new object
  // bigger than what the small queue can hold; both: bigger than the capacity).
  virtual void admit(EvictionNode* node, std::uint64_t bytes,
                     std::vector<EvictionNode*>& victims) = 0;
  // A tracked node's object was replaced by one of `bytes` (a refresh): counts as an access and
  // keeps the node's standing. May evict, as admit() does, `node` itself included.
  virtual void update(EvictionNode* node, std::uint64_t bytes,
                      std::vector<EvictionNode*>& victims) = 0;
  // A hit on a tracked node.
  virtual void access(EvictionNode* node) = 0;
  // Stops tracking `node` (purge, explicit removal). Not recorded as an eviction.
  virtual void remove(EvictionNode* node) = 0;

  virtual std::uint64_t bytes() const = 0;     // sum of tracked nodes' bytes
  virtual std::uint64_t capacity() const = 0;  // admit() evicts down to this
  virtual std::size_t size() const = 0;        // tracked nodes
};

std::unique_ptr<EvictionPolicy> makeEvictionPolicy(EvictionKind kind, std::uint64_t capacity);

// An intrusive doubly linked list of EvictionNodes; head = newest, tail = oldest.
class NodeList {
 public:
  void pushFront(EvictionNode* n);
  void unlink(EvictionNode* n);
  EvictionNode* back() const { return tail_; }
  bool empty() const { return head_ == nullptr; }
  std::size_t size() const { return size_; }

 private:
  EvictionNode* head_ = nullptr;
  EvictionNode* tail_ = nullptr;
  std::size_t size_ = 0;
};

class LruPolicy final : public EvictionPolicy {
 public:
  explicit LruPolicy(std::uint64_t capacity) : capacity_(capacity) {}
  void admit(EvictionNode* node, std::uint64_t bytes, std::vector<EvictionNode*>& victims) override;
  void update(EvictionNode* node, std::uint64_t bytes, std::vector<EvictionNode*>& victims) override;
  void access(EvictionNode* node) override;
  void remove(EvictionNode* node) override;
  std::uint64_t bytes() const override { return bytes_; }
  std::uint64_t capacity() const override { return capacity_; }
  std::size_t size() const override { return list_.size(); }

 private:
  void evict(std::vector<EvictionNode*>& victims);
  std::uint64_t capacity_;
  std::uint64_t bytes_ = 0;
  NodeList list_;
};

class S3FifoPolicy final : public EvictionPolicy {
 public:
  // `small_percent` of the bytes go to the small queue (the paper's 10%). An object leaving the
  // small queue moves to main if it was hit at least `promote_threshold` times while there.
  explicit S3FifoPolicy(std::uint64_t capacity, unsigned small_percent = 10,
                        unsigned promote_threshold = 1);
  void admit(EvictionNode* node, std::uint64_t bytes, std::vector<EvictionNode*>& victims) override;
  void update(EvictionNode* node, std::uint64_t bytes, std::vector<EvictionNode*>& victims) override;
  void access(EvictionNode* node) override;
  void remove(EvictionNode* node) override;
  std::uint64_t bytes() const override { return small_bytes_ + main_bytes_; }
  std::uint64_t capacity() const override { return capacity_; }
  std::size_t size() const override { return small_.size() + main_.size(); }

  // Introspection for tests.
  std::size_t smallSize() const { return small_.size(); }
  std::size_t mainSize() const { return main_.size(); }
  bool inGhost(std::string_view key) const;

 private:
  enum Queue : std::uint8_t { kNone = 0, kSmall = 1, kMain = 2 };
  void evictOne(std::vector<EvictionNode*>& victims);
  void ghostAdd(std::uint64_t hash);
  bool ghostTake(std::uint64_t hash);  // true if present; removes it

  std::uint64_t capacity_;
  std::uint64_t small_capacity_;
  unsigned promote_threshold_;
  std::uint64_t small_bytes_ = 0;
  std::uint64_t main_bytes_ = 0;
  NodeList small_;
  NodeList main_;
  // Ghost: hashes of keys recently evicted from the small queue, FIFO, bounded in entries by the
  // number of resident objects (the paper sizes G like M). `ghost_seq_` maps a hash to the
  // sequence number of its newest FIFO slot so stale slots are skipped when they fall off.
  struct GhostSlot {
    std::uint64_t hash;
    std::uint64_t seq;
  };
  std::deque<GhostSlot> ghost_fifo_;
  std::unordered_map<std::uint64_t, std::uint64_t> ghost_seq_;
  std::uint64_t next_seq_ = 0;
};

}  // namespace portico::cache
