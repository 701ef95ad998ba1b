// Component tests for the `lambda` origin: the fixture server plays the Lambda invoke API
// (POST /2015-03-31/functions/{fn}/invocations), the loop is pumped by hand.
#include "origin/lambda_origin.h"

#include <gtest/gtest.h>
#include <uv.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "origin/curl_multi.h"
#include "tests/component/origin/origin_test_sink.h"
#include "tests/support/fixture_server.h"
#include "tests/support/loop_pump.h"

namespace portico::origin {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using test::FixtureRequest;
using test::FixtureResponder;
using test::FixtureServer;
using test::pumpTurns;
using test::pumpUntil;
using test_support::makeRequest;
using test_support::RecordingSink;
using test_support::startFetch;

// A function host answering every invoke with `answer` (HTTP 200 + JSON).
FixtureServer::Handler answerWith(std::string answer) {
  return [answer](const FixtureRequest&, FixtureResponder& r) {
    r.reply(200, {{"Content-Type", "application/json"}}, answer);
  };
}

OriginRequest apiRequest() {
  auto r = makeRequest("GET", "/prod/bill/42", "x=1&x=2&y=a%20b+c&flag");
  r.head.headers.add("X-Multi", "one");
  r.head.headers.add("x-multi", "two");
  r.head.headers.add("Accept", "application/json");
  ApiInvocation api;
  api.resource = "/bill/{id}";
  api.path = "/bill/42";
  api.stage = "prod";
  api.path_params = {{"id", "42"}};
  api.stage_variables = {{"env", "test"}, {"table", "bills"}};
  api.request_id = "req-123";
  api.request_time_ms = 1700000000123;
  r.api = api;
  return r;
}

class LambdaOriginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    multi_ = std::make_unique<CurlMulti>(&loop_);
  }
  void TearDown() override {
    multi_.reset();
    test::expectLoopClean(&loop_);
  }
  LambdaOriginClient client(const std::string& endpoint, std::uint64_t timeout_ms = 5000) {
    conf::LambdaOrigin cfg;
    cfg.endpoint = endpoint;
    cfg.function = "bills-fn";
    cfg.timeout_ms = timeout_ms;
    return LambdaOriginClient(&loop_, *multi_, cfg);
  }
  bool waitDone(const RecordingSink& sink) {
    return pumpUntil(&loop_, [&] { return sink.dones > 0; });
  }
  // Runs one invoke of `request` against a host answering `answer`; returns the event sent.
  json invoke(OriginRequest request, const std::string& answer, RecordingSink& sink) {
    FixtureServer host(answerWith(answer));
    auto c = client(host.url());
    auto f = startFetch(c, std::move(request), sink);
    EXPECT_TRUE(waitDone(sink));
    EXPECT_EQ(sink.sync_calls, 0);
    EXPECT_EQ(sink.violations, 0);
    auto reqs = host.requests();
    if (reqs.size() != 1) {
      ADD_FAILURE() << "expected one invoke, got " << reqs.size();
      return json();
    }
    return json::parse(reqs[0].body, nullptr, false);
  }

  uv_loop_t loop_{};
  std::unique_ptr<CurlMulti> multi_;
};

TEST_F(LambdaOriginTest, EventShapeAndInvokeRequest) {
  FixtureServer host(answerWith(R"({"statusCode": 200, "body": "ok"})"));
  auto c = client(host.url() + "/");
  RecordingSink sink;
  auto f = startFetch(c, apiRequest(), sink);
  ASSERT_TRUE(waitDone(sink));
  EXPECT_EQ(sink.error, FetchError::None);
  auto reqs = host.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].target, "/2015-03-31/functions/bills-fn/invocations");
  EXPECT_EQ(reqs[0].headers.get("Content-Type").value_or(""), "application/json");
  json ev = json::parse(reqs[0].body, nullptr, false);
  ASSERT_TRUE(ev.is_object()) << reqs[0].body;

  EXPECT_EQ(ev["resource"], "/bill/{id}");
  EXPECT_EQ(ev["path"], "/bill/42");
  EXPECT_EQ(ev["httpMethod"], "GET");
  EXPECT_EQ(ev["headers"]["Host"], "client.example");
  EXPECT_EQ(ev["headers"]["X-Multi"], "two");  // last value wins
  EXPECT_EQ(ev["multiValueHeaders"]["X-Multi"], json::array({"one", "two"}));
  EXPECT_EQ(ev["multiValueHeaders"]["Accept"], json::array({"application/json"}));
  EXPECT_EQ(ev["queryStringParameters"]["x"], "2");
  EXPECT_EQ(ev["queryStringParameters"]["y"], "a b+c");  // %XX decoded, '+' kept
  EXPECT_EQ(ev["queryStringParameters"]["flag"], "");
  EXPECT_EQ(ev["multiValueQueryStringParameters"]["x"], json::array({"1", "2"}));
  EXPECT_EQ(ev["pathParameters"], json({{"id", "42"}}));
  EXPECT_EQ(ev["stageVariables"], json({{"env", "test"}, {"table", "bills"}}));
  const json& ctx = ev["requestContext"];
  EXPECT_EQ(ctx["resourcePath"], "/bill/{id}");
  EXPECT_EQ(ctx["httpMethod"], "GET");
  EXPECT_EQ(ctx["path"], "/prod/bill/42");
  EXPECT_EQ(ctx["stage"], "prod");
  EXPECT_EQ(ctx["requestId"], "req-123");
  EXPECT_EQ(ctx["identity"]["sourceIp"], "192.0.2.7");
  EXPECT_EQ(ctx["requestTimeEpoch"], 1700000000123);
  EXPECT_EQ(ctx["protocol"], "HTTP/1.1");
  EXPECT_EQ(ctx["accountId"], "000000000000");
  EXPECT_TRUE(ctx["apiId"].is_string());
  EXPECT_TRUE(ev["body"].is_null());
  EXPECT_EQ(ev["isBase64Encoded"], false);
}

TEST_F(LambdaOriginTest, EventNullsWhenNothingToSay) {
  auto r = makeRequest("GET", "/plain");
  ApiInvocation api;
  api.resource = "/plain";
  api.path = "/plain";
  api.stage = "dev";
  r.api = api;
  RecordingSink sink;
  json ev = invoke(std::move(r), R"({"statusCode": 204})", sink);
  EXPECT_TRUE(ev["queryStringParameters"].is_null());
  EXPECT_TRUE(ev["multiValueQueryStringParameters"].is_null());
  EXPECT_TRUE(ev["pathParameters"].is_null());
  EXPECT_TRUE(ev["stageVariables"].is_null());
  EXPECT_TRUE(ev["body"].is_null());
  EXPECT_EQ(sink.head.status, 204);
  EXPECT_EQ(sink.body_calls, 0);
}

TEST_F(LambdaOriginTest, TextBodyVerbatimBinaryBodyBase64) {
  for (bool binary : {false, true}) {
    const std::string part1 = binary ? std::string("\xff\x00\x01", 3) : "{\"a\": ";
    const std::string part2 = binary ? std::string("\x80tail") : "\"\xc3\xa9\"}";  // é
    FixtureServer host(answerWith(R"({"statusCode": 200})"));
    auto c = client(host.url());
    auto r = makeRequest("POST", "/prod/items");
    r.has_body = true;
    RecordingSink sink;
    auto f = startFetch(c, std::move(r), sink);
    f->sendBody(part1);
    pumpTurns(&loop_, 3);
    EXPECT_EQ(host.requestCount(), 0u);  // nothing is invoked before endBody()
    f->sendBody(part2);
    EXPECT_EQ(f->pendingBodyBytes(), 0u);
    f->endBody();
    ASSERT_TRUE(waitDone(sink));
    EXPECT_EQ(sink.error, FetchError::None);
    auto reqs = host.requests();
    ASSERT_EQ(reqs.size(), 1u);
    json ev = json::parse(reqs[0].body, nullptr, false);
    ASSERT_TRUE(ev.is_object());
    EXPECT_EQ(ev["httpMethod"], "POST");
    EXPECT_EQ(ev["isBase64Encoded"], binary);
    EXPECT_EQ(ev["body"], binary ? base64Encode(part1 + part2) : part1 + part2);
  }
}

TEST_F(LambdaOriginTest, ResponseMapping) {
  RecordingSink sink;
  invoke(apiRequest(), R"({
      "statusCode": 201,
      "headers": {"Content-Type": "text/plain", "X-One": "1", "Set-Cookie": "a=1",
                  "Content-Length": "999", "Connection": "close", "Transfer-Encoding": "chunked"},
      "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"], "X-Many": ["x", "y"]},
      "body": "created",
      "isBase64Encoded": false})",
         sink);
  EXPECT_EQ(sink.error, FetchError::None);
  EXPECT_EQ(sink.head.status, 201);
  EXPECT_EQ(sink.header("Content-Type"), "text/plain");
  EXPECT_EQ(sink.header("X-One"), "1");
  auto cookies = sink.head.headers.getAll("Set-Cookie");
  ASSERT_EQ(cookies.size(), 2u);  // a=1 is not repeated from "headers"
  EXPECT_EQ(cookies[0], "a=1");
  EXPECT_EQ(cookies[1], "b=2");
  EXPECT_EQ(sink.head.headers.getAll("X-Many").size(), 2u);
  // The function's Content-Length is dropped; the edge sends the real one.
  EXPECT_EQ(sink.head.headers.getAll("Content-Length").size(), 1u);
  EXPECT_EQ(sink.header("Content-Length"), "7");
  EXPECT_FALSE(sink.head.headers.has("Connection"));
  EXPECT_FALSE(sink.head.headers.has("Transfer-Encoding"));
  EXPECT_EQ(sink.body, "created");
}

TEST_F(LambdaOriginTest, Base64ResponseBodyIsDecoded) {
  RecordingSink sink;
  invoke(apiRequest(),
         R"({"statusCode": 200, "headers": {"Content-Type": "image/png"},
             "body": "AAEC/w==", "isBase64Encoded": true})",
         sink);
  EXPECT_EQ(sink.error, FetchError::None);
  EXPECT_EQ(sink.body, std::string("\x00\x01\x02\xff", 4));
}

TEST_F(LambdaOriginTest, FunctionErrorHeaderIsFunctionError) {
  FixtureServer host([](const FixtureRequest&, FixtureResponder& r) {
    r.reply(200, {{"X-Amz-Function-Error", "Unhandled"}},
            R"({"errorMessage": "boom", "errorType": "Error"})");
  });
  auto c = client(host.url());
  RecordingSink sink;
  auto f = startFetch(c, apiRequest(), sink);
  ASSERT_TRUE(waitDone(sink));
  EXPECT_EQ(sink.error, FetchError::FunctionError);
  EXPECT_EQ(sink.heads, 0);
}

TEST_F(LambdaOriginTest, MalformedAnswersAreBadResponse) {
  const char* answers[] = {
      "not json at all",
      "[1, 2]",
      "{}",
      R"({"statusCode": "200"})",
      R"({"statusCode": 200.5})",
      R"({"statusCode": 99})",
      R"({"statusCode": 600})",
      R"({"statusCode": 200, "headers": {"X-A": 1}})",
      R"({"statusCode": 200, "headers": ["X-A"]})",
      R"({"statusCode": 200, "multiValueHeaders": {"X-A": "not-a-list"}})",
      R"({"statusCode": 200, "headers": {"X-A": "line\r\nInjected: yes"}})",
      R"({"statusCode": 200, "body": 5})",
      R"({"statusCode": 200, "isBase64Encoded": "yes", "body": "x"})",
      R"({"statusCode": 200, "isBase64Encoded": true, "body": "***"})",
  };
  FixtureServer host([&](const FixtureRequest& req, FixtureResponder& r) {
    json ev = json::parse(req.body, nullptr, false);
    std::size_t i = 0;
    if (ev.is_object() && ev["headers"].is_object() && ev["headers"]["X-Case"].is_string()) {
      i = std::stoul(ev["headers"]["X-Case"].get<std::string>());
    }
    r.reply(200, {}, answers[i % std::size(answers)]);
  });
  auto c = client(host.url());
  for (std::size_t i = 0; i < std::size(answers); ++i) {
    auto req = apiRequest();
    // The host picks its answer by this client header, read from the event.
    req.head.headers.add("X-Case", std::to_string(i));
    RecordingSink sink;
    auto f = startFetch(c, std::move(req), sink);
    ASSERT_TRUE(waitDone(sink)) << answers[i];
    EXPECT_EQ(sink.error, FetchError::BadResponse) << answers[i];
    EXPECT_EQ(sink.heads, 0) << answers[i];
  }
}

TEST_F(LambdaOriginTest, NonSuccessInvokeStatusIsBadResponse) {
  FixtureServer host([](const FixtureRequest&, FixtureResponder& r) {
    r.reply(500, {}, R"({"statusCode": 200, "body": "looks fine"})");
  });
  auto c = client(host.url());
  RecordingSink sink;
  auto f = startFetch(c, apiRequest(), sink);
  ASSERT_TRUE(waitDone(sink));
  EXPECT_EQ(sink.error, FetchError::BadResponse);
  EXPECT_EQ(sink.heads, 0);
}

TEST_F(LambdaOriginTest, OversizedAnswerIsBadResponse) {
  std::string huge = R"({"statusCode": 200, "body": ")" +
                     std::string(LambdaOriginClient::kMaxResultBytes, 'x') + "\"}";
  FixtureServer host(answerWith(huge));
  auto c = client(host.url());
  RecordingSink sink;
  auto f = startFetch(c, apiRequest(), sink);
  ASSERT_TRUE(waitDone(sink));
  EXPECT_EQ(sink.error, FetchError::BadResponse);
  EXPECT_EQ(sink.heads, 0);
}

TEST_F(LambdaOriginTest, NoAnswerIsTimeout) {
  FixtureServer host([](const FixtureRequest&, FixtureResponder& r) { r.hold(); });
  auto c = client(host.url(), /*timeout_ms=*/200);
  RecordingSink sink;
  auto f = startFetch(c, apiRequest(), sink);
  ASSERT_TRUE(waitDone(sink));
  EXPECT_EQ(sink.error, FetchError::Timeout);
  EXPECT_EQ(sink.heads, 0);
}

TEST_F(LambdaOriginTest, UnreachableHostIsConnectFailed) {
  test_support::RefusingPort refusing;
  auto c = client(refusing.url());
  RecordingSink sink;
  auto f = startFetch(c, apiRequest(), sink);
  ASSERT_TRUE(waitDone(sink));
  EXPECT_EQ(sink.error, FetchError::ConnectFailed);
}

TEST_F(LambdaOriginTest, BackpressureOnTheMappedBody) {
  const std::string body(300 * 1024, 'b');
  RecordingSink sink;
  sink.on_body = [](std::string_view) { return false; };
  FixtureServer host(answerWith(json{{"statusCode", 200}, {"body", body}}.dump()));
  auto c = client(host.url());
  auto f = startFetch(c, apiRequest(), sink);
  ASSERT_TRUE(pumpUntil(&loop_, [&] { return sink.body_calls > 0; }));
  pumpTurns(&loop_, 20);
  EXPECT_EQ(sink.body_calls, 1);
  EXPECT_EQ(sink.dones, 0);
  sink.on_body = nullptr;
  sink.paused = false;
  f->resume();
  ASSERT_TRUE(waitDone(sink));
  EXPECT_EQ(sink.error, FetchError::None);
  EXPECT_EQ(sink.violations, 0);
  EXPECT_EQ(sink.body, body);
}

TEST_F(LambdaOriginTest, DestroyedFetchIsSilent) {
  FixtureServer host([](const FixtureRequest&, FixtureResponder& r) { r.hold(); });
  auto c = client(host.url());
  RecordingSink sink;
  auto f = startFetch(c, apiRequest(), sink);
  ASSERT_TRUE(pumpUntil(&loop_, [&] { return host.requestCount() > 0; }));
  f.reset();
  pumpTurns(&loop_, 20);
  EXPECT_EQ(sink.callbacks(), 0);

  // Body still buffering when destroyed.
  auto r = makeRequest("POST", "/x");
  r.has_body = true;
  auto g = startFetch(c, std::move(r), sink);
  g->sendBody("partial");
  g.reset();
  pumpTurns(&loop_, 5);
  EXPECT_EQ(sink.callbacks(), 0);
}

TEST_F(LambdaOriginTest, OversizedRequestBodyFailsLaterNotInline) {
  FixtureServer host(answerWith(R"({"statusCode": 200})"));
  auto c = client(host.url());
  auto r = makeRequest("POST", "/big");
  r.has_body = true;
  RecordingSink sink;
  auto f = startFetch(c, std::move(r), sink);
  sink.in_fetch = true;  // nothing may be called from inside sendBody()/endBody() either
  f->sendBody(std::string(LambdaOriginClient::kMaxEventBodyBytes, 'x'));
  f->sendBody("one byte too many");
  f->endBody();
  sink.in_fetch = false;
  ASSERT_TRUE(waitDone(sink));
  EXPECT_EQ(sink.sync_calls, 0);
  EXPECT_EQ(sink.error, FetchError::Internal);
  EXPECT_EQ(host.requestCount(), 0u);
}

// ---- pure helpers ----------------------------------------------------------------------------

TEST(LambdaHelpers, Base64RoundTripsAndRejectsGarbage) {
  for (std::string s : {std::string(), std::string("f"), std::string("fo"), std::string("foo"),
                        std::string("foob"), std::string("\x00\xff\x10\x80", 4)}) {
    auto back = base64Decode(base64Encode(s));
    ASSERT_TRUE(back.has_value()) << s;
    EXPECT_EQ(*back, s);
  }
  EXPECT_EQ(base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64Encode("fo"), "Zm8=");
  EXPECT_EQ(*base64Decode("Zm8"), "fo");               // missing padding tolerated
  EXPECT_EQ(*base64Decode("Zm9v\r\nYmFy"), "foobar");  // MIME line breaks tolerated
  EXPECT_FALSE(base64Decode("Zm9v!").has_value());
  EXPECT_FALSE(base64Decode("Z").has_value());
  EXPECT_FALSE(base64Decode("Zm8=Zm8=").has_value());
  EXPECT_FALSE(base64Decode("Zm===").has_value());
}

TEST(LambdaHelpers, PercentDecodeOnlyDecodesEscapes) {
  EXPECT_EQ(percentDecode("a%20b+c"), "a b+c");
  EXPECT_EQ(percentDecode("%41%zz%4"), "A%zz%4");
  EXPECT_EQ(percentDecode("%"), "%");
}

TEST(LambdaHelpers, EventWithoutApiDescribesThePath) {
  auto r = makeRequest("DELETE", "/raw/path", "q=1");
  json ev = json::parse(buildProxyEvent(r, "", false));
  EXPECT_EQ(ev["resource"], "/raw/path");
  EXPECT_EQ(ev["path"], "/raw/path");
  EXPECT_EQ(ev["requestContext"]["path"], "/raw/path");
  EXPECT_EQ(ev["queryStringParameters"]["q"], "1");
}

TEST(LambdaHelpers, EventIsValidJsonWhateverTheClientSent) {
  auto r = makeRequest("GET", "/p", "a=%FF%22&a=2&b");
  r.head.headers.add("X-Bin", std::string("\xff\"\\\x01ok", 6));
  r.head.headers.add("x-bin", "second");
  json ev = json::parse(buildProxyEvent(r, std::string("\x80\x81", 2), true));
  EXPECT_EQ(ev["headers"]["X-Bin"], "second");
  EXPECT_EQ(ev["multiValueHeaders"]["X-Bin"][0], "\xef\xbf\xbd\"\\\x01ok");
  EXPECT_EQ(ev["multiValueQueryStringParameters"]["a"][0], "\xef\xbf\xbd\"");
  EXPECT_EQ(ev["queryStringParameters"]["a"], "2");
  EXPECT_EQ(ev["queryStringParameters"]["b"], "");
  EXPECT_EQ(ev["body"], "gIE=");  // not UTF-8: base64
  EXPECT_EQ(ev["isBase64Encoded"], true);
  EXPECT_TRUE(ev["pathParameters"].is_null());
  EXPECT_TRUE(ev["stageVariables"].is_null());
}

// Past a handful of names the grouping switches to a hash index: names still group
// case-insensitively (headers) or exactly (query), first-seen order kept, last value single.
TEST(LambdaHelpers, EventGroupsManyNames) {
  std::string query;
  auto r = makeRequest("GET", "/p", "");
  const std::size_t base = r.head.headers.size();  // what makeRequest put there (distinct)
  for (int i = 0; i < 300; ++i) {
    r.head.headers.add("X-H" + std::to_string(i), "v" + std::to_string(i));
    query += "q" + std::to_string(i) + "=" + std::to_string(i) + "&";
  }
  r.head.headers.add("x-h7", "again");  // same field as X-H7
  query += "q7=again&Q7=other";
  r.head.query = query;
  json ev = json::parse(buildProxyEvent(r, "", false));
  ASSERT_EQ(ev["multiValueHeaders"].size(), base + 300);
  EXPECT_EQ(ev["headers"]["X-H7"], "again");
  EXPECT_EQ(ev["multiValueHeaders"]["X-H7"], json::array({"v7", "again"}));
  EXPECT_EQ(ev["headers"]["X-H299"], "v299");
  EXPECT_EQ(ev["multiValueQueryStringParameters"]["q7"], json::array({"7", "again"}));
  EXPECT_EQ(ev["queryStringParameters"]["Q7"], "other");
  EXPECT_EQ(ev["queryStringParameters"].size(), 301u);
  // First-seen order of the names survives.
  const std::string text = buildProxyEvent(r, "", false);
  EXPECT_LT(text.find("\"X-H0\""), text.find("\"X-H1\""));
  EXPECT_LT(text.find("\"X-H17\""), text.find("\"X-H299\""));
}

TEST(LambdaHelpers, ResultParsingIsStrict) {
  std::string why;
  auto ok = parseProxyResult(R"({"statusCode":201,"body":"x","body":"y","headers":null})", &why);
  ASSERT_TRUE(ok.has_value()) << why;
  EXPECT_EQ(ok->head.status, 201);
  EXPECT_EQ(ok->body, "y");  // a name given twice: its last value
  for (const char* bad : {R"({"statusCode":200.0})", R"({"statusCode":"200"})", R"({"body":"x"})",
                          R"({"statusCode":200} trailing)", R"({"statusCode":200,"x":[1,}})",
                          R"({"statusCode":200,"body":"\ud800"})", "[200]", "",
                          R"({"statusCode":99})", R"({"statusCode":200,"isBase64Encoded":"yes"})",
                          R"({"statusCode":200,"headers":{"a b":"c"}})",
                          R"({"statusCode":200,"multiValueHeaders":{"a":"c"}})"}) {
    EXPECT_FALSE(parseProxyResult(bad, &why).has_value()) << bad;
  }
  std::string invalid_utf8 = "{\"statusCode\":200,\"body\":\"\xff\"}";
  EXPECT_FALSE(parseProxyResult(invalid_utf8, &why).has_value());
  EXPECT_EQ(why, "not JSON");
}

}  // namespace
}  // namespace portico::origin
