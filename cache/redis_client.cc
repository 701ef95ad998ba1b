#include "cache/redis_client.h"

// The only file that includes hiredis (style.md G7).
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <cassert>
#include <charconv>
#include <deque>
#include <limits>
#include <map>
#include <random>

#include "conf/redis_url.h"
#include "proxy/core/header_map.h"
#include "proxy/core/uv_util.h"

namespace portico::cache {

namespace {

constexpr std::uint64_t kNoDeadline = std::numeric_limits<std::uint64_t>::max();

bool isIpLiteral(const std::string& host) {
  unsigned char buf[16];
  return uv_inet_pton(AF_INET, host.c_str(), buf) == 0 ||
         uv_inet_pton(AF_INET6, host.c_str(), buf) == 0;
}

RedisReply failure(RedisStatus status, std::string why) {
  RedisReply r;
  r.status = status;
  r.value = std::move(why);
  return r;
}

RedisReply fromHiredis(const redisReply* r) {
  RedisReply out;
  out.status = RedisStatus::Ok;
  switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
      out.value.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.status = RedisStatus::Error;
      out.value.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.integer = r->integer;
      break;
    case REDIS_REPLY_NIL:
      out.status = RedisStatus::Nil;
      break;
    case REDIS_REPLY_ARRAY:
      out.array.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i) {
        const redisReply* e = r->element[i];
        if (e->type == REDIS_REPLY_ARRAY) {
          return failure(RedisStatus::Error, "nested array replies are not supported");
        }
        if (e->type == REDIS_REPLY_INTEGER) {
          out.array.push_back(std::to_string(e->integer));
        } else if (e->type == REDIS_REPLY_NIL) {
          out.array.emplace_back();
        } else {
          out.array.emplace_back(e->str, e->len);
        }
      }
      break;
    default:
      return failure(RedisStatus::Error, "unknown reply type");
  }
  return out;
}

}  // namespace

const char* toString(RedisStatus status) {
  switch (status) {
    case RedisStatus::Ok: return "ok";
    case RedisStatus::Nil: return "nil";
    case RedisStatus::Error: return "error";
    case RedisStatus::Timeout: return "timeout";
    case RedisStatus::Disconnected: return "disconnected";
  }
  return "?";
}

std::optional<RedisOptions> parseRedisUrl(std::string_view url, std::string& error) {
  std::optional<conf::RedisUrl> u = conf::parseRedisUrl(url, error);
  if (!u) return std::nullopt;
  RedisOptions o;
  o.host = std::move(u->host);
  o.port = u->port;
  o.db = u->db;
  o.password = std::move(u->password);
  return o;
}

// ------------------------------------------------------------------------------------------
// Re-entrancy rule (style.md G5): the C callbacks hiredis calls (replies, connect, loop hooks,
// reply builders) only record: they queue completions, update state and arm timers. They never
// run user code and never free a context. User callbacks run from Impl::deliver(), the last
// statement of every entry point from libuv (poll, timers), where hiredis is not on the stack.
// Hence a user callback may destroy the client at any time, and every redisAsyncFree() we call
// is synchronous (hiredis defers it only when called from inside its own callbacks).

using MessageHandler = std::function<void(std::string_view)>;

class RedisClient::Impl {
 public:
  class Link;

  Impl(uv_loop_t* loop, RedisOptions options);
  ~Impl();
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  void command(std::vector<std::string> argv, RedisCallback cb);
  void subscribe(std::string channel, MessageHandler on_message);
  bool connected() const;
  const RedisClient::Stats& stats() const { return stats_; }

  // For Link.
  uv_loop_t* loop() const { return loop_; }
  const RedisOptions& options() const { return options_; }
  RedisClient::Stats& mutableStats() { return stats_; }
  bool shuttingDown() const { return shutting_down_; }
  std::uint64_t random(std::uint64_t lo, std::uint64_t hi) {
    return std::uniform_int_distribution<std::uint64_t>(lo, hi)(rng_);
  }
  std::vector<std::string> channels() const {
    std::vector<std::string> out;
    for (const auto& entry : subscriptions_) out.push_back(entry.first);
    return out;
  }

  // Queues a command's completion for deliver(). While the client is being destroyed the
  // callback is dropped instead (destroyed, never called).
  void finish(RedisCallback cb, RedisReply reply) {
    if (shutting_down_) return;
    if (reply.status == RedisStatus::Timeout) ++stats_.timeouts;
    if (reply.status == RedisStatus::Error || reply.status == RedisStatus::Disconnected) {
      ++stats_.errors;
    }
    completions_.push_back(Completion{std::move(cb), std::move(reply), {}, {}});
    scheduleFlush();
  }

  void message(std::string channel, std::string payload) {
    if (shutting_down_) return;
    completions_.push_back(Completion{{}, {}, std::move(channel), std::move(payload)});
    scheduleFlush();
  }

  // Runs the queued callbacks. Callers return right after: a callback may destroy the client.
  // Completions queued by the callbacks themselves wait for a later loop turn.
  void deliver();

 private:
  struct Completion {
    RedisCallback cb;  // a command's completion when set,
    RedisReply reply;
    std::string channel;  // else a pub/sub message
    std::string message;
  };

  // An idle handle, not a 0 ms timer: libuv 1.44 runs a 0 ms timer started from a timer
  // callback in the same pass, so a callback that re-issues a failing command would starve I/O.
  // Idle callbacks run once per loop iteration, after which the loop polls again.
  void scheduleFlush() {
    if (uv_is_active(reinterpret_cast<uv_handle_t*>(flush_)) == 0) {
      uv_idle_start(flush_, [](uv_idle_t* h) {
        if (auto* self = static_cast<Impl*>(h->data)) self->deliver();
      });
    }
  }

  uv_loop_t* loop_;
  RedisOptions options_;
  RedisClient::Stats stats_;
  bool shutting_down_ = false;
  bool* destroyed_ = nullptr;  // points into deliver()'s frame while it runs callbacks
  std::deque<Completion> completions_;
  uv_idle_t* flush_;  // "a later loop turn" for completions queued outside I/O
  std::minstd_rand rng_;
  std::map<std::string, std::vector<std::shared_ptr<MessageHandler>>> subscriptions_;
  std::unique_ptr<Link> commands_;
  std::unique_ptr<Link> pubsub_;
};

// One hiredis connection and its state machine (the table in the header).
class RedisClient::Impl::Link {
 public:
  enum class Role { Commands, PubSub };
  enum class State { Down, Connecting, Up };

  Link(Impl& impl, Role role);
  ~Link();
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  State state() const { return state_; }
  bool started() const { return started_; }
  // The first connection attempt; later ones come from the retry timer.
  void start() {
    if (!started_) startConnect();
  }
  // Up only. Queues `argv` behind what is in flight; `cb` gets the reply or the failure.
  void send(const std::vector<std::string>& argv, RedisCallback cb);
  // PubSub link, Up only: SUBSCRIBE `channels` (becomeUp() does it for all channels).
  void subscribe(const std::vector<std::string>& channels);

 private:
  struct Pending {
    enum class Kind { User, Handshake } kind;
    RedisCallback cb;
    std::uint64_t deadline;  // loop time, ms
    bool timed_out;          // completed with Timeout; hiredis still owes its callback
    Link* link;
  };
  struct Resolve {
    uv_getaddrinfo_t req;
    Link* link;  // nullptr once cancelled
  };

  // libuv / hiredis entry points.
  static void onPoll(uv_poll_t* handle, int status, int events);
  static void onResolved(uv_getaddrinfo_t* req, int status, addrinfo* res);
  static void onConnect(const redisAsyncContext* ac, int status);
  static void onReply(redisAsyncContext* ac, void* reply, void* privdata);
  static void onPush(redisAsyncContext* ac, void* reply, void* privdata);
  static void evAddRead(void* p) { static_cast<Link*>(p)->watch(UV_READABLE, true); }
  static void evDelRead(void* p) { static_cast<Link*>(p)->watch(UV_READABLE, false); }
  static void evAddWrite(void* p) { static_cast<Link*>(p)->watch(UV_WRITABLE, true); }
  static void evDelWrite(void* p) { static_cast<Link*>(p)->watch(UV_WRITABLE, false); }
  static void evCleanup(void* p) { static_cast<Link*>(p)->contextGone(); }
  static void* guardString(const redisReadTask* t, char* s, std::size_t n);
  static void* guardArray(const redisReadTask* t, int elements);
  static void* guardInteger(const redisReadTask* t, long long v);
  static void* guardNil(const redisReadTask* t);

  void startConnect();
  void resolve(const std::string& host);
  void cancelResolve();
  void connectTo(const std::string& ip);
  void handleIo(int status, int events);
  void becomeUp();
  std::unique_ptr<Pending> queue(const std::vector<std::string>& argv,
                                 std::unique_ptr<Pending> p);
  void answered(Pending* raw, const redisReply* r, const redisAsyncContext* ac);
  void pushed(const redisReply* r);
  bool admit(const redisReadTask* t, int type, std::string_view text, long long elements);
  void watch(int flag, bool on);
  void drop(std::string reason);
  void contextGone();
  void enterDown();
  void armDeadline();
  void onDeadline();
  void proven();
  std::uint64_t deadlineFromNow() const;
  RedisReply lostReply(const redisAsyncContext* ac);

  Impl& impl_;
  const Role role_;
  State state_ = State::Down;
  bool started_ = false;
  bool ever_up_ = false;
  redisAsyncContext* ac_ = nullptr;
  uv_poll_t* poll_ = nullptr;  // closeAndDelete'd when hiredis lets go of the fd
  int events_ = 0;             // what hiredis asked to watch
  Resolve* resolving_ = nullptr;
  redisReplyObjectFunctions* parser_ = nullptr;   // hiredis's own reply builders
  redisReplyObjectFunctions guard_fns_{};         // ours: admit(), then parser_
  std::deque<std::unique_ptr<Pending>> pending_;  // registered with hiredis, in reply order
  std::size_t unconfirmed_ = 0;                   // SUBSCRIBE acks still expected
  std::uint64_t subscribe_deadline_ = kNoDeadline;
  bool connect_ok_ = false;    // hiredis saw the TCP connect complete; becomeUp() follows
  bool push_shape_ = false;    // the reply being parsed is a pub/sub push
  bool blamed_ = false;        // a command already got Error for this connection's failure
  std::string deferred_drop_;  // a drop requested from inside a hiredis callback
  std::string drop_reason_;    // why we freed the context ourselves
  std::string guard_error_;    // why the reply guard rejected the stream
  std::uint64_t backoff_ms_;
  std::size_t failed_attempts_ = 0;  // since the last connection that answered
  core::Timer phase_timer_;     // Connecting: connect timeout; Down: retry
  core::Timer deadline_timer_;  // Up: the oldest command's deadline, SUBSCRIBE acks
};

// ---- Impl ----------------------------------------------------------------------------------

RedisClient::Impl::Impl(uv_loop_t* loop, RedisOptions options)
    : loop_(loop),
      options_(std::move(options)),
      flush_(new uv_idle_t),
      rng_(static_cast<std::minstd_rand::result_type>(
          uv_hrtime() ^ reinterpret_cast<std::uintptr_t>(this))) {
  uv_idle_init(loop_, flush_);
  flush_->data = this;
  options_.backoff_min_ms = std::max<std::uint64_t>(options_.backoff_min_ms, 1);
  options_.backoff_max_ms = std::max(options_.backoff_max_ms, options_.backoff_min_ms);
  commands_ = std::make_unique<Link>(*this, Link::Role::Commands);
  pubsub_ = std::make_unique<Link>(*this, Link::Role::PubSub);
  commands_->start();
}

RedisClient::Impl::~Impl() {
  shutting_down_ = true;
  if (destroyed_ != nullptr) *destroyed_ = true;
  pubsub_.reset();  // frees the contexts; finish() drops their callbacks
  commands_.reset();
  completions_.clear();
  uv_idle_stop(flush_);
  core::closeAndDelete(flush_);
}

void RedisClient::Impl::command(std::vector<std::string> argv, RedisCallback cb) {
  ++stats_.commands;
  if (argv.empty()) return finish(std::move(cb), failure(RedisStatus::Error, "empty command"));
  // hiredis keeps the callbacks of these outside the reply queue and calls them more than
  // once: they belong to the pub/sub connection (subscribe()).
  for (const char* special : {"SUBSCRIBE", "PSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE",
                              "MONITOR"}) {
    if (core::iequals(argv.front(), special)) {
      return finish(std::move(cb), failure(RedisStatus::Error,
                                           argv.front() + " is not allowed: use subscribe()"));
    }
  }
  if (commands_->state() != Link::State::Up) {
    return finish(std::move(cb),
                  failure(RedisStatus::Disconnected, "not connected to redis at " +
                                                         options_.host + ":" +
                                                         std::to_string(options_.port)));
  }
  commands_->send(argv, std::move(cb));
}

void RedisClient::Impl::subscribe(std::string channel, MessageHandler on_message) {
  auto& handlers = subscriptions_[channel];
  handlers.push_back(std::make_shared<MessageHandler>(std::move(on_message)));
  if (handlers.size() > 1) return;  // the channel is subscribed already (or will be)
  if (!pubsub_->started()) return pubsub_->start();
  if (pubsub_->state() == Link::State::Up) pubsub_->subscribe({channel});
  // Down or Connecting: becomeUp() subscribes every channel.
}

bool RedisClient::Impl::connected() const { return commands_->state() == Link::State::Up; }

void RedisClient::Impl::deliver() {
  if (destroyed_ != nullptr) return;  // cannot nest (user code never calls it); be safe
  uv_idle_stop(flush_);
  std::deque<Completion> batch;
  batch.swap(completions_);
  bool destroyed = false;
  destroyed_ = &destroyed;
  for (auto& c : batch) {
    if (c.cb) {
      c.cb(std::move(c.reply));
      if (destroyed) return;
      continue;
    }
    const auto it = subscriptions_.find(c.channel);
    if (it == subscriptions_.end()) continue;
    const auto handlers = it->second;  // a handler may subscribe (and grow the vector)
    for (const auto& h : handlers) {
      (*h)(c.message);
      if (destroyed) return;
    }
  }
  destroyed_ = nullptr;
  if (!completions_.empty()) scheduleFlush();
}

// ---- Link ----------------------------------------------------------------------------------

RedisClient::Impl::Link::Link(Impl& impl, Role role)
    : impl_(impl),
      role_(role),
      backoff_ms_(impl.options().backoff_min_ms),
      phase_timer_(impl.loop()),
      deadline_timer_(impl.loop()) {}

RedisClient::Impl::Link::~Link() {
  cancelResolve();
  drop("client destroyed");  // synchronous; the client is shutting down, nothing is retried
  assert(pending_.empty());
}

std::uint64_t RedisClient::Impl::Link::deadlineFromNow() const {
  const auto timeout = impl_.options().command_timeout_ms;
  return timeout == 0 ? kNoDeadline : uv_now(impl_.loop()) + timeout;
}

void RedisClient::Impl::Link::startConnect() {
  started_ = true;
  state_ = State::Connecting;
  connect_ok_ = blamed_ = false;
  drop_reason_.clear();
  guard_error_.clear();
  deferred_drop_.clear();
  if (const auto t = impl_.options().connect_timeout_ms; t > 0) {
    phase_timer_.start(t, [this] {
      if (state_ != State::Connecting) return;
      cancelResolve();
      if (ac_ != nullptr) {
        drop("connect timed out");
      } else {
        enterDown();
      }
    });
  }
  const std::string& host = impl_.options().host;
  if (isIpLiteral(host)) {
    connectTo(host);
  } else {
    resolve(host);
  }
}

// redisAsyncConnect() resolves names with a blocking getaddrinfo(): resolve on libuv's
// threadpool first and hand hiredis an address.
void RedisClient::Impl::Link::resolve(const std::string& host) {
  auto* r = new Resolve{};
  r->link = this;
  r->req.data = r;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  if (uv_getaddrinfo(impl_.loop(), &r->req, &Link::onResolved, host.c_str(), nullptr, &hints) !=
      0) {
    delete r;
    return enterDown();
  }
  resolving_ = r;
}

void RedisClient::Impl::Link::onResolved(uv_getaddrinfo_t* req, int status, addrinfo* res) {
  auto* r = static_cast<Resolve*>(req->data);
  Link* self = r->link;
  delete r;
  std::vector<std::string> ips;
  for (addrinfo* ai = status == 0 ? res : nullptr; ai != nullptr; ai = ai->ai_next) {
    char ip[64] = {};
    if (ai->ai_family == AF_INET) {
      uv_ip4_name(reinterpret_cast<const sockaddr_in*>(ai->ai_addr), ip, sizeof ip);
    } else if (ai->ai_family == AF_INET6) {
      uv_ip6_name(reinterpret_cast<const sockaddr_in6*>(ai->ai_addr), ip, sizeof ip);
    }
    if (ip[0] != 0) ips.emplace_back(ip);
  }
  uv_freeaddrinfo(res);
  if (self == nullptr) return;  // cancelled: the link gave up on this attempt or is gone
  self->resolving_ = nullptr;
  if (ips.empty()) return self->enterDown();
  // Consecutive failed attempts walk through the addresses ("localhost" may give ::1 first
  // while the server listens on 127.0.0.1 only).
  self->connectTo(ips[self->failed_attempts_ % ips.size()]);
}

void RedisClient::Impl::Link::cancelResolve() {
  if (resolving_ == nullptr) return;
  resolving_->link = nullptr;  // onResolved still runs (ECANCELED or late) and frees it
  uv_cancel(reinterpret_cast<uv_req_t*>(&resolving_->req));
  resolving_ = nullptr;
}

void RedisClient::Impl::Link::connectTo(const std::string& ip) {
  redisAsyncContext* ac = redisAsyncConnect(ip.c_str(), impl_.options().port);
  if (ac == nullptr) return enterDown();
  if (ac->err != 0) {
    redisAsyncFree(ac);  // no hooks attached yet: nothing calls back
    return enterDown();
  }
  auto* poll = new uv_poll_t;
  if (uv_poll_init(impl_.loop(), poll, ac->c.fd) != 0) {
    delete poll;  // never initialized: no close needed
    redisAsyncFree(ac);
    return enterDown();
  }
  poll->data = this;
  poll_ = poll;
  ac_ = ac;
  events_ = 0;
  ac->data = this;
  ac->ev.data = this;
  ac->ev.addRead = &Link::evAddRead;
  ac->ev.delRead = &Link::evDelRead;
  ac->ev.addWrite = &Link::evAddWrite;
  ac->ev.delWrite = &Link::evDelWrite;
  ac->ev.cleanup = &Link::evCleanup;
  // The reply guard: hiredis's builders, behind admit().
  parser_ = ac->c.reader->fn;
  guard_fns_ = *parser_;
  guard_fns_.createString = &Link::guardString;
  guard_fns_.createArray = &Link::guardArray;
  guard_fns_.createInteger = &Link::guardInteger;
  guard_fns_.createNil = &Link::guardNil;
  ac->c.reader->fn = &guard_fns_;
  ac->c.reader->privdata = this;
  redisEnableKeepAlive(&ac->c);  // an idle pub/sub connection still notices a dead peer
  // Watches for writability: the non-blocking connect's completion.
  redisAsyncSetConnectCallback(ac, &Link::onConnect);
}

void RedisClient::Impl::Link::watch(int flag, bool on) {
  events_ = on ? (events_ | flag) : (events_ & ~flag);
  if (poll_ == nullptr) return;
  if (events_ != 0) {
    uv_poll_start(poll_, events_, &Link::onPoll);
  } else {
    uv_poll_stop(poll_);
  }
}

void RedisClient::Impl::Link::onPoll(uv_poll_t* handle, int status, int events) {
  if (auto* self = static_cast<Link*>(handle->data)) self->handleIo(status, events);
}

void RedisClient::Impl::Link::handleIo(int status, int events) {
  // On POLLERR libuv passes a negative status (and stops the handle); hiredis 0.14's adapter
  // ignores it. Run what hiredis was waiting for so it reads the socket error itself (as
  // hiredis >= 1.0's adapter does), then make sure the connection is gone.
  const int ev = status < 0 ? events_ : events;
  if (ac_ != nullptr && (ev & UV_READABLE)) redisAsyncHandleRead(ac_);
  if (ac_ != nullptr && (ev & UV_WRITABLE)) redisAsyncHandleWrite(ac_);
  if (ac_ != nullptr && status < 0) drop(std::string("socket error: ") + uv_strerror(status));
  if (ac_ != nullptr && connect_ok_ && state_ == State::Connecting) becomeUp();
  if (ac_ != nullptr && !deferred_drop_.empty()) {
    std::string why;
    why.swap(deferred_drop_);
    drop(std::move(why));
  }
  impl_.deliver();  // last: a callback may destroy the client and this link
}

void RedisClient::Impl::Link::onConnect(const redisAsyncContext* ac, int status) {
  // On failure hiredis frees the context right after this returns: contextGone() follows.
  if (status == REDIS_OK) static_cast<Link*>(ac->data)->connect_ok_ = true;
}

void RedisClient::Impl::Link::becomeUp() {
  state_ = State::Up;
  connect_ok_ = false;
  phase_timer_.stop();
  if (ever_up_) ++impl_.mutableStats().reconnects;
  ever_up_ = true;
  const auto& o = impl_.options();
  auto handshake = [this](std::vector<std::string> argv) {
    auto p = std::make_unique<Pending>(
        Pending{Pending::Kind::Handshake, {}, deadlineFromNow(), false, this});
    if (queue(argv, std::move(p))) deferred_drop_ = "cannot send " + argv.front();
  };
  if (!o.password.empty()) handshake({"AUTH", o.password});
  if (role_ == Role::Commands && o.db != 0) handshake({"SELECT", std::to_string(o.db)});
  if (role_ == Role::PubSub) subscribe(impl_.channels());
}

// Registers `p` with hiredis. Returns nullptr, or `p` back when hiredis refused the command
// (the context is going away): then nothing will call back for it.
std::unique_ptr<RedisClient::Impl::Link::Pending> RedisClient::Impl::Link::queue(
    const std::vector<std::string>& argv, std::unique_ptr<Pending> p) {
  std::vector<const char*> ptrs;
  std::vector<std::size_t> lens;
  ptrs.reserve(argv.size());
  lens.reserve(argv.size());
  for (const auto& a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  Pending* raw = p.get();
  pending_.push_back(std::move(p));
  if (redisAsyncCommandArgv(ac_, &Link::onReply, raw, static_cast<int>(argv.size()), ptrs.data(),
                            lens.data()) != REDIS_OK) {
    p = std::move(pending_.back());
    pending_.pop_back();
    return p;
  }
  if (!deadline_timer_.active()) armDeadline();
  return nullptr;
}

void RedisClient::Impl::Link::send(const std::vector<std::string>& argv, RedisCallback cb) {
  auto p = std::make_unique<Pending>(
      Pending{Pending::Kind::User, std::move(cb), deadlineFromNow(), false, this});
  if (auto refused = queue(argv, std::move(p))) {
    impl_.finish(std::move(refused->cb),
                 failure(RedisStatus::Disconnected, "the connection is going away"));
  }
}

void RedisClient::Impl::Link::subscribe(const std::vector<std::string>& channels) {
  if (channels.empty() || ac_ == nullptr) return;
  std::vector<const char*> ptrs{"SUBSCRIBE"};
  std::vector<std::size_t> lens{9};
  for (const auto& c : channels) {
    ptrs.push_back(c.data());
    lens.push_back(c.size());
  }
  // The callback lives in hiredis's channel table, called for every message and once with a
  // null reply when the context is freed: its privdata is this link, not a per-call object.
  if (redisAsyncCommandArgv(ac_, &Link::onPush, this, static_cast<int>(ptrs.size()),
                            ptrs.data(), lens.data()) != REDIS_OK) {
    deferred_drop_ = "cannot send SUBSCRIBE";
    return;
  }
  unconfirmed_ += channels.size();
  subscribe_deadline_ = deadlineFromNow();
  armDeadline();
}

void RedisClient::Impl::Link::onReply(redisAsyncContext* ac, void* reply, void* privdata) {
  auto* p = static_cast<Pending*>(privdata);
  p->link->answered(p, static_cast<const redisReply*>(reply), ac);
}

// Every command registered with hiredis comes back here exactly once: with its reply, or with
// a null reply when the context goes away (hiredis 0.14 __redisAsyncFree).
void RedisClient::Impl::Link::answered(Pending* raw, const redisReply* r,
                                       const redisAsyncContext* ac) {
  auto it = std::find_if(pending_.begin(), pending_.end(),
                         [raw](const auto& p) { return p.get() == raw; });
  if (it == pending_.end()) return;  // cannot happen: hiredis calls back once per command
  std::unique_ptr<Pending> p = std::move(*it);
  pending_.erase(it);
  RedisReply reply = r != nullptr ? fromHiredis(r) : lostReply(ac);
  if (p->kind == Pending::Kind::Handshake) {
    if (r != nullptr && reply.status != RedisStatus::Ok && deferred_drop_.empty()) {
      deferred_drop_ = "handshake failed: " + reply.value;
    }
  } else if (!p->timed_out) {
    impl_.finish(std::move(p->cb), std::move(reply));
  }
  if (r != nullptr) {
    if (deferred_drop_.empty()) proven();
    armDeadline();
  }
}

RedisReply RedisClient::Impl::Link::lostReply(const redisAsyncContext* ac) {
  std::string why = !guard_error_.empty()  ? "protocol error: " + guard_error_
                    : !drop_reason_.empty() ? drop_reason_
                    : ac->err != 0          ? std::string(ac->errstr)
                                            : std::string("connection lost");
  const bool protocol = !guard_error_.empty() || ac->err == REDIS_ERR_PROTOCOL ||
                        ac->err == REDIS_ERR_OTHER || ac->err == REDIS_ERR_OOM;
  // The oldest command is the one whose reply broke the stream: it gets Error; the others
  // were merely in flight on the same connection.
  const bool blame = protocol && !blamed_;
  blamed_ = blamed_ || protocol;
  return failure(blame ? RedisStatus::Error : RedisStatus::Disconnected, std::move(why));
}

void RedisClient::Impl::Link::onPush(redisAsyncContext*, void* reply, void* privdata) {
  if (reply != nullptr) static_cast<Link*>(privdata)->pushed(static_cast<const redisReply*>(reply));
}

void RedisClient::Impl::Link::pushed(const redisReply* r) {
  // admit() checked the shape: an array of >= 3 elements whose first two are bulk strings, the
  // first being "message" or "subscribe".
  const std::string_view kind(r->element[0]->str, r->element[0]->len);
  if (core::iequals(kind, "subscribe")) {
    if (unconfirmed_ > 0) --unconfirmed_;
    proven();
    armDeadline();
    return;
  }
  const redisReply* payload = r->element[2];
  if (payload->type != REDIS_REPLY_STRING) return;
  impl_.message(std::string(r->element[1]->str, r->element[1]->len),
                std::string(payload->str, payload->len));
}

// The connection answered: the server works, so the next failure starts from backoff_min.
void RedisClient::Impl::Link::proven() {
  backoff_ms_ = impl_.options().backoff_min_ms;
  failed_attempts_ = 0;
}

// hiredis 0.14 assert()s (aborting the process) on a reply no command is waiting for and on a
// pub/sub push that is not [bulk, bulk, ...]. Refusing to build such a reply makes the reader
// fail instead: hiredis then drops the connection like any protocol error.
bool RedisClient::Impl::Link::admit(const redisReadTask* t, int type, std::string_view text,
                                    long long elements) {
  if (!guard_error_.empty()) return false;
  auto reject = [this](const char* why) {
    guard_error_ = why;
    return false;
  };
  if (t->parent == nullptr) {  // a new top-level reply
    push_shape_ = false;
    if (!pending_.empty()) return true;  // answers the oldest command
    if (ac_ != nullptr && (ac_->c.flags & REDIS_SUBSCRIBED) != 0) {
      if (type != REDIS_REPLY_ARRAY || elements < 3) return reject("malformed pub/sub message");
      push_shape_ = true;
      return true;
    }
    return reject("a reply no command is waiting for");
  }
  if (push_shape_ && t->parent->parent == nullptr && t->idx < 2) {
    if (type != REDIS_REPLY_STRING) return reject("malformed pub/sub message");
    if (t->idx == 0 && !core::iequals(text, "message") && !core::iequals(text, "subscribe")) {
      return reject("unexpected pub/sub message kind");
    }
  }
  return true;
}

void* RedisClient::Impl::Link::guardString(const redisReadTask* t, char* s, std::size_t n) {
  auto* self = static_cast<Link*>(t->privdata);
  return self->admit(t, t->type, {s, n}, 0) ? self->parser_->createString(t, s, n) : nullptr;
}
void* RedisClient::Impl::Link::guardArray(const redisReadTask* t, int elements) {
  auto* self = static_cast<Link*>(t->privdata);
  return self->admit(t, REDIS_REPLY_ARRAY, {}, elements) ? self->parser_->createArray(t, elements)
                                                         : nullptr;
}
void* RedisClient::Impl::Link::guardInteger(const redisReadTask* t, long long v) {
  auto* self = static_cast<Link*>(t->privdata);
  return self->admit(t, REDIS_REPLY_INTEGER, {}, 0) ? self->parser_->createInteger(t, v) : nullptr;
}
void* RedisClient::Impl::Link::guardNil(const redisReadTask* t) {
  auto* self = static_cast<Link*>(t->privdata);
  return self->admit(t, REDIS_REPLY_NIL, {}, 0) ? self->parser_->createNil(t) : nullptr;
}

// Frees the context now (never from inside a hiredis callback, so redisAsyncFree() is
// synchronous): every pending command gets its null-reply callback, then contextGone().
void RedisClient::Impl::Link::drop(std::string reason) {
  if (ac_ == nullptr) return;
  drop_reason_ = std::move(reason);
  redisAsyncFree(ac_);
  assert(ac_ == nullptr);
}

// hiredis's cleanup hook: the context is being freed (its null-reply callbacks already ran).
void RedisClient::Impl::Link::contextGone() {
  core::closeAndDelete(poll_);  // stops watching the fd before hiredis closes it
  poll_ = nullptr;
  ac_ = nullptr;
  events_ = 0;
  enterDown();
}

void RedisClient::Impl::Link::enterDown() {
  assert(pending_.empty());
  state_ = State::Down;
  connect_ok_ = false;
  unconfirmed_ = 0;
  deadline_timer_.stop();
  phase_timer_.stop();
  if (impl_.shuttingDown()) return;
  ++failed_attempts_;
  const std::uint64_t b = backoff_ms_;
  backoff_ms_ = std::min(impl_.options().backoff_max_ms, b * 2);
  phase_timer_.start(impl_.random(b / 2, b), [this] { startConnect(); });
}

void RedisClient::Impl::Link::armDeadline() {
  std::uint64_t next = pending_.empty() ? kNoDeadline : pending_.front()->deadline;
  if (unconfirmed_ > 0) next = std::min(next, subscribe_deadline_);
  if (next == kNoDeadline || ac_ == nullptr) return deadline_timer_.stop();
  const std::uint64_t now = uv_now(impl_.loop());
  deadline_timer_.start(next > now ? next - now : 0, [this] { onDeadline(); });
}

// Replies come back in order, and every command has the same timeout, so only the oldest
// command's deadline can be the next to expire: one timer per connection covers them all.
void RedisClient::Impl::Link::onDeadline() {
  const std::uint64_t now = uv_now(impl_.loop());
  const std::string after = " within " + std::to_string(impl_.options().command_timeout_ms) + " ms";
  if (!pending_.empty() && pending_.front()->deadline <= now) {
    Pending& p = *pending_.front();
    if (p.kind == Pending::Kind::User) {
      p.timed_out = true;
      impl_.finish(std::move(p.cb), failure(RedisStatus::Timeout, "no reply" + after));
    }
    // The server is stuck or the link is dead; replies can no longer be trusted to arrive.
    drop("an earlier command got no reply" + after);
  } else if (unconfirmed_ > 0 && subscribe_deadline_ <= now) {
    drop("SUBSCRIBE not acknowledged" + after);
  } else {
    armDeadline();
  }
  impl_.deliver();  // last: a callback may destroy the client
}

// ---- RedisClient ---------------------------------------------------------------------------

RedisClient::RedisClient(uv_loop_t* loop, RedisOptions options)
    : impl_(std::make_unique<Impl>(loop, std::move(options))) {}

RedisClient::~RedisClient() = default;

void RedisClient::command(std::vector<std::string> argv, RedisCallback cb) {
  impl_->command(std::move(argv), std::move(cb));
}

bool RedisClient::connected() const { return impl_->connected(); }

RedisStats RedisClient::stats() const { return impl_->stats(); }

void RedisClient::subscribe(std::string channel,
                            std::function<void(std::string_view message)> on_message) {
  impl_->subscribe(std::move(channel), std::move(on_message));
}

}  // namespace portico::cache
