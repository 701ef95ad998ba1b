// Component tests for the `http` origin and the CurlMulti bridge: a real uv_loop_t pumped by
// hand against the scripted fixture upstream (tests/support/fixture_server.h) on 127.0.0.1:0.
#include "origin/http_origin.h"

#include <gtest/gtest.h>
#include <uv.h>

#include <chrono>
#include <memory>
#include <string>

#include "origin/curl_multi.h"
#include "origin/origin_factory.h"
#include "tests/component/origin/origin_test_sink.h"
#include "tests/support/fixture_server.h"
#include "tests/support/loop_pump.h"

namespace portico::origin {
namespace {

using namespace std::chrono_literals;
using test::FixtureRequest;
using test::FixtureResponder;
using test::FixtureServer;
using test::pumpTurns;
using test::pumpUntil;
using test_support::makeRequest;
using test_support::RecordingSink;
using test_support::startFetch;

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

class HttpOriginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    multi_ = std::make_unique<CurlMulti>(&loop_);
  }
  void TearDown() override {
    multi_.reset();
    test::expectLoopClean(&loop_);
  }

  HttpOriginClient client(const std::string& endpoint, std::uint64_t timeout_ms = 5000) {
    conf::HttpOrigin cfg;
    cfg.endpoint = endpoint;
    cfg.timeout_ms = timeout_ms;
    cfg.connect_timeout_ms = 2000;
    return HttpOriginClient(*multi_, cfg);
  }
  bool waitDone(const RecordingSink& sink) {
    return pumpUntil(&loop_, [&] { return sink.dones > 0; });
  }

  uv_loop_t loop_{};
  std::unique_ptr<CurlMulti> multi_;
};

TEST_F(HttpOriginTest, GetStreamsChunkedBodyAndJoinsBasePath) {
  FixtureServer s1([](const FixtureRequest&, FixtureResponder& r) {
    r.head(200, {{"Content-Type", "text/plain"}, {"Transfer-Encoding", "chunked"}});
    r.chunk("hello ");
    r.sleep(20ms);
    r.chunk("streamed ");
    r.sleep(20ms);
    r.chunk("world");
    r.endChunks();
  });
  auto c = client(s1.url() + "/base/");
  RecordingSink sink;
  auto f = startFetch(c, makeRequest("GET", "/a/b", "x=1&y=%20"), sink);
  EXPECT_EQ(sink.callbacks(), 0);
  ASSERT_TRUE(waitDone(sink));
  EXPECT_EQ(sink.sync_calls, 0);
  EXPECT_EQ(sink.violations, 0);
  EXPECT_EQ(sink.error, FetchError::None);
  EXPECT_EQ(sink.heads, 1);
  EXPECT_EQ(sink.head.status, 200);
  EXPECT_EQ(sink.header("Content-Type"), "text/plain");
  EXPECT_FALSE(sink.head.headers.has("Transfer-Encoding"));
  EXPECT_EQ(sink.body, "hello streamed world");
  auto reqs = s1.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "GET");
  EXPECT_EQ(reqs[0].target, "/base/a/b?x=1&y=%20");
  EXPECT_EQ(reqs[0].headers.get("Host").value_or(""), "127.0.0.1:" + std::to_string(s1.port()));
}

// The request target reaches the upstream byte for byte: dot segments, escapes in either
// case, an empty or absent query, with and without a base path. (libcurl 7.88's URL API
// lowercases the escapes of a path set as a part, so the http origin hands libcurl the text.)
TEST_F(HttpOriginTest, TargetIsForwardedExactly) {
  FixtureServer s1([](const FixtureRequest& req, FixtureResponder& r) { r.reply(200, {}, req.target); });
  struct Case {
    std::string endpoint, path, query, target;
  };
  const Case cases[] = {
      {s1.url(), "/a/../b/./c", "", "/a/../b/./c"},
      {s1.url(), "/%2e%2e/x%20y/%7E/%2F%c3%A9", "q=%41&r=%7E", "/%2e%2e/x%20y/%7E/%2F%c3%A9?q=%41&r=%7E"},
      {s1.url() + "/", "/", "", "/"},
      {s1.url() + "/base//", "/p", "a=1", "/base/p?a=1"},
      {s1.url() + "/base", "/p", "", "/base/p"},
  };
  for (const Case& c : cases) {
    auto origin = client(c.endpoint);
    RecordingSink sink;
    auto f = startFetch(origin, makeRequest("GET", c.path, c.query), sink);
    ASSERT_TRUE(waitDone(sink)) << c.endpoint << c.path;
    EXPECT_EQ(sink.error, FetchError::None);
    EXPECT_EQ(sink.body, c.target) << c.endpoint << " " << c.path << "?" << c.query;
  }
}

TEST_F(HttpOriginTest, HeadGetsHeadersAndNoBody) {
  FixtureServer s1([](const FixtureRequest&, FixtureResponder& r) {
    r.reply(200, {{"Content-Length", "11"}, {"ETag", "\"v1\""}}, "hello world");
  });
  auto c = client(s1.url());
  RecordingSink sink;
  auto f = startFetch(c, makeRequest("HEAD", "/x"), sink);
  ASSERT_TRUE(waitDone(sink));
  EXPECT_EQ(sink.error, FetchError::None);
  EXPECT_EQ(sink.head.status, 200);
  EXPECT_EQ(sink.header("Content-Length"), "11");
  EXPECT_EQ(sink.header("ETag"), "\"v1\"");
  EXPECT_EQ(sink.body_calls, 0);
  ASSERT_EQ(s1.requestCount(), 1u);
  EXPECT_EQ(s1.requests()[0].method, "HEAD");
}

// Sends `parts` one at a time, pumping the loop between them.
void streamBody(uv_loop_t* loop, Fetch& f, const std::vector<std::string>& parts) {
  for (const auto& p : parts) {
    f.sendBody(p);
    pumpTurns(loop, 3);
  }
  f.endBody();
}

TEST_F(HttpOriginTest, PostWithLengthHintStreamsBodyIntact) {
  FixtureServer s1([](const FixtureRequest& req, FixtureResponder& r) {
    r.reply(201, {}, "got " + std::to_string(req.body.size()));
  });
  auto c = client(s1.url());
  std::vector<std::string> parts = {pattern(1000), "middle", pattern(70000)};
  std::string all = parts[0] + parts[1] + parts[2];
  auto req = makeRequest("POST", "/upload");
  req.head.headers.add("Content-Type", "application/octet-stream");
  req.head.headers.add("Content-Length", std::to_string(all.size()));
  req.has_body = true;
  req.body_length_hint = all.size();
  RecordingSink sink;
  auto f = startFetch(c, std::move(req), sink);
  streamBody(&loop_, *f, parts);
  ASSERT_TRUE(waitDone(sink));
  EXPECT_EQ(sink.error, FetchError::None);
  EXPECT_EQ(sink.head.status, 201);
  EXPECT_EQ(sink.body, "got " + std::to_string(all.size()));
  EXPECT_GE(sink.drained, 1);
  EXPECT_EQ(f->pendingBodyBytes(), 0u);
  auto reqs = s1.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_FALSE(reqs[0].chunked);
  EXPECT_EQ(reqs[0].headers.count("Content-Length"), 1u);
  EXPECT_EQ(reqs[0].headers.get("Content-Length").value_or(""), std::to_string(all.size()));
  EXPECT_EQ(reqs[0].headers.get("Content-Type").value_or(""), "application/octet-stream");
  EXPECT_FALSE(reqs[0].headers.has("Expect"));
  EXPECT_EQ(reqs[0].body, all);
}

TEST_F(HttpOriginTest, PutWithoutLengthIsChunkedAndIntact) {
  FixtureServer s1([](const FixtureRequest&, FixtureResponder& r) { r.reply(204); });
  auto c = client(s1.url());
  std::vector<std::string> parts = {"first,", pattern(40000), ",last"};
  auto req = makeRequest("PUT", "/doc");
  req.has_body = true;  // no length hint: chunked upstream
  RecordingSink sink;
  auto f = startFetch(c, std::move(req), sink);
  EXPECT_EQ(f->pendingBodyBytes(), 0u);
  f->sendBody(parts[0]);
  EXPECT_EQ(f->pendingBodyBytes(), parts[0].size());
  streamBody(&loop_, *f, {parts[1], parts[2]});
  ASSERT_TRUE(waitDone(sink));
  EXPECT_EQ(sink.error, FetchError::None);
  EXPECT_EQ(sink.head.status, 204);
  auto reqs = s1.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "PUT");
  EXPECT_TRUE(reqs[0].chunked);
  EXPECT_FALSE(reqs[0].headers.has("Content-Type"));  // libcurl's form default suppressed
  EXPECT_FALSE(reqs[0].headers.has("Expect"));
  EXPECT_EQ(reqs[0].body, parts[0] + parts[1] + parts[2]);
}

TEST_F(HttpOriginTest, CustomMethodsWithoutBody) {
  FixtureServer s1(
      [](const FixtureRequest& req, FixtureResponder& r) { r.reply(200, {}, req.method); });
  auto c = client(s1.url());
  for (std::string m : {"DELETE", "OPTIONS", "PURGE"}) {
    RecordingSink sink;
    auto f = startFetch(c, makeRequest(m, "/thing"), sink);
    ASSERT_TRUE(waitDone(sink)) << m;
    EXPECT_EQ(sink.error, FetchError::None) << m;
    EXPECT_EQ(sink.body, m);
  }
  auto reqs = s1.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[2].method, "PURGE");
  EXPECT_FALSE(reqs[2].headers.has("Content-Length"));
}

TEST_F(HttpOriginTest, HopByHopStrippedBothWaysAndForwardingHeadersAdded) {
  FixtureServer s1([](const FixtureRequest&, FixtureResponder& r) {
    r.head(200, {{"Connection", "X-Resp-Hop"},
                 {"X-Resp-Hop", "1"},
                 {"Keep-Alive", "timeout=5"},
                 {"Proxy-Connection", "keep-alive"},
                 {"Trailer", "X-Sum"},
                 {"X-End", "kept"},
                 {"Transfer-Encoding", "chunked"}});
    r.chunk("body");
    r.endChunks();
  });
  auto c = client(s1.url());
  auto req = makeRequest("GET", "/h");
  auto& h = req.head.headers;
  h.add("Connection", "keep-alive, X-Client-Hop");
  h.add("X-Client-Hop", "secret");
  h.add("Keep-Alive", "timeout=5");
  h.add("Proxy-Connection", "keep-alive");
  h.add("TE", "trailers");
  h.add("Trailer", "X-Sum");
  h.add("Upgrade", "websocket");
  h.add("X-Forwarded-For", "10.0.0.1");
  h.add("Via", "1.0 edge");
  h.add("User-Agent", "test-agent/1.0");
  h.add("X-Empty", "");
  h.add("Expect", "100-continue");
  RecordingSink sink;
  auto f = startFetch(c, std::move(req), sink);
  ASSERT_TRUE(waitDone(sink));
  EXPECT_EQ(sink.error, FetchError::None);
  EXPECT_EQ(sink.body, "body");
  for (const char* name : {"Connection", "X-Resp-Hop", "Keep-Alive", "Proxy-Connection", "Trailer",
                           "Transfer-Encoding"}) {
    EXPECT_FALSE(sink.head.headers.has(name)) << name;
  }
  EXPECT_EQ(sink.header("X-End"), "kept");

  auto reqs = s1.requests();
  ASSERT_EQ(reqs.size(), 1u);
  const auto& got = reqs[0].headers;
  for (const char* name : {"X-Client-Hop", "Keep-Alive", "Proxy-Connection", "TE", "Trailer",
                           "Upgrade", "Expect", "Accept", "Transfer-Encoding"}) {
    EXPECT_FALSE(got.has(name)) << name;
  }
  EXPECT_EQ(got.get("Host").value_or(""), "127.0.0.1:" + std::to_string(s1.port()));
  EXPECT_EQ(got.get("X-Forwarded-Host").value_or(""), "client.example");
  EXPECT_EQ(got.get("X-Forwarded-For").value_or(""), "10.0.0.1, 192.0.2.7");
  EXPECT_EQ(got.get("X-Forwarded-Proto").value_or(""), "http");
  EXPECT_EQ(got.get("Via").value_or(""), "1.0 edge, 1.1 portico");
  EXPECT_EQ(got.get("User-Agent").value_or(""), "test-agent/1.0");
  EXPECT_TRUE(got.has("X-Empty"));
  EXPECT_EQ(got.get("X-Empty").value_or("?"), "");
}

TEST_F(HttpOriginTest, KeepAliveReusesOneConnection) {
  FixtureServer s1(
      [](const FixtureRequest& req, FixtureResponder& r) { r.reply(200, {}, req.target); });
  auto c = client(s1.url());
  for (const char* path : {"/one", "/two", "/three"}) {
    RecordingSink sink;
    auto f = startFetch(c, makeRequest("GET", path), sink);
    ASSERT_TRUE(waitDone(sink));
    EXPECT_EQ(sink.error, FetchError::None);
    EXPECT_EQ(sink.body, path);
  }
  auto reqs = s1.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(s1.connectionCount(), 1u);
  EXPECT_EQ(reqs[2].connection, reqs[0].connection);
  EXPECT_EQ(reqs[2].index_on_connection, 2u);
}

TEST_F(HttpOriginTest, KeepAliveReusesTheParkedWatcher) {
  // Between transfers libcurl stops watching the pooled connection's fd; the next transfer
  // watches it again through the parked handle, not a new one.
  FixtureServer s1(
      [](const FixtureRequest& req, FixtureResponder& r) { r.reply(200, {}, req.target); });
  auto c = client(s1.url());
  for (int i = 0; i < 5; ++i) {
    RecordingSink sink;
    auto f = startFetch(c, makeRequest("GET", "/n" + std::to_string(i)), sink);
    ASSERT_TRUE(waitDone(sink));
    EXPECT_EQ(sink.error, FetchError::None);
    EXPECT_EQ(sink.body, "/n" + std::to_string(i));
    EXPECT_EQ(multi_->watchedSockets(), 0u) << i;
    EXPECT_LE(multi_->parkedWatchers(), 1u) << i;
    // Still registered with epoll (no epoll_ctl between transfers on a pooled connection).
    EXPECT_EQ(multi_->dormantWatchers(), 1u) << i;
  }
  EXPECT_EQ(s1.connectionCount(), 1u);
}

TEST_F(HttpOriginTest, PooledConnectionIsWatchedWithoutRestartingItsHandle) {
  // The answer comes late, so every transfer waits for it through the loop (libcurl asks to
  // watch the pooled fd for reading again). The parked handle already watches exactly that:
  // it is not restarted (uv_poll_start would take the fd out of epoll and put it back).
  FixtureServer s1([](const FixtureRequest& req, FixtureResponder& r) {
    r.sleep(20ms);
    r.reply(200, {}, req.target);
  });
  auto c = client(s1.url());
  std::size_t starts_after_first = 0;
  for (int i = 0; i < 4; ++i) {
    RecordingSink sink;
    auto f = startFetch(c, makeRequest("GET", "/late" + std::to_string(i)), sink);
    ASSERT_TRUE(waitDone(sink));
    EXPECT_EQ(sink.error, FetchError::None);
    EXPECT_EQ(sink.body, "/late" + std::to_string(i));
    if (i == 0) starts_after_first = multi_->pollStarts();
  }
  EXPECT_GE(starts_after_first, 1u);
  EXPECT_EQ(multi_->pollStarts(), starts_after_first);
  EXPECT_EQ(s1.connectionCount(), 1u);
}

TEST_F(HttpOriginTest, DormantWatcherStopsWhenTheIdleConnectionCloses) {
  // The upstream closes the connection after its answer without announcing it: the pooled
  // connection's fd turns readable (EOF) while nobody watches it. Its dormant handle is stopped
  // on that event (no busy loop on a level-triggered fd), and the next request still works.
  FixtureServer s1([](const FixtureRequest& req, FixtureResponder& r) {
    r.reply(200, {}, req.target);
    r.close();
  });
  auto c = client(s1.url());
  RecordingSink first;
  auto f1 = startFetch(c, makeRequest("GET", "/first"), first);
  ASSERT_TRUE(waitDone(first));
  EXPECT_EQ(first.error, FetchError::None);
  EXPECT_TRUE(pumpUntil(&loop_, [&] { return multi_->dormantWatchers() == 0; }, 2s));
  EXPECT_EQ(multi_->watchedSockets(), 0u);
  RecordingSink second;
  auto f2 = startFetch(c, makeRequest("GET", "/second"), second);
  ASSERT_TRUE(waitDone(second));
  EXPECT_EQ(second.error, FetchError::None);
  EXPECT_EQ(second.body, "/second");
}

TEST_F(HttpOriginTest, ParkedWatcherServesANewSocketOnTheSameFdNumber) {
  // The upstream closes every connection (announced): libcurl closes its fd and the next
  // connection's socket usually gets the same number, whose parked handle then watches the new
  // socket.
  FixtureServer s1([](const FixtureRequest& req, FixtureResponder& r) {
    r.reply(200, {{"Connection", "close"}}, req.target);
    r.close();
  });
  auto c = client(s1.url());
  for (int i = 0; i < 5; ++i) {
    RecordingSink sink;
    auto f = startFetch(c, makeRequest("GET", "/c" + std::to_string(i)), sink);
    ASSERT_TRUE(waitDone(sink));
    EXPECT_EQ(sink.error, FetchError::None) << i;
    EXPECT_EQ(sink.body, "/c" + std::to_string(i));
    EXPECT_LE(multi_->parkedWatchers(), CurlMulti::kMaxParkedWatchers);
  }
  EXPECT_EQ(s1.connectionCount(), 5u);
}

TEST_F(HttpOriginTest, IdempotentRequestRetriedWhenTheReusedConnectionWasClosed) {
  // The upstream closes every connection right after its answer without saying so: libcurl
  // may reuse a connection that is already gone. GETs are sent again on a new connection, so
  // every one succeeds.
  FixtureServer s1([](const FixtureRequest& req, FixtureResponder& r) {
    r.reply(200, {}, req.target);
    r.close();
  });
  auto c = client(s1.url());
  for (int i = 0; i < 8; ++i) {
    RecordingSink sink;
    auto f = startFetch(c, makeRequest("GET", "/r" + std::to_string(i)), sink);
    ASSERT_TRUE(waitDone(sink));
    EXPECT_EQ(sink.error, FetchError::None) << i;
    EXPECT_EQ(sink.body, "/r" + std::to_string(i));
  }
  EXPECT_EQ(s1.requests().size(), 8u);  // each request reached the upstream exactly once
}

TEST_F(HttpOriginTest, ConnectionRefusedIsConnectFailed) {
  test_support::RefusingPort refusing;
  auto c = client(refusing.url());
  RecordingSink sink;
  auto f = startFetch(c, makeRequest("GET", "/"), sink);
  EXPECT_EQ(sink.callbacks(), 0);
  ASSERT_TRUE(waitDone(sink));
  EXPECT_EQ(sink.error, FetchError::ConnectFailed);
  EXPECT_EQ(sink.heads, 0);
  EXPECT_EQ(sink.sync_calls, 0);
}

TEST_F(HttpOriginTest, NoAnswerIsTimeout) {
  FixtureServer s1([](const FixtureRequest&, FixtureResponder& r) { r.hold(); });
  auto c = client(s1.url(), /*timeout_ms=*/200);
  RecordingSink sink;
  auto f = startFetch(c, makeRequest("GET", "/slow"), sink);
  ASSERT_TRUE(waitDone(sink));
  EXPECT_EQ(sink.error, FetchError::Timeout);
  EXPECT_EQ(sink.heads, 0);
}

TEST_F(HttpOriginTest, GarbageAndTruncatedAnswersAreBadResponse) {
  FixtureServer s1([](const FixtureRequest& req, FixtureResponder& r) {
    if (req.target == "/garbage") {
      r.write("this is not http\r\n\r\n");
    } else if (req.target == "/empty") {
      // close without a byte
    } else {
      r.head(200, {{"Content-Length", "100"}});
      r.write("only ten b");
    }
    r.close();
  });
  auto c = client(s1.url());
  for (const char* path : {"/garbage", "/empty"}) {
    RecordingSink sink;
    auto f = startFetch(c, makeRequest("GET", path), sink);
    ASSERT_TRUE(waitDone(sink)) << path;
    EXPECT_EQ(sink.error, FetchError::BadResponse) << path;
    EXPECT_EQ(sink.heads, 0) << path;
  }
  RecordingSink sink;
  auto f = startFetch(c, makeRequest("GET", "/truncated"), sink);
  ASSERT_TRUE(waitDone(sink));
  EXPECT_EQ(sink.heads, 1);  // a head, then the body cut short
  EXPECT_EQ(sink.error, FetchError::BadResponse);
  EXPECT_EQ(sink.body, "only ten b");
  EXPECT_EQ(sink.violations, 0);
}

TEST_F(HttpOriginTest, InterimResponsesAreDiscarded) {
  FixtureServer s1([](const FixtureRequest&, FixtureResponder& r) {
    r.write("HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n");
    r.reply(200, {{"X-Final", "yes"}}, "final");
  });
  auto c = client(s1.url());
  RecordingSink sink;
  auto f = startFetch(c, makeRequest("GET", "/hints"), sink);
  ASSERT_TRUE(waitDone(sink));
  EXPECT_EQ(sink.error, FetchError::None);
  EXPECT_EQ(sink.heads, 1);
  EXPECT_EQ(sink.head.status, 200);
  EXPECT_FALSE(sink.head.headers.has("Link"));
  EXPECT_EQ(sink.header("X-Final"), "yes");
  EXPECT_EQ(sink.body, "final");
}

// only_response_fields: the listed fields (any case) reach the sink, folded continuation
// included; other fields and their continuations are dropped; a malformed field is still a bad
// response.
TEST_F(HttpOriginTest, OnlyTheAskedResponseFieldsAreKept) {
  FixtureServer s1([](const FixtureRequest& req, FixtureResponder& r) {
    if (req.target == "/bad") {
      r.write("HTTP/1.1 200 OK\r\nX-Drop: 1\r\nno colon here\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    r.write("HTTP/1.1 200 OK\r\nX-Drop: a\r\n  folded drop\r\nx-keep: b\r\n  folded keep\r\n"
            "Content-Length: 2\r\nX-Other: c\r\n\r\nok");
  });
  static constexpr std::string_view kFields[] = {"X-Keep"};
  for (const char* path : {"/good", "/bad"}) {
    HttpFetchSpec spec;
    spec.url = s1.url() + path;
    spec.only_response_fields = kFields;
    RecordingSink sink;
    auto f = startHttpFetch(*multi_, std::move(spec), sink);
    ASSERT_TRUE(waitDone(sink)) << path;
    if (std::string_view(path) == "/bad") {
      EXPECT_EQ(sink.error, FetchError::BadResponse);
      EXPECT_EQ(sink.heads, 0);
      continue;
    }
    EXPECT_EQ(sink.error, FetchError::None);
    ASSERT_EQ(sink.heads, 1);
    EXPECT_EQ(sink.head.status, 200);
    ASSERT_EQ(sink.head.headers.size(), 1u);
    EXPECT_EQ(sink.header("X-Keep"), "b folded keep");
    EXPECT_EQ(sink.body, "ok");  // the framing (Content-Length) is libcurl's, kept or not
  }
}

TEST_F(HttpOriginTest, NoRedirectFollowingAndNoDecompression) {
  const std::string not_really_gzip("\x1f\x8b\x00\xff binary \x01\x02", 14);
  FixtureServer s1([&](const FixtureRequest& req, FixtureResponder& r) {
    if (req.target == "/moved") {
      r.reply(302, {{"Location", "/elsewhere"}}, "moved");
    } else {
      r.reply(200, {{"Content-Encoding", "gzip"}}, not_really_gzip);
    }
  });
  auto c = client(s1.url());
  RecordingSink moved;
  auto f1 = startFetch(c, makeRequest("GET", "/moved"), moved);
  ASSERT_TRUE(waitDone(moved));
  EXPECT_EQ(moved.head.status, 302);
  EXPECT_EQ(moved.header("Location"), "/elsewhere");
  EXPECT_EQ(s1.requestCount(), 1u);

  RecordingSink gz;
  auto req = makeRequest("GET", "/gz");
  req.head.headers.add("Accept-Encoding", "gzip");
  auto f2 = startFetch(c, std::move(req), gz);
  ASSERT_TRUE(waitDone(gz));
  EXPECT_EQ(gz.error, FetchError::None);
  EXPECT_EQ(gz.header("Content-Encoding"), "gzip");
  EXPECT_EQ(gz.body, not_really_gzip);  // passed through untouched
  EXPECT_EQ(s1.requests()[1].headers.get("Accept-Encoding").value_or(""), "gzip");
}

// Pumps the loop until `d` of wall time has passed: used only to show that something does NOT
// happen (an origin timeout while the client side is the slow one).
void pumpFor(uv_loop_t* loop, std::chrono::milliseconds d) {
  const auto until = std::chrono::steady_clock::now() + d;
  pumpUntil(
      loop, [&] { return std::chrono::steady_clock::now() >= until; }, d + 1s);
}

TEST_F(HttpOriginTest, BackpressureStopsDeliveryUntilResume) {
  const std::string big = pattern(4u << 20);
  FixtureServer s1([&](const FixtureRequest&, FixtureResponder& r) { r.reply(200, {}, big); });
  auto c = client(s1.url(), /*timeout_ms=*/200);
  RecordingSink sink;
  sink.on_body = [](std::string_view) { return false; };  // pause after every piece
  auto f = startFetch(c, makeRequest("GET", "/big"), sink);
  ASSERT_TRUE(pumpUntil(&loop_, [&] { return sink.body_calls > 0; }));
  const std::size_t delivered = sink.body.size();
  const int calls = sink.body_calls;
  // Paused for longer than the origin timeout: nothing more may arrive, and the time the
  // client side takes is not an origin timeout.
  pumpFor(&loop_, 600ms);
  EXPECT_EQ(sink.body_calls, calls);
  EXPECT_EQ(sink.body.size(), delivered);
  EXPECT_LE(delivered, 256u * 1024);
  EXPECT_EQ(sink.dones, 0);

  // Resume piece by piece for a while (resume() from outside callbacks)...
  for (int i = 0; i < 5; ++i) {
    int before = sink.body_calls;
    sink.paused = false;
    f->resume();
    ASSERT_TRUE(pumpUntil(&loop_, [&] { return sink.body_calls > before || sink.dones > 0; }));
    EXPECT_EQ(sink.body_calls, before + 1);
  }
  // ...then take everything, resuming from inside the body callback too.
  sink.on_body = [](std::string_view) { return true; };
  sink.paused = false;
  f->resume();
  ASSERT_TRUE(waitDone(sink));
  EXPECT_EQ(sink.error, FetchError::None);
  EXPECT_EQ(sink.violations, 0);
  EXPECT_EQ(sink.body.size(), big.size());
  EXPECT_TRUE(sink.body == big);
  EXPECT_LE(sink.max_chunk, 64u * 1024);
}

TEST_F(HttpOriginTest, StalledBodyTimesOutAfterTheHead) {
  FixtureServer s1([](const FixtureRequest&, FixtureResponder& r) {
    r.head(200, {{"Transfer-Encoding", "chunked"}});
    r.chunk("start");
    r.hold();
  });
  auto c = client(s1.url(), /*timeout_ms=*/200);
  RecordingSink sink;
  auto f = startFetch(c, makeRequest("GET", "/stall"), sink);
  ASSERT_TRUE(waitDone(sink));
  EXPECT_EQ(sink.heads, 1);
  EXPECT_EQ(sink.body, "start");
  EXPECT_EQ(sink.error, FetchError::Timeout);
  EXPECT_EQ(sink.violations, 0);
}

TEST_F(HttpOriginTest, WaitingForTheClientBodyIsNotAnOriginTimeout) {
  FixtureServer s1(
      [](const FixtureRequest& req, FixtureResponder& r) { r.reply(200, {}, req.body); });
  auto c = client(s1.url(), /*timeout_ms=*/200);
  auto req = makeRequest("POST", "/slow-client");
  req.has_body = true;
  RecordingSink sink;
  auto f = startFetch(c, std::move(req), sink);
  f->sendBody("early,");
  pumpFor(&loop_, 600ms);  // the client takes its time with the rest
  EXPECT_EQ(sink.dones, 0);
  f->sendBody("late");
  f->endBody();
  ASSERT_TRUE(waitDone(sink));
  EXPECT_EQ(sink.error, FetchError::None);
  EXPECT_EQ(sink.body, "early,late");
}

TEST_F(HttpOriginTest, ResumeFromInsideBodyCallback) {
  const std::string big = pattern(1u << 20);
  FixtureServer s1([&](const FixtureRequest&, FixtureResponder& r) { r.reply(200, {}, big); });
  auto c = client(s1.url());
  RecordingSink sink;
  FetchPtr f;
  sink.check_pause = false;
  sink.on_body = [&](std::string_view) {
    // Asks for more, then refuses this time: the resume() wins and delivery goes on (in the
    // same dispatch loop, never recursively).
    f->resume();
    return false;
  };
  f = startFetch(c, makeRequest("GET", "/big"), sink);
  ASSERT_TRUE(waitDone(sink));
  EXPECT_EQ(sink.error, FetchError::None);
  EXPECT_EQ(sink.violations, 0);
  EXPECT_TRUE(sink.body == big);
}

TEST_F(HttpOriginTest, DestroyingFetchMidTransferCancelsSilently) {
  FixtureServer s1([](const FixtureRequest&, FixtureResponder& r) {
    r.head(200, {{"Transfer-Encoding", "chunked"}});
    r.chunk("first");
    r.sleep(2000ms);  // cut short by the client going away or the server stopping
    r.chunk("never seen");
    r.endChunks();
  });
  auto c = client(s1.url());
  RecordingSink sink;
  auto f = startFetch(c, makeRequest("GET", "/long"), sink);
  ASSERT_TRUE(pumpUntil(&loop_, [&] { return sink.body_calls > 0; }));
  const int before = sink.callbacks();
  f.reset();
  EXPECT_EQ(sink.callbacks(), before);  // nothing during the destructor
  pumpTurns(&loop_, 50);
  EXPECT_EQ(sink.callbacks(), before);  // nor after
  EXPECT_EQ(sink.dones, 0);
  EXPECT_EQ(multi_->activeTransfers(), 0u);
}

TEST_F(HttpOriginTest, DestroyingFetchBeforeAnythingAndFromCallbacks) {
  FixtureServer s1([](const FixtureRequest&, FixtureResponder& r) {
    r.head(200, {{"Transfer-Encoding", "chunked"}});
    r.chunk("a");
    r.sleep(10ms);
    r.chunk("b");
    r.endChunks();
  });
  auto c = client(s1.url());
  {
    RecordingSink sink;
    auto f = startFetch(c, makeRequest("GET", "/x"), sink);
    f.reset();  // before the first loop turn
    pumpTurns(&loop_, 20);
    EXPECT_EQ(sink.callbacks(), 0);
  }
  {
    RecordingSink sink;
    FetchPtr f;
    sink.on_head = [&] { f.reset(); };
    f = startFetch(c, makeRequest("GET", "/y"), sink);
    ASSERT_TRUE(pumpUntil(&loop_, [&] { return sink.heads > 0; }));
    pumpTurns(&loop_, 20);
    EXPECT_EQ(sink.callbacks(), 1);
  }
  {
    RecordingSink sink;
    FetchPtr f;
    sink.on_body = [&](std::string_view) {
      f.reset();
      return true;
    };
    f = startFetch(c, makeRequest("GET", "/z"), sink);
    ASSERT_TRUE(pumpUntil(&loop_, [&] { return sink.body_calls > 0; }));
    pumpTurns(&loop_, 20);
    EXPECT_EQ(sink.body_calls, 1);
    EXPECT_EQ(sink.dones, 0);
  }
  EXPECT_EQ(multi_->activeTransfers(), 0u);
}

TEST_F(HttpOriginTest, MultiDestroyedBeforeItsFetches) {
  FixtureServer s1([](const FixtureRequest&, FixtureResponder& r) { r.hold(); });
  auto c = client(s1.url());
  RecordingSink sink;
  auto f = startFetch(c, makeRequest("GET", "/held"), sink);
  ASSERT_TRUE(pumpUntil(&loop_, [&] { return s1.requestCount() > 0; }));
  multi_.reset();  // the worker shuts down: the fetch is told nothing
  pumpTurns(&loop_, 5);
  f->resume();  // still safe to use and destroy
  f.reset();
  EXPECT_EQ(sink.callbacks(), 0);
}

TEST(HttpOriginHelpers, JoinUrl) {
  EXPECT_EQ(joinUrl("http://h:1", "/a", ""), "http://h:1/a");
  EXPECT_EQ(joinUrl("http://h:1/", "/a", "x=1"), "http://h:1/a?x=1");
  EXPECT_EQ(joinUrl("http://h:1/base/", "/a/b", ""), "http://h:1/base/a/b");
  EXPECT_EQ(joinUrl("http://h:1/base", "/", ""), "http://h:1/base/");
  EXPECT_EQ(joinUrl("http://h:1/base", "a", ""), "http://h:1/base/a");
}

TEST(HttpOriginHelpers, StripHopByHopHonoursConnectionTokens) {
  core::HeaderMap h;
  h.add("Connection", "close, X-A");
  h.add("Connection", " x-b ");
  h.add("X-A", "1");
  h.add("X-B", "2");
  h.add("X-C", "3");
  h.add("Upgrade", "h2c");
  stripHopByHop(h);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.get("X-C").value_or(""), "3");
  EXPECT_TRUE(isHopByHop("transfer-encoding"));
  EXPECT_FALSE(isHopByHop("Content-Length"));
}

TEST_F(HttpOriginTest, FactoryChoosesByType) {
  conf::OriginConfig http{"web", conf::HttpOrigin{"http://127.0.0.1:1", 100, 100}};
  conf::OriginConfig lambda{"fn", conf::LambdaOrigin{"http://127.0.0.1:1", "f", 100}};
  conf::OriginConfig s3{"bucket", conf::S3Origin{}};
  OriginContext ctx{&loop_, multi_.get()};
  EXPECT_NE(dynamic_cast<HttpOriginClient*>(makeOriginClient(http, ctx).get()), nullptr);
  EXPECT_NE(makeOriginClient(lambda, ctx), nullptr);
  EXPECT_NE(makeOriginClient(s3, ctx), nullptr);
  EXPECT_EQ(makeOriginClient(http, OriginContext{&loop_, nullptr}), nullptr);
}

}  // namespace
}  // namespace portico::origin
