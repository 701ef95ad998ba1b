// Edge compression decisions (proxy/pipeline/edge_compression.h): which stored objects and
// requests get a compressed variant, where it is stored, and when a stored variant is stale.
#include "proxy/pipeline/edge_compression.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "cache/memory_store.h"

namespace portico::proxy {
namespace {

cache::CachedObjectPtr textObject(std::size_t size, std::string_view type = "text/css") {
  auto o = std::make_shared<cache::CachedObject>();
  o->head.status = 200;
  o->head.headers.add("Content-Type", type);
  o->head.headers.add("ETag", "\"abc\"");
  o->body = std::make_shared<const std::string>(std::string(size, 'a'));
  o->meta.etag = "\"abc\"";
  o->meta.request_time = core::WallTime(std::chrono::seconds(1000));
  o->meta.response_time = core::WallTime(std::chrono::seconds(1001));
  return o;
}

core::RequestHead request(std::string_view accept_encoding = "", bool range = false) {
  core::RequestHead r;
  r.method = "GET";
  r.path = "/site.css";
  if (!accept_encoding.empty()) r.headers.add("Accept-Encoding", accept_encoding);
  if (range) r.headers.add("Range", "bytes=0-9");
  return r;
}

conf::Behavior compressing(bool on = true) {
  conf::Behavior b;
  b.compress = on;
  return b;
}

TEST(EdgeCompressionPlan, NegotiatedCodingAndVariantKey) {
  auto object = textObject(4096);
  CompressionPlan plan = planCompression(compressing(), request("gzip, br"), *object, "k");
  EXPECT_TRUE(plan.applies);
  EXPECT_EQ(plan.coding, ContentCoding::Brotli);
  EXPECT_EQ(plan.variant_key, std::string("k") + kVariantSeparator + "ce=br");

  plan = planCompression(compressing(), request("gzip"), *object, "k");
  EXPECT_EQ(plan.coding, ContentCoding::Gzip);
  EXPECT_EQ(plan.variant_key, std::string("k") + kVariantSeparator + "ce=gzip");
}

TEST(EdgeCompressionPlan, IdentityButVaryWhenTheClientTakesNoCodingOrAsksARange) {
  auto object = textObject(4096);
  for (const core::RequestHead& r : {request(), request("gzip;q=0"), request("gzip", true)}) {
    CompressionPlan plan = planCompression(compressing(), r, *object, "k");
    EXPECT_TRUE(plan.applies);  // answers still say Vary: Accept-Encoding
    EXPECT_EQ(plan.coding, ContentCoding::Identity);
    EXPECT_TRUE(plan.variant_key.empty());
  }
}

TEST(EdgeCompressionPlan, NotACandidate) {
  EXPECT_FALSE(planCompression(compressing(false), request("gzip"), *textObject(4096), "k").applies);
  EXPECT_FALSE(planCompression(compressing(), request("gzip"), *textObject(100), "k").applies);
  EXPECT_FALSE(planCompression(compressing(), request("gzip"), *textObject(4096, "image/png"), "k").applies);
  auto encoded = std::make_shared<cache::CachedObject>(*textObject(4096));
  encoded->head.headers.add("Content-Encoding", "gzip");
  EXPECT_FALSE(planCompression(compressing(), request("gzip"), *encoded, "k").applies);
}

TEST(EdgeCompressionPlan, CompressAfterFillNeedsALengthAndACoding) {
  core::ResponseHead head;
  head.status = 200;
  head.headers.add("Content-Type", "application/javascript");
  EXPECT_FALSE(compressAfterFill(compressing(), request("gzip"), head));  // no Content-Length
  head.headers.add("Content-Length", "65536");
  EXPECT_TRUE(compressAfterFill(compressing(), request("gzip"), head));
  EXPECT_FALSE(compressAfterFill(compressing(), request(), head));
  EXPECT_FALSE(compressAfterFill(compressing(), request("gzip", true), head));
  EXPECT_FALSE(compressAfterFill(compressing(false), request("gzip"), head));
}

TEST(EdgeCompressionFind, OnlyAVariantMadeFromTheStoredIdentity) {
  cache::MemoryStore store(cache::MemoryStoreOptions{});
  auto identity = textObject(4096);
  CompressionPlan plan = planCompression(compressing(), request("gzip"), *identity, "k");
  EXPECT_EQ(findCompressed(store, plan, *identity), nullptr);

  auto variant = std::make_shared<cache::CachedObject>(*identity);
  variant->head.headers.set("Content-Encoding", "gzip");
  ASSERT_TRUE(store.insert(plan.variant_key, variant));
  EXPECT_EQ(findCompressed(store, plan, *identity), variant);

  // The identity was refreshed or replaced since: its variant is not used any more.
  auto refreshed = std::make_shared<cache::CachedObject>(*identity);
  refreshed->meta.response_time += std::chrono::seconds(5);
  EXPECT_EQ(findCompressed(store, plan, *refreshed), nullptr);
}

}  // namespace
}  // namespace portico::proxy
