// Eviction policies in isolation (style.md G2): byte accounting and victim choice, no store.
#include "cache/eviction.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace portico::cache {
namespace {

// Owns the nodes and keys the way MemoryStore does (stable addresses, node.key views the key).
class Harness {
 public:
  explicit Harness(std::unique_ptr<EvictionPolicy> p) : policy_(std::move(p)) {}

  std::vector<std::string> admit(const std::string& key, std::uint64_t bytes) {
    auto [it, inserted] = nodes_.try_emplace(key);
    EXPECT_TRUE(inserted) << key;
    it->second.key = it->first;
    std::vector<EvictionNode*> victims;
    policy_->admit(&it->second, bytes, victims);
    return drop(victims);
  }
  std::vector<std::string> update(const std::string& key, std::uint64_t bytes) {
    std::vector<EvictionNode*> victims;
    policy_->update(&nodes_.at(key), bytes, victims);
    return drop(victims);
  }
  void access(const std::string& key) { policy_->access(&nodes_.at(key)); }
  void remove(const std::string& key) {
    policy_->remove(&nodes_.at(key));
    nodes_.erase(key);
  }
  bool has(const std::string& key) const { return nodes_.count(key) != 0; }
  // A hit if present (access), else an admission. Returns whether it was a hit.
  bool request(const std::string& key, std::uint64_t bytes) {
    if (has(key)) {
      access(key);
      return true;
    }
    admit(key, bytes);
    return false;
  }
  EvictionPolicy& policy() { return *policy_; }

 private:
  std::vector<std::string> drop(const std::vector<EvictionNode*>& victims) {
    std::vector<std::string> out;
    for (EvictionNode* v : victims) {
      out.emplace_back(v->key);
      nodes_.erase(out.back());
    }
    return out;
  }
  std::unique_ptr<EvictionPolicy> policy_;
  std::map<std::string, EvictionNode> nodes_;
};

using Keys = std::vector<std::string>;

TEST(LruPolicyTest, EvictsLeastRecentlyUsedByBytes) {
  Harness h(std::make_unique<LruPolicy>(300));
  EXPECT_EQ(h.admit("a", 100), Keys{});
  EXPECT_EQ(h.admit("b", 100), Keys{});
  EXPECT_EQ(h.admit("c", 100), Keys{});
  EXPECT_EQ(h.policy().bytes(), 300u);
  h.access("a");  // b is now the oldest
  EXPECT_EQ(h.admit("d", 150), (Keys{"b", "c"}));  // 450 -> 350 -> 250
  EXPECT_EQ(h.policy().bytes(), 250u);
  EXPECT_EQ(h.policy().size(), 2u);
}

TEST(LruPolicyTest, UpdateResizesAndRemoveForgets) {
  Harness h(std::make_unique<LruPolicy>(300));
  h.admit("a", 100);
  h.admit("b", 100);
  EXPECT_EQ(h.update("b", 50), Keys{});
  EXPECT_EQ(h.policy().bytes(), 150u);
  h.remove("a");
  EXPECT_EQ(h.policy().bytes(), 50u);
  EXPECT_EQ(h.policy().size(), 1u);
  // Growing past the capacity evicts others first, the grown node last.
  h.admit("c", 100);
  EXPECT_EQ(h.update("b", 250), Keys{"c"});
  EXPECT_EQ(h.update("b", 301), Keys{"b"});
  EXPECT_EQ(h.policy().bytes(), 0u);
}

TEST(LruPolicyTest, ObjectLargerThanCapacityEvictsItself) {
  Harness h(std::make_unique<LruPolicy>(100));
  h.admit("a", 60);
  EXPECT_EQ(h.admit("big", 101), (Keys{"a", "big"}));
  EXPECT_EQ(h.policy().size(), 0u);
}

TEST(S3FifoPolicyTest, NewObjectsEnterTheSmallQueue) {
  auto* p = new S3FifoPolicy(1000);
  Harness h{std::unique_ptr<EvictionPolicy>(p)};
  h.admit("a", 50);
  h.admit("b", 50);
  EXPECT_EQ(p->smallSize(), 2u);
  EXPECT_EQ(p->mainSize(), 0u);
}

TEST(S3FifoPolicyTest, OneHitWondersLeaveWhileHitObjectsMoveToMain) {
  auto* p = new S3FifoPolicy(1000);  // small queue: 100 bytes
  Harness h{std::unique_ptr<EvictionPolicy>(p)};
  for (int i = 0; i < 10; ++i) h.admit("k" + std::to_string(i), 100);  // 1000 bytes: full
  h.access("k0");                                                     // hit while in small
  // k0 is the oldest; it was hit, so it moves to main; k1 (never hit) is the victim.
  EXPECT_EQ(h.admit("new", 100), Keys{"k1"});
  EXPECT_TRUE(h.has("k0"));
  EXPECT_EQ(p->mainSize(), 1u);
  EXPECT_TRUE(p->inGhost("k1"));
}

TEST(S3FifoPolicyTest, GhostHitGoesStraightToMain) {
  auto* p = new S3FifoPolicy(1000);
  Harness h{std::unique_ptr<EvictionPolicy>(p)};
  for (int i = 0; i < 10; ++i) h.admit("k" + std::to_string(i), 100);
  EXPECT_EQ(h.admit("x", 100), Keys{"k0"});
  ASSERT_TRUE(p->inGhost("k0"));
  const std::size_t main_before = p->mainSize();
  h.admit("k0", 100);  // it comes back: main, not small
  EXPECT_EQ(p->mainSize(), main_before + 1);
  EXPECT_FALSE(p->inGhost("k0"));
}

TEST(S3FifoPolicyTest, MainReinsertsObjectsThatWereHit) {
  auto* p = new S3FifoPolicy(1000);  // small queue: 100 bytes
  Harness h{std::unique_ptr<EvictionPolicy>(p)};
  for (int i = 0; i < 18; ++i) {
    h.admit("m" + std::to_string(i), 50);
    h.access("m" + std::to_string(i));
  }
  h.admit("s1", 50);
  h.admit("s2", 50);  // 1000 bytes, all in the small queue
  // The overflow moves every hit object (m0..m17) to main; s1 (never hit) is the victim.
  EXPECT_EQ(h.admit("x", 50), Keys{"s1"});
  EXPECT_EQ(p->mainSize(), 18u);
  h.access("s2");
  h.access("x");
  h.access("m0");  // m0 is main's oldest, but was hit since it got there
  // s2 and x move to main, the small queue drops under its share, so main evicts: m0 is
  // reinserted (its counter goes down) and m1, the next oldest, leaves.
  EXPECT_EQ(h.admit("y", 50), Keys{"m1"});
  EXPECT_TRUE(h.has("m0"));
  EXPECT_EQ(p->bytes(), 1000u);
}

// The property that makes S3-FIFO worth having: a scan of one-time keys does not flush the
// popular set, which LRU loses entirely.
TEST(S3FifoPolicyTest, ScanResistantWhereLruIsNot) {
  auto run = [](std::unique_ptr<EvictionPolicy> policy) {
    Harness h(std::move(policy));
    for (int round = 0; round < 3; ++round)
      for (int i = 0; i < 50; ++i) h.request("hot" + std::to_string(i), 10);  // 500 bytes
    for (int i = 0; i < 200; ++i) h.request("scan" + std::to_string(i), 10);  // 2000 bytes
    int hits = 0;
    for (int i = 0; i < 50; ++i) hits += h.request("hot" + std::to_string(i), 10) ? 1 : 0;
    return hits;
  };
  EXPECT_EQ(run(std::make_unique<LruPolicy>(1000)), 0);
  EXPECT_EQ(run(std::make_unique<S3FifoPolicy>(1000)), 50);
}

TEST(S3FifoPolicyTest, RemoveAndUpdateKeepTheAccountsRight) {
  auto* p = new S3FifoPolicy(1000);
  Harness h{std::unique_ptr<EvictionPolicy>(p)};
  h.admit("a", 100);
  h.admit("b", 200);
  EXPECT_EQ(h.update("a", 300), Keys{});
  EXPECT_EQ(p->bytes(), 500u);
  h.remove("b");
  EXPECT_EQ(p->bytes(), 300u);
  EXPECT_FALSE(p->inGhost("b"));  // an explicit removal is not an eviction
  // "a" was hit (the update), so it moves to main; the new giant, never hit, leaves at once.
  EXPECT_EQ(h.admit("huge", 2000), Keys{"huge"});
  EXPECT_TRUE(h.has("a"));
  EXPECT_EQ(p->bytes(), 300u);
  EXPECT_EQ(p->mainSize(), 1u);
}

TEST(S3FifoPolicyTest, GhostStaysBoundedUnderAScan) {
  auto* p = new S3FifoPolicy(1000);
  Harness h{std::unique_ptr<EvictionPolicy>(p)};
  for (int i = 0; i < 10000; ++i) h.request("scan" + std::to_string(i), 10);
  EXPECT_LE(p->bytes(), 1000u);
  // Only the most recent ghosts are remembered: the first keys of the scan are long gone.
  EXPECT_FALSE(p->inGhost("scan0"));
  EXPECT_TRUE(p->inGhost("scan9899"));
}

TEST(EvictionKindTest, FactoryAndNames) {
  EXPECT_EQ(toString(EvictionKind::Lru), "lru");
  EXPECT_EQ(toString(EvictionKind::S3Fifo), "s3fifo");
  EXPECT_NE(dynamic_cast<LruPolicy*>(makeEvictionPolicy(EvictionKind::Lru, 10).get()), nullptr);
  EXPECT_NE(dynamic_cast<S3FifoPolicy*>(makeEvictionPolicy(EvictionKind::S3Fifo, 10).get()),
            nullptr);
}

}  // namespace
}  // namespace portico::cache
