#include "cache/redis_cluster.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <deque>
#include <map>
#include <set>

#include "proxy/core/header_map.h"
#include "proxy/core/uv_util.h"

namespace portico::cache {

namespace {

constexpr std::array<std::uint16_t, 256> makeCrcTable() {
  std::array<std::uint16_t, 256> table{};
  for (unsigned i = 0; i < 256; ++i) {
    auto crc = static_cast<std::uint16_t>(i << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) != 0 ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021)
                                : static_cast<std::uint16_t>(crc << 1);
    }
    table[i] = crc;
  }
  return table;
}
constexpr auto kCrcTable = makeCrcTable();

bool parseInt(std::string_view s, int& out) {
  if (s.empty() || s.size() > 9) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size() && out >= 0;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    const auto at = s.find(sep);
    if (at != 0) out.push_back(s.substr(0, at));
    if (at == std::string_view::npos) break;
    s.remove_prefix(at + 1);
  }
  return out;
}

// "host:port", "[v6]:port" or "v6:port" (the last colon separates the port, as Redis writes
// it). The host may be empty ("unknown: the node you asked").
bool splitHostPort(std::string_view addr, std::string& host, int& port) {
  std::string_view h, p;
  if (!addr.empty() && addr.front() == '[') {
    const auto close = addr.find("]:");
    if (close == std::string_view::npos) return false;
    h = addr.substr(1, close - 1);
    p = addr.substr(close + 2);
  } else {
    const auto colon = addr.rfind(':');
    if (colon == std::string_view::npos) return false;
    h = addr.substr(0, colon);
    p = addr.substr(colon + 1);
  }
  if (!parseInt(p, port)) return false;
  host.assign(h);
  return true;
}

// What a RedisClient can be pointed at: an IP literal or a DNS name.
bool plausibleEndpoint(std::string_view host, int port) {
  if (host.empty() || host.size() > 253 || port < 1 || port > 65535) return false;
  return std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' ||
           c == ':';
  });
}

std::string addressOf(std::string_view host, int port) {
  return std::string(host) + ":" + std::to_string(port);
}

// Wall-clock milliseconds for the first-connect wait: uv_now() is the time of the loop's last
// turn, which is stale when the cluster is created after the loop was blocked for a while.
std::uint64_t nowMs() { return uv_hrtime() / 1000000; }

RedisReply failure(RedisStatus status, std::string why) {
  RedisReply r;
  r.status = status;
  r.value = std::move(why);
  return r;
}

// The key that picks the node, or nullopt for a command without one.
std::optional<std::string_view> keyOf(const std::vector<std::string>& argv) {
  if (argv.size() < 2) return std::nullopt;
  const std::string& name = argv.front();
  for (const char* keyless :
       {"PING", "ECHO", "PUBLISH", "INFO", "TIME", "CLUSTER", "COMMAND", "SCRIPT"}) {
    if (core::iequals(name, keyless)) return std::nullopt;
  }
  for (const char* scripted : {"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"}) {
    if (core::iequals(name, scripted)) {
      int numkeys = 0;
      if (argv.size() > 3 && parseInt(argv[2], numkeys) && numkeys > 0) return argv[3];
      return std::nullopt;
    }
  }
  return argv[1];
}

}  // namespace

std::uint16_t redisCrc16(std::string_view data) {
  std::uint16_t crc = 0;
  for (const char c : data) {
    crc = static_cast<std::uint16_t>(
        (crc << 8) ^ kCrcTable[((crc >> 8) ^ static_cast<unsigned char>(c)) & 0xff]);
  }
  return crc;
}

int redisKeySlot(std::string_view key) {
  if (const auto open = key.find('{'); open != std::string_view::npos) {
    const auto close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return redisCrc16(key) % kClusterSlots;
}

// "<id> <ip:port@cport[,hostname]> <flags> <master> <ping> <pong> <epoch> <state> <slots...>"
std::optional<std::vector<ClusterNodeEntry>> parseClusterNodes(std::string_view text,
                                                               std::string_view asked_host,
                                                               std::string& error) {
  constexpr std::size_t kMaxLines = 1000;
  std::vector<ClusterNodeEntry> out;
  const auto lines = split(text, '\n');
  if (lines.size() > kMaxLines) {
    error = "CLUSTER NODES: too many lines";
    return std::nullopt;
  }
  for (std::string_view line : lines) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    const auto f = split(line, ' ');
    if (f.size() < 8) {
      error = "CLUSTER NODES: malformed line";
      return std::nullopt;
    }
    ClusterNodeEntry e;
    e.id.assign(f[0]);
    bool skip = false;
    for (const auto flag : split(f[2], ',')) {
      if (flag == "master") e.master = true;
      if (flag == "fail" || flag == "fail?") e.failing = true;
      if (flag == "noaddr" || flag == "handshake") skip = true;
    }
    std::string_view addr = f[1];
    std::string_view hostname;
    if (const auto comma = addr.find(','); comma != std::string_view::npos) {
      hostname = addr.substr(comma + 1);
      addr = addr.substr(0, comma);
    }
    addr = addr.substr(0, addr.find('@'));
    if (!splitHostPort(addr, e.host, e.port)) {
      error = "CLUSTER NODES: bad address";
      return std::nullopt;
    }
    if (skip || e.port == 0) continue;  // no usable address (yet)
    if (e.host.empty()) e.host.assign(hostname.empty() ? asked_host : hostname);
    for (std::size_t i = 8; i < f.size(); ++i) {
      if (f[i].front() == '[') continue;  // "[slot->-id]" / "[slot-<-id]": a migration
      const auto dash = f[i].find('-');
      int lo = 0, hi = 0;
      if (!parseInt(f[i].substr(0, dash), lo) ||
          (dash != std::string_view::npos && !parseInt(f[i].substr(dash + 1), hi))) {
        error = "CLUSTER NODES: bad slot range";
        return std::nullopt;
      }
      if (dash == std::string_view::npos) hi = lo;
      if (lo > hi || hi >= kClusterSlots) {
        error = "CLUSTER NODES: slot out of range";
        return std::nullopt;
      }
      e.slots.emplace_back(lo, hi);
    }
    out.push_back(std::move(e));
  }
  return out;
}

// ------------------------------------------------------------------------------------------
// Lifetime rule: user callbacks run only from inside the node clients' callbacks (command
// replies) and the pub/sub client's message handlers, always as the last thing done there;
// RedisClient allows its destruction from inside its own callbacks, so a user callback may
// destroy the cluster. Everything the cluster does on its own (timers, refresh replies) runs no
// user code. Node clients are destroyed only when nothing is in flight on them (`inflight`
// counts every command given to the client or waiting for it), so no callback is ever dropped
// except by the cluster's destructor.

using MessageHandler = std::function<void(std::string_view)>;

class RedisCluster::Impl {
 public:
  Impl(uv_loop_t* loop, RedisOptions seed);
  ~Impl();
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  void command(std::vector<std::string> argv, RedisCallback cb);
  void subscribe(std::string channel, MessageHandler on_message);
  bool connected() const;
  RedisStats stats() const;
  RedisClusterStats clusterStats() const {
    RedisClusterStats s = cstats_;
    s.nodes = nodes_.size();
    return s;
  }
  std::string slotOwner(int slot) const {
    if (slot < 0 || slot >= kClusterSlots || slots_[slot] == nullptr) return "";
    return slots_[slot]->address;
  }

 private:
  struct Request {
    std::vector<std::string> argv;
    RedisCallback cb;
    int redirects = 0;
  };
  using RequestPtr = std::shared_ptr<Request>;
  struct Waiting {
    std::vector<std::string> argv;
    RedisCallback cb;
  };
  struct Node {
    std::string host;
    int port = 0;
    std::string address;
    std::unique_ptr<RedisClient> client;
    std::uint64_t wait_until = 0;  // nowMs(): until then, commands wait for a first connect
    std::deque<Waiting> waiting;   // in order, sent once connected (or at wait_until)
    std::size_t inflight = 0;      // given to the client or waiting, callback not yet run
    bool in_map = false;           // owns slots in the current map
  };

  Node* createNode(const std::string& host, int port);
  Node* nodeFor(const std::string& host, int port);
  Node* anyConnected() const;
  Node* route(const std::vector<std::string>& argv) const;
  void sendTo(Node* node, std::vector<std::string> argv, RedisCallback cb);
  void dispatch(RequestPtr req, Node* node, bool asking);
  void onReply(RequestPtr req, const std::string& from_host, RedisReply reply);
  void pollWaiting();
  void requestRefresh();
  void startRefresh();
  Node* refreshTarget();
  void refreshDone(const std::string& asked_host, RedisReply reply);
  void installMap(const std::vector<ClusterNodeEntry>& entries);
  void housekeeping();
  void openPubSub(const Node& node);

  static void finish(RequestPtr req, RedisReply reply) {
    RedisCallback cb = std::move(req->cb);
    cb(std::move(reply));  // may destroy the cluster
  }

  uv_loop_t* loop_;
  RedisOptions seed_;
  std::string seed_address_;
  RedisClusterStats cstats_;
  RedisStats retired_;  // counters of node clients already closed, and of the pub/sub client
  std::map<std::string, std::unique_ptr<Node>> nodes_;
  std::vector<Node*> slots_;
  bool map_known_ = false;
  bool refreshing_ = false;
  bool refresh_again_ = false;  // requested while one was in flight, or the last one failed
  std::uint64_t next_refresh_at_ = 0;
  std::uint64_t last_refresh_ok_ = 0;
  std::size_t refresh_cursor_ = 0;  // rotates the node asked when none is connected
  std::map<std::string, std::vector<std::shared_ptr<MessageHandler>>> subscriptions_;
  std::unique_ptr<RedisClient> pubsub_;
  std::string pubsub_address_;
  std::optional<std::uint64_t> pubsub_down_since_;
  core::Timer refresh_timer_;   // a rate-limited refresh
  core::Timer waiting_timer_;   // polls nodes with waiting commands for their first connect
  core::Timer housekeeping_;    // periodic refresh, pub/sub health
};

RedisCluster::Impl::Impl(uv_loop_t* loop, RedisOptions seed)
    : loop_(loop),
      seed_(std::move(seed)),
      slots_(kClusterSlots, nullptr),
      refresh_timer_(loop),
      waiting_timer_(loop),
      housekeeping_(loop) {
  seed_.db = 0;  // Redis Cluster has database 0 only (the caller rejects other values)
  // The seed is created as given (a bad host fails in RedisClient) and never closed: it is the
  // fallback for everything.
  seed_address_ = createNode(seed_.host, seed_.port)->address;
  startRefresh();
  housekeeping_.start(1000, [this] { housekeeping(); }, 1000);
}

RedisCluster::Impl::~Impl() {
  // Drops every callback (RedisClient's destructor); safe inside one of their callbacks.
  pubsub_.reset();
  nodes_.clear();
}

RedisCluster::Impl::Node* RedisCluster::Impl::createNode(const std::string& host, int port) {
  auto node = std::make_unique<Node>();
  node->host = host;
  node->port = port;
  node->address = addressOf(host, port);
  RedisOptions o = seed_;
  o.host = host;
  o.port = port;
  node->client = std::make_unique<RedisClient>(loop_, std::move(o));
  node->wait_until = nowMs() + std::max<std::uint64_t>(seed_.connect_timeout_ms, 100);
  Node* raw = node.get();
  nodes_[raw->address] = std::move(node);
  return raw;
}

// The node at host:port, created on first use; nullptr for an address no client could use or
// when kMaxNodes clients exist already.
RedisCluster::Impl::Node* RedisCluster::Impl::nodeFor(const std::string& host, int port) {
  if (!plausibleEndpoint(host, port)) return nullptr;
  if (const auto it = nodes_.find(addressOf(host, port)); it != nodes_.end()) {
    return it->second.get();
  }
  if (nodes_.size() >= kMaxNodes) return nullptr;
  return createNode(host, port);
}

// A connected master of the map, else any connected node, else nullptr.
RedisCluster::Impl::Node* RedisCluster::Impl::anyConnected() const {
  Node* fallback = nullptr;
  for (const auto& [address, node] : nodes_) {
    if (!node->client->connected()) continue;
    if (node->in_map) return node.get();
    if (fallback == nullptr) fallback = node.get();
  }
  return fallback;
}

RedisCluster::Impl::Node* RedisCluster::Impl::route(const std::vector<std::string>& argv) const {
  if (const auto key = keyOf(argv)) {
    if (Node* owner = slots_[redisKeySlot(*key)]) return owner;
  }
  // No key, no map yet, or a slot nobody owns: any node will do (it redirects if need be).
  if (Node* node = anyConnected()) return node;
  return nodes_.at(seed_address_).get();
}

void RedisCluster::Impl::command(std::vector<std::string> argv, RedisCallback cb) {
  ++cstats_.commands;
  Node* node = route(argv);
  dispatch(std::make_shared<Request>(Request{std::move(argv), std::move(cb), 0}), node, false);
}

// Every command to a node client goes through here (never calls back synchronously: the
// client defers everything, and waiting commands are only sent from the waiting timer).
void RedisCluster::Impl::sendTo(Node* node, std::vector<std::string> argv, RedisCallback cb) {
  RedisCallback counted = [node, cb = std::move(cb)](RedisReply reply) {
    --node->inflight;
    cb(std::move(reply));  // may close this node or destroy the cluster: nothing after this
  };
  ++node->inflight;
  if (node->client->connected()) node->wait_until = 0;  // it has connected: never wait again
  if (!node->waiting.empty() ||
      (!node->client->connected() && nowMs() < node->wait_until)) {
    node->waiting.push_back(Waiting{std::move(argv), std::move(counted)});
    if (!waiting_timer_.active()) waiting_timer_.start(5, [this] { pollWaiting(); }, 5);
    return;
  }
  node->client->command(std::move(argv), std::move(counted));
}

void RedisCluster::Impl::pollWaiting() {
  const std::uint64_t now = nowMs();
  bool still_waiting = false;
  for (const auto& [address, node] : nodes_) {
    if (node->waiting.empty()) continue;
    if (node->client->connected()) node->wait_until = 0;
    if (now < node->wait_until) {
      still_waiting = true;
      continue;
    }
    // Connected, or out of patience: the client sends them, or fails them with Disconnected.
    std::deque<Waiting> batch;
    batch.swap(node->waiting);
    for (auto& w : batch) node->client->command(std::move(w.argv), std::move(w.cb));
  }
  if (!still_waiting) waiting_timer_.stop();
}

void RedisCluster::Impl::dispatch(RequestPtr req, Node* node, bool asking) {
  if (asking) sendTo(node, {"ASKING"}, [](RedisReply) {});  // pipelined right before
  std::string host = node->host;
  std::vector<std::string> argv = req->argv;
  sendTo(node, std::move(argv), [this, req = std::move(req), host](RedisReply reply) {
    onReply(req, host, std::move(reply));
  });
}

void RedisCluster::Impl::onReply(RequestPtr req, const std::string& from_host, RedisReply reply) {
  if (reply.status == RedisStatus::Disconnected || reply.status == RedisStatus::Timeout) {
    requestRefresh();  // the master may have moved (failover)
    return finish(std::move(req), std::move(reply));
  }
  const std::string_view text = reply.value;
  const std::string_view kind = text.substr(0, text.find(' '));
  const bool moved = kind == "MOVED", ask = kind == "ASK";
  if (reply.status != RedisStatus::Error || (!moved && !ask)) {
    return finish(std::move(req), std::move(reply));  // incl. TRYAGAIN, CLUSTERDOWN: Error
  }
  if (++req->redirects > kMaxRedirects) {
    ++cstats_.redirect_errors;
    return finish(std::move(req),
                  failure(RedisStatus::Error,
                          "too many cluster redirections; last: " + reply.value));
  }
  // "MOVED <slot> <host:port>" / "ASK <slot> <host:port>"
  const auto f = split(text, ' ');
  int slot = -1, port = 0;
  std::string host;
  Node* target = nullptr;
  if (f.size() == 3 && parseInt(f[1], slot) && slot < kClusterSlots &&
      splitHostPort(f[2], host, port)) {
    if (host.empty()) host = from_host;  // "unknown endpoint: the node you asked"
    target = nodeFor(host, port);
  }
  if (target == nullptr) {
    ++cstats_.redirect_errors;
    if (moved) requestRefresh();
    return finish(std::move(req),
                  failure(RedisStatus::Error, "unusable cluster redirection: " + reply.value));
  }
  if (moved) {
    ++cstats_.moved;
    slots_[slot] = target;
    target->in_map = true;
    requestRefresh();
  } else {
    ++cstats_.asked;
  }
  dispatch(std::move(req), target, ask);
}

// ---- slot map ------------------------------------------------------------------------------

void RedisCluster::Impl::requestRefresh() {
  if (refreshing_) {
    refresh_again_ = true;
    return;
  }
  if (refresh_timer_.active()) return;  // one is scheduled already
  const std::uint64_t now = uv_now(loop_);
  if (now < next_refresh_at_) {
    refresh_timer_.start(next_refresh_at_ - now, [this] { startRefresh(); });
    return;
  }
  startRefresh();
}

void RedisCluster::Impl::startRefresh() {
  refresh_timer_.stop();
  refreshing_ = true;
  refresh_again_ = false;
  next_refresh_at_ = uv_now(loop_) + kRefreshGapMs;
  ++cstats_.refreshes;
  Node* node = refreshTarget();
  sendTo(node, {"CLUSTER", "NODES"}, [this, host = node->host](RedisReply reply) {
    refreshDone(host, std::move(reply));
  });
}

// The seed when connected, else any connected node, else each known node in turn.
RedisCluster::Impl::Node* RedisCluster::Impl::refreshTarget() {
  Node* seed = nodes_.at(seed_address_).get();
  if (seed->client->connected()) return seed;
  if (Node* node = anyConnected()) return node;
  auto it = nodes_.begin();
  std::advance(it, refresh_cursor_++ % nodes_.size());
  return it->second.get();
}

void RedisCluster::Impl::refreshDone(const std::string& asked_host, RedisReply reply) {
  refreshing_ = false;
  std::optional<std::vector<ClusterNodeEntry>> entries;
  std::string error;
  if (reply.status == RedisStatus::Ok) entries = parseClusterNodes(reply.value, asked_host, error);
  const bool usable = entries && std::any_of(entries->begin(), entries->end(), [](const auto& e) {
                        return e.master && !e.slots.empty();
                      });
  if (usable) {
    installMap(*entries);
    last_refresh_ok_ = uv_now(loop_);
  } else {
    ++cstats_.refresh_failures;
    ++refresh_cursor_;
    next_refresh_at_ = uv_now(loop_) + kRetryGapMs;
    if (!map_known_) refresh_again_ = true;  // keep trying until a map is known
  }
  if (refresh_again_) requestRefresh();
}

void RedisCluster::Impl::installMap(const std::vector<ClusterNodeEntry>& entries) {
  std::set<std::string> owners;
  for (const auto& e : entries) {
    if (e.master && !e.slots.empty()) owners.insert(addressOf(e.host, e.port));
  }
  std::fill(slots_.begin(), slots_.end(), nullptr);
  // Close the clients of nodes that left the map and have nothing in flight (possibly the one
  // whose callback runs now: RedisClient allows that). The seed stays.
  for (auto it = nodes_.begin(); it != nodes_.end();) {
    Node& node = *it->second;
    node.in_map = false;
    if (owners.count(node.address) == 0 && node.address != seed_address_ && node.inflight == 0) {
      const RedisStats s = node.client->stats();
      retired_.commands += s.commands;
      retired_.errors += s.errors;
      retired_.timeouts += s.timeouts;
      retired_.reconnects += s.reconnects;
      it = nodes_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& e : entries) {
    if (!e.master || e.slots.empty()) continue;
    Node* node = nodeFor(e.host, e.port);
    if (node == nullptr) continue;  // unusable address or too many nodes: MOVED tells later
    node->in_map = true;
    for (const auto& [lo, hi] : e.slots) {
      std::fill(slots_.begin() + lo, slots_.begin() + hi + 1, node);
    }
  }
  map_known_ = true;
}

void RedisCluster::Impl::housekeeping() {
  const std::uint64_t now = uv_now(loop_);
  if (now >= last_refresh_ok_ + kPeriodicRefreshMs) requestRefresh();
  if (!pubsub_) return;
  if (pubsub_->connected()) {
    pubsub_down_since_.reset();
    return;
  }
  if (!pubsub_down_since_) pubsub_down_since_ = now;
  if (now - *pubsub_down_since_ < kPubSubMoveAfterMs) return;
  Node* other = anyConnected();
  if (other == nullptr || other->address == pubsub_address_) return;
  ++cstats_.pubsub_moves;
  openPubSub(*other);
}

// ---- pub/sub -------------------------------------------------------------------------------

// A dedicated client (not the node's command client) so that moving the subscriptions is
// closing it and opening another. Its handlers hold the user's handlers by shared_ptr.
void RedisCluster::Impl::openPubSub(const Node& node) {
  if (pubsub_) {
    const RedisStats s = pubsub_->stats();
    retired_.reconnects += s.reconnects;
  }
  RedisOptions o = seed_;
  o.host = node.host;
  o.port = node.port;
  pubsub_ = std::make_unique<RedisClient>(loop_, std::move(o));
  pubsub_address_ = node.address;
  pubsub_down_since_.reset();
  for (const auto& [channel, handlers] : subscriptions_) {
    for (const auto& h : handlers) {
      pubsub_->subscribe(channel, [h](std::string_view message) { (*h)(message); });
    }
  }
}

void RedisCluster::Impl::subscribe(std::string channel, MessageHandler on_message) {
  auto handler = std::make_shared<MessageHandler>(std::move(on_message));
  subscriptions_[channel].push_back(handler);
  if (!pubsub_) {
    Node* node = anyConnected();
    return openPubSub(node != nullptr ? *node : *nodes_.at(seed_address_));
  }
  pubsub_->subscribe(std::move(channel),
                     [handler](std::string_view message) { (*handler)(message); });
}

bool RedisCluster::Impl::connected() const {
  if (!map_known_) return false;
  return std::any_of(nodes_.begin(), nodes_.end(), [](const auto& entry) {
    return entry.second->in_map && entry.second->client->connected();
  });
}

RedisStats RedisCluster::Impl::stats() const {
  RedisStats total = retired_;
  for (const auto& [address, node] : nodes_) {
    const RedisStats s = node->client->stats();
    total.commands += s.commands;
    total.errors += s.errors;
    total.timeouts += s.timeouts;
    total.reconnects += s.reconnects;
  }
  if (pubsub_) total.reconnects += pubsub_->stats().reconnects;
  return total;
}

// ---- RedisCluster --------------------------------------------------------------------------

RedisCluster::RedisCluster(uv_loop_t* loop, RedisOptions seed)
    : impl_(std::make_unique<Impl>(loop, std::move(seed))) {}

RedisCluster::~RedisCluster() = default;

void RedisCluster::command(std::vector<std::string> argv, RedisCallback cb) {
  impl_->command(std::move(argv), std::move(cb));
}

void RedisCluster::subscribe(std::string channel,
                             std::function<void(std::string_view message)> on_message) {
  impl_->subscribe(std::move(channel), std::move(on_message));
}

bool RedisCluster::connected() const { return impl_->connected(); }

RedisStats RedisCluster::stats() const { return impl_->stats(); }

RedisClusterStats RedisCluster::clusterStats() const { return impl_->clusterStats(); }

std::string RedisCluster::slotOwner(int slot) const { return impl_->slotOwner(slot); }

}  // namespace portico::cache
