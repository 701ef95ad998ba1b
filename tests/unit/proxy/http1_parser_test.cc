// Http1Parser: bytes in, events out, no sockets. The smuggling and limit cases of RFC 9112 §6.
#include "proxy/h1/http1_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace portico::proxy {
namespace {

struct Recorder : Http1ParserEvents {
  std::vector<core::RequestHead> heads;
  std::vector<RequestFraming> framings;
  std::string body;
  int completes = 0;
  void onRequestHead(core::RequestHead head, const RequestFraming& f) override {
    heads.push_back(std::move(head));
    framings.push_back(f);
  }
  void onRequestBody(std::string_view chunk) override { body.append(chunk); }
  void onRequestComplete() override { ++completes; }
};

// Feeds everything, resuming at message boundaries. Returns the error status or 0.
int feedAll(Http1Parser& p, std::string data) {
  while (!data.empty()) {
    std::size_t consumed = 0;
    auto r = p.feed(data, consumed);
    data.erase(0, consumed);
    if (r == Http1Parser::Result::Error) return p.errorStatus();
    if (r == Http1Parser::Result::MessageBoundary) p.resume();
  }
  return 0;
}

ParseLimits smallLimits() {
  ParseLimits l;
  l.max_header_bytes = 1024;
  l.max_body_bytes = 100;
  return l;
}

TEST(Http1Parser, SimpleGetAndPipelining) {
  Recorder r;
  Http1Parser p(r, smallLimits());
  EXPECT_EQ(feedAll(p, "GET /a?x=1 HTTP/1.1\r\nHost: Example.test:8080\r\n\r\n"
                       "HEAD /b HTTP/1.1\r\nHost: example.test\r\n\r\n"),
            0);
  ASSERT_EQ(r.heads.size(), 2u);
  EXPECT_EQ(r.heads[0].method, "GET");
  EXPECT_EQ(r.heads[0].path, "/a");
  EXPECT_EQ(r.heads[0].query, "x=1");
  EXPECT_EQ(r.heads[0].authority, "example.test");
  EXPECT_EQ(r.heads[1].method, "HEAD");
  EXPECT_EQ(r.completes, 2);
  EXPECT_TRUE(r.framings[0].keep_alive);
}

TEST(Http1Parser, StopsAtMessageBoundary) {
  Recorder r;
  Http1Parser p(r, smallLimits());
  std::string two = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n";
  std::size_t consumed = 0;
  EXPECT_EQ(p.feed(two, consumed), Http1Parser::Result::MessageBoundary);
  EXPECT_EQ(r.heads.size(), 1u);
  EXPECT_LT(consumed, two.size());
}

TEST(Http1Parser, ChunkedAndContentLengthBodies) {
  Recorder r;
  Http1Parser p(r, smallLimits());
  EXPECT_EQ(feedAll(p, "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
                       "PUT /v HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"),
            0);
  EXPECT_EQ(r.body, "hello worldabc");
  ASSERT_EQ(r.framings.size(), 2u);
  EXPECT_TRUE(r.framings[0].chunked);
  EXPECT_EQ(r.framings[1].content_length, 3u);
}

TEST(Http1Parser, Http10AndExpect) {
  Recorder r;
  Http1Parser p(r, smallLimits());
  EXPECT_EQ(feedAll(p, "GET / HTTP/1.0\r\n\r\n"), 0);
  EXPECT_FALSE(r.framings[0].keep_alive);
  Recorder r2;
  Http1Parser p2(r2, smallLimits());
  EXPECT_EQ(feedAll(p2, "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx"), 0);
  EXPECT_TRUE(r2.framings[0].expect_continue);
}

struct BadCase {
  const char* name;
  std::string bytes;
  int status;
};

class Http1ParserRejects : public ::testing::TestWithParam<BadCase> {};

TEST_P(Http1ParserRejects, WithStatus) {
  Recorder r;
  Http1Parser p(r, smallLimits());
  EXPECT_EQ(feedAll(p, GetParam().bytes), GetParam().status) << GetParam().name;
}

INSTANTIATE_TEST_SUITE_P(
    Smuggling, Http1ParserRejects,
    ::testing::Values(
        BadCase{"cl_and_te", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
        BadCase{"two_cl", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400},
        BadCase{"same_cl_twice", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400},
        BadCase{"cl_list", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\nabc", 400},
        BadCase{"cl_sign", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\nabc", 400},
        BadCase{"te_identity", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n", 400},
        BadCase{"te_list", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 400},
        BadCase{"te_obfuscated", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n", 400},
        BadCase{"te_twice", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
        BadCase{"space_before_colon", "GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n", 400},
        BadCase{"bad_chunk_size", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
        BadCase{"obs_fold_te", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", 400},
        BadCase{"te_http10", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
        BadCase{"chunk_data_overrun", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", 400},
        BadCase{"no_host", "GET / HTTP/1.1\r\n\r\n", 400},
        BadCase{"two_hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
        BadCase{"bad_host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
        BadCase{"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400},
        BadCase{"bare_lf_in_header", "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", 400},
        BadCase{"http2_version", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
        BadCase{"big_head", "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(2000, 'a') + "\r\n\r\n", 431},
        BadCase{"long_target", "GET /" + std::string(2000, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n", 431},
        BadCase{"big_cl_body", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n", 413},
        BadCase{"big_chunked_body", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n" + std::string(101, 'x') + "\r\n0\r\n\r\n", 413},
        BadCase{"expect_other", "GET / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n", 417},
        BadCase{"connect", "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", 405}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Http1Parser, IncompleteHeadAtEofIsAnError) {
  Recorder r;
  Http1Parser p(r, smallLimits());
  std::size_t consumed = 0;
  EXPECT_EQ(p.feed("GET / HTTP/1.1\r\nHo", consumed), Http1Parser::Result::Ok);
  EXPECT_EQ(p.finish(), Http1Parser::Result::Error);
  EXPECT_EQ(p.errorStatus(), 400);
}

}  // namespace
}  // namespace portico::proxy
