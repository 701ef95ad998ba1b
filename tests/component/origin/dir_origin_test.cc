// Component tests for the dir origin: a real uv_loop_t pumped by hand (tests/support/
// loop_pump.h), a real temporary folder (files, a subfolder, symlinks in and out of the root, a
// 5 MiB file, binary bytes, a FIFO). Every test ends with the loop drained and
// expectLoopClean() (no handle left, uv_loop_close() == 0).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "origin/dir_origin.h"
#include "proxy/core/http_date.h"
#include "tests/support/loop_pump.h"

namespace portico::origin {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kChunk = 64 * 1024;
constexpr std::size_t kLargeSize = 5 * 1024 * 1024;
const std::string kSecret = "TOP-SECRET-OUTSIDE-THE-ROOT";

std::uint64_t fnv1a(std::string_view data) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : data) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::size_t openFdCount() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

// Records every callback and checks the origin contract as it goes.
class RecordingSink : public ResponseSink {
 public:
  void onOriginHead(core::ResponseHead h) override {
    if (in_fetch) ++sync_calls;
    if (heads > 0 || dones > 0) ++violations;
    ++heads;
    head = std::move(h);
    if (on_head) on_head();
  }
  bool onOriginBody(std::string_view chunk) override {
    if (in_fetch) ++sync_calls;
    if (heads == 0 || dones > 0) ++violations;
    ++body_calls;
    max_chunk = std::max(max_chunk, chunk.size());
    body.append(chunk);
    return on_body ? on_body(chunk) : true;
  }
  void onOriginDone(FetchError e) override {
    if (in_fetch) ++sync_calls;
    if (dones > 0) ++violations;
    ++dones;
    error = e;
    if (on_done) on_done();
  }

  std::string header(std::string_view name) const {
    return std::string(head.headers.get(name).value_or(""));
  }
  int callbacks() const { return heads + body_calls + dones; }

  bool in_fetch = false;
  int sync_calls = 0;
  int violations = 0;
  int heads = 0;
  int body_calls = 0;
  int dones = 0;
  core::ResponseHead head;
  std::string body;
  std::size_t max_chunk = 0;
  FetchError error = FetchError::None;
  std::function<void()> on_head;
  std::function<bool(std::string_view)> on_body;  // default: keep delivering
  std::function<void()> on_done;
};

struct Exchange {
  RecordingSink sink;
  FetchPtr fetch;
};

class DirOriginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    loop_ready_ = true;
    std::string tmpl = (fs::temp_directory_path() / "portico-dir-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    base_ = tmpl;
    root_ = base_ / "site";
    fs::create_directories(root_ / "sub");
    fs::create_directories(base_ / "outside");
    write(base_ / "outside" / "secret.txt", kSecret);
    write(root_ / "index.html", "<h1>hello</h1>\n");
    write(root_ / "style.css", "body { color: red }\n");
    write(root_ / "sub" / "page.txt", "sub page\n");
    write(root_ / "empty.txt", "");
    std::string binary;
    for (int round = 0; round < 4; ++round) {
      for (int b = 0; b < 256; ++b) binary.push_back(static_cast<char>(b));
    }
    write(root_ / "data.bin", binary);
    large_.resize(kLargeSize);
    std::uint64_t x = 88172645463325252ull;  // xorshift: incompressible, reproducible
    for (char& c : large_) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      c = static_cast<char>(x);
    }
    write(root_ / "large.bin", large_);
    fs::create_symlink("index.html", root_ / "link-inside");
    fs::create_symlink("../outside/secret.txt", root_ / "link-out");
    fs::create_symlink(base_ / "outside", root_ / "dirlink-out");
    fs::create_symlink("sub", root_ / "dirlink-in");
    client_ = std::make_unique<DirOriginClient>(&loop_, conf::DirOrigin{root_.string()});
  }

  void TearDown() override {
    client_.reset();
    if (loop_ready_) {
      EXPECT_TRUE(drain());
      test::expectLoopClean(&loop_);
    }
    std::error_code ec;
    fs::remove_all(base_, ec);
  }

  static void write(const fs::path& p, std::string_view content) {
    std::ofstream out(p, std::ios::binary);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
  }

  std::unique_ptr<Exchange> start(std::string method, std::string path,
                                  std::vector<std::pair<std::string, std::string>> headers = {},
                                  OriginClient* client = nullptr) {
    auto ex = std::make_unique<Exchange>();
    OriginRequest req;
    req.head.method = std::move(method);
    req.head.path = path;
    req.path = std::move(path);
    for (const auto& [n, v] : headers) req.head.headers.add(n, v);
    ex->sink.in_fetch = true;
    ex->fetch = (client != nullptr ? client : client_.get())->fetch(std::move(req), ex->sink);
    ex->sink.in_fetch = false;
    return ex;
  }

  // Starts an exchange and runs the loop until it is done; checks the contract held.
  std::unique_ptr<Exchange> run(std::string method, std::string path,
                                std::vector<std::pair<std::string, std::string>> headers = {}) {
    auto ex = start(std::move(method), std::move(path), std::move(headers));
    EXPECT_TRUE(pumpUntil([&] { return ex->sink.dones > 0; }));
    EXPECT_EQ(ex->sink.sync_calls, 0);
    EXPECT_EQ(ex->sink.violations, 0);
    EXPECT_EQ(ex->sink.heads, 1);
    return ex;
  }

  std::unique_ptr<Exchange> get(std::string path,
                                std::vector<std::pair<std::string, std::string>> headers = {}) {
    return run("GET", std::move(path), std::move(headers));
  }

  // Runs the loop until every uv_fs_t has called back and nothing else is pending.
  bool drain() {
    return test::pumpUntil(&loop_, [this] { return !uv_loop_alive(&loop_); });
  }
  bool pumpUntil(const std::function<bool()>& pred) { return test::pumpUntil(&loop_, pred); }

  uv_loop_t loop_{};
  bool loop_ready_ = false;
  fs::path base_;
  fs::path root_;
  std::string large_;
  std::unique_ptr<DirOriginClient> client_;
};

TEST_F(DirOriginTest, ServesFileWithObjectHeaders) {
  auto ex = get("/index.html");
  const RecordingSink& s = ex->sink;
  EXPECT_EQ(s.head.status, 200);
  EXPECT_EQ(s.error, FetchError::None);
  EXPECT_EQ(s.body, "<h1>hello</h1>\n");
  EXPECT_EQ(s.header("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(s.header("Content-Length"), "15");
  EXPECT_EQ(s.header("Accept-Ranges"), "bytes");
  const std::string etag = s.header("ETag");
  ASSERT_GE(etag.size(), 3u);
  EXPECT_EQ(etag.front(), '"');  // strong
  struct stat st {};
  ASSERT_EQ(stat((root_ / "index.html").c_str(), &st), 0);
  EXPECT_EQ(s.header("Last-Modified"), core::formatHttpDate(st.st_mtim.tv_sec));
  // Same file, same validators (another worker would agree).
  EXPECT_EQ(get("/index.html")->sink.header("ETag"), etag);
  EXPECT_EQ(get("/style.css")->sink.header("Content-Type"), "text/css; charset=utf-8");
  EXPECT_EQ(get("/sub/page.txt")->sink.body, "sub page\n");
  EXPECT_EQ(get("/%73ub/page.txt")->sink.body, "sub page\n");  // %73 = 's'
}

TEST_F(DirOriginTest, BinaryAndEmptyFiles) {
  auto ex = get("/data.bin");
  EXPECT_EQ(ex->sink.head.status, 200);
  EXPECT_EQ(ex->sink.body.size(), 1024u);
  EXPECT_EQ(static_cast<unsigned char>(ex->sink.body[255]), 255);
  EXPECT_EQ(ex->sink.body[256], '\0');
  EXPECT_EQ(ex->sink.header("Content-Type"), "application/octet-stream");

  auto empty = get("/empty.txt");
  EXPECT_EQ(empty->sink.head.status, 200);
  EXPECT_EQ(empty->sink.header("Content-Length"), "0");
  EXPECT_EQ(empty->sink.body_calls, 0);
  EXPECT_EQ(empty->sink.error, FetchError::None);
}

TEST_F(DirOriginTest, LargeFileStreamsInBoundedChunks) {
  auto ex = get("/large.bin");
  EXPECT_EQ(ex->sink.head.status, 200);
  EXPECT_EQ(ex->sink.header("Content-Length"), std::to_string(kLargeSize));
  EXPECT_EQ(ex->sink.error, FetchError::None);
  ASSERT_EQ(ex->sink.body.size(), kLargeSize);
  EXPECT_EQ(fnv1a(ex->sink.body), fnv1a(large_));
  EXPECT_LE(ex->sink.max_chunk, kChunk);
  EXPECT_GE(ex->sink.body_calls, static_cast<int>(kLargeSize / kChunk));
}

TEST_F(DirOriginTest, HeadHasTheHeadersAndNoBody) {
  auto ex = run("HEAD", "/large.bin");
  EXPECT_EQ(ex->sink.head.status, 200);
  EXPECT_EQ(ex->sink.header("Content-Length"), std::to_string(kLargeSize));
  EXPECT_FALSE(ex->sink.header("ETag").empty());
  EXPECT_EQ(ex->sink.body_calls, 0);
  EXPECT_EQ(ex->sink.error, FetchError::None);

  auto missing = run("HEAD", "/nope.html");
  EXPECT_EQ(missing->sink.head.status, 404);
  EXPECT_EQ(missing->sink.body_calls, 0);
}

TEST_F(DirOriginTest, IfNoneMatchGives304) {
  const std::string etag = get("/style.css")->sink.header("ETag");
  for (const std::string& inm : {etag, "W/" + etag, "\"nope\", " + etag, std::string("*")}) {
    auto ex = get("/style.css", {{"If-None-Match", inm}});
    EXPECT_EQ(ex->sink.head.status, 304) << inm;
    EXPECT_EQ(ex->sink.header("ETag"), etag);
    EXPECT_FALSE(ex->sink.header("Last-Modified").empty());
    EXPECT_EQ(ex->sink.body_calls, 0);
    EXPECT_EQ(ex->sink.error, FetchError::None);
  }
  auto changed = get("/style.css", {{"If-None-Match", "\"old\""}});
  EXPECT_EQ(changed->sink.head.status, 200);
  EXPECT_EQ(changed->sink.body, "body { color: red }\n");
}

TEST_F(DirOriginTest, IfModifiedSinceGives304) {
  const std::string lm = get("/style.css")->sink.header("Last-Modified");
  auto same = get("/style.css", {{"If-Modified-Since", lm}});
  EXPECT_EQ(same->sink.head.status, 304);
  EXPECT_EQ(same->sink.body_calls, 0);
  const std::int64_t t = core::parseHttpDate(lm).value();
  auto older = get("/style.css", {{"If-Modified-Since", core::formatHttpDate(t - 10)}});
  EXPECT_EQ(older->sink.head.status, 200);
  // If-None-Match wins when both are present.
  auto both = get("/style.css", {{"If-None-Match", "\"old\""}, {"If-Modified-Since", lm}});
  EXPECT_EQ(both->sink.head.status, 200);
}

TEST_F(DirOriginTest, MissingFileIs404WithTextBody) {
  auto ex = get("/missing.html");
  EXPECT_EQ(ex->sink.head.status, 404);
  EXPECT_EQ(ex->sink.error, FetchError::None);
  EXPECT_EQ(ex->sink.header("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(ex->sink.header("Content-Length"), std::to_string(ex->sink.body.size()));
  EXPECT_FALSE(ex->sink.body.empty());
  EXPECT_EQ(get("/sub/missing/deeper.txt")->sink.head.status, 404);
  EXPECT_EQ(get("/index.html/x")->sink.head.status, 404);  // ENOTDIR
}

TEST_F(DirOriginTest, DirectoriesAreNotObjects) {
  for (const char* p : {"/", "/sub", "/sub/", "/sub/.", "/%73ub"}) {
    auto ex = get(p);
    EXPECT_EQ(ex->sink.head.status, 404) << p;
    EXPECT_EQ(ex->sink.body.find("page.txt"), std::string::npos) << "no listing: " << p;
  }
}

TEST_F(DirOriginTest, TraversalIsRefusedWithoutContent) {
  const std::string passwd_marker = "root:";
  for (const char* p : {"/../etc/passwd", "/%2e%2e/x", "/%2e%2e/outside/secret.txt",
                        "/a/%2E%2E/%2e%2e/x", "/..%2fx", "/..%2foutside%2fsecret.txt",
                        "/sub/../../outside/secret.txt", "/%00", "/index.html%00.txt",
                        "/..\\outside\\secret.txt", "//etc/passwd", "/%2fetc/passwd", "/a%zz",
                        "/link-out", "/dirlink-out/secret.txt", "/dirlink-out"}) {
    auto ex = get(p);
    const int status = ex->sink.head.status;
    EXPECT_TRUE(status == 403 || status == 400) << p << " -> " << status;
    EXPECT_EQ(ex->sink.body.find(kSecret), std::string::npos) << p;
    EXPECT_EQ(ex->sink.body.find(passwd_marker), std::string::npos) << p;
    EXPECT_EQ(ex->sink.error, FetchError::None);
  }
  EXPECT_EQ(get("/%00")->sink.head.status, 400);
  EXPECT_EQ(get("/../etc/passwd")->sink.head.status, 403);
  EXPECT_EQ(get("/link-out")->sink.head.status, 403);
}

TEST_F(DirOriginTest, SymlinkInsideRootIsServed) {
  auto ex = get("/link-inside");
  EXPECT_EQ(ex->sink.head.status, 200);
  EXPECT_EQ(ex->sink.body, "<h1>hello</h1>\n");
  EXPECT_EQ(ex->sink.header("Content-Type"), "application/octet-stream");
  EXPECT_EQ(get("/dirlink-in/page.txt")->sink.body, "sub page\n");
  EXPECT_EQ(get("/dirlink-in")->sink.head.status, 404);  // still a folder
}

TEST_F(DirOriginTest, SingleRangeGives206) {
  auto ex = get("/large.bin", {{"Range", "bytes=65530-200000"}});
  EXPECT_EQ(ex->sink.head.status, 206);
  EXPECT_EQ(ex->sink.header("Content-Range"),
            "bytes 65530-200000/" + std::to_string(kLargeSize));
  EXPECT_EQ(ex->sink.header("Content-Length"), "134471");
  EXPECT_EQ(ex->sink.body, large_.substr(65530, 134471));

  auto suffix = get("/index.html", {{"Range", "bytes=-6"}});
  EXPECT_EQ(suffix->sink.head.status, 206);
  EXPECT_EQ(suffix->sink.body, "</h1>\n");
  EXPECT_EQ(suffix->sink.header("Content-Range"), "bytes 9-14/15");

  auto open_ended = get("/index.html", {{"Range", "bytes=4-"}});
  EXPECT_EQ(open_ended->sink.head.status, 206);
  EXPECT_EQ(open_ended->sink.header("Content-Range"), "bytes 4-14/15");
  EXPECT_EQ(open_ended->sink.body, "hello</h1>\n");
}

TEST_F(DirOriginTest, UnsatisfiableRangeGives416) {
  auto ex = get("/index.html", {{"Range", "bytes=15-"}});
  EXPECT_EQ(ex->sink.head.status, 416);
  EXPECT_EQ(ex->sink.header("Content-Range"), "bytes */15");
  EXPECT_EQ(ex->sink.body.find("hello"), std::string::npos);
}

TEST_F(DirOriginTest, MultipleOrMalformedRangesAreIgnored) {
  for (const char* r : {"bytes=0-1,4-5", "bytes=9-3", "lines=1-2", "bytes=x-"}) {
    auto ex = get("/index.html", {{"Range", r}});
    EXPECT_EQ(ex->sink.head.status, 200) << r;
    EXPECT_EQ(ex->sink.body, "<h1>hello</h1>\n") << r;
  }
  // If-Range with a stale validator: the whole (changed) file instead of a range.
  auto ex = get("/index.html", {{"Range", "bytes=0-1"}, {"If-Range", "\"stale\""}});
  EXPECT_EQ(ex->sink.head.status, 200);
}

TEST_F(DirOriginTest, BackpressurePausesUntilResume) {
  auto ex = start("GET", "/large.bin");
  ex->sink.on_body = [](std::string_view) { return false; };
  // Paused after the first chunk: the loop goes idle with no read in flight.
  EXPECT_TRUE(drain());
  EXPECT_EQ(ex->sink.heads, 1);
  EXPECT_EQ(ex->sink.body_calls, 1);
  EXPECT_LE(ex->sink.body.size(), kChunk);
  EXPECT_EQ(ex->sink.dones, 0);

  ex->fetch->resume();
  EXPECT_EQ(ex->sink.body_calls, 1);  // resume() does not deliver synchronously
  EXPECT_TRUE(drain());
  EXPECT_EQ(ex->sink.body_calls, 2);
  EXPECT_LE(ex->sink.body.size(), 2 * kChunk);

  ex->fetch->resume();
  ex->fetch->resume();  // a second resume while a read is in flight changes nothing
  EXPECT_TRUE(drain());
  EXPECT_EQ(ex->sink.body_calls, 3);

  ex->sink.on_body = nullptr;
  ex->fetch->resume();
  EXPECT_TRUE(pumpUntil([&] { return ex->sink.dones > 0; }));
  EXPECT_EQ(ex->sink.error, FetchError::None);
  EXPECT_EQ(fnv1a(ex->sink.body), fnv1a(large_));
  EXPECT_EQ(ex->sink.violations, 0);
}

TEST_F(DirOriginTest, DestroyingTheFetchCancelsSilently) {
  const std::size_t fds_before = openFdCount();
  // (a) right after fetch(): realpath in flight.
  auto a = start("GET", "/large.bin");
  a->fetch.reset();
  // (b) after the head, while a read is in flight.
  auto b = start("GET", "/large.bin");
  EXPECT_TRUE(pumpUntil([&] { return b->sink.heads > 0; }));
  b->fetch.reset();
  // (c) from inside onOriginBody.
  auto c = start("GET", "/large.bin");
  c->sink.on_body = [&](std::string_view) {
    c->fetch.reset();
    return true;
  };
  // (d) while paused.
  auto d = start("GET", "/large.bin");
  d->sink.on_body = [](std::string_view) { return false; };
  // (e) a deferred fixed answer (405) before its timer fires; (f) inside onOriginHead.
  auto e = start("POST", "/index.html");
  e->fetch.reset();
  auto f = start("GET", "/index.html");
  f->sink.on_head = [&] { f->fetch.reset(); };

  EXPECT_TRUE(drain());
  d->fetch.reset();
  EXPECT_TRUE(drain());

  EXPECT_EQ(a->sink.callbacks(), 0);
  EXPECT_EQ(b->sink.body_calls, 0);
  EXPECT_EQ(b->sink.dones, 0);
  EXPECT_EQ(c->sink.body_calls, 1);
  EXPECT_EQ(c->sink.dones, 0);
  EXPECT_EQ(d->sink.body_calls, 1);
  EXPECT_EQ(d->sink.dones, 0);
  EXPECT_EQ(e->sink.callbacks(), 0);
  EXPECT_EQ(f->sink.heads, 1);
  EXPECT_EQ(f->sink.body_calls + f->sink.dones, 0);
  for (auto* s : {&a->sink, &b->sink, &c->sink, &d->sink, &e->sink, &f->sink}) {
    EXPECT_EQ(s->violations, 0);
    EXPECT_EQ(s->sync_calls, 0);
  }
  EXPECT_EQ(openFdCount(), fds_before);  // every opened file was closed
}

// Destroys a fetch after 0, 1, 2, ... loop turns, so cancellation lands in every phase of the
// fs chain (realpath, open, fstat, read) in turn. Nothing may be called after the destructor.
TEST_F(DirOriginTest, DestroyAfterEveryNumberOfTurns) {
  const std::size_t fds_before = openFdCount();
  for (int turns = 0; turns < 12; ++turns) {
    for (const char* path : {"/large.bin", "/index.html", "/missing", "/link-out"}) {
      auto ex = start("GET", path);
      test::pumpTurns(&loop_, turns);
      const int seen = ex->sink.callbacks();
      ex->fetch.reset();
      EXPECT_TRUE(drain());
      EXPECT_EQ(ex->sink.callbacks(), seen) << path << " after " << turns << " turns";
      EXPECT_EQ(ex->sink.violations, 0);
    }
  }
  // And from inside onOriginDone.
  auto ex = start("GET", "/index.html");
  ex->sink.on_done = [&] { ex->fetch.reset(); };
  EXPECT_TRUE(drain());
  EXPECT_EQ(ex->sink.dones, 1);
  EXPECT_EQ(openFdCount(), fds_before);
}

TEST_F(DirOriginTest, FetchMayOutliveTheClient) {
  auto ex = start("GET", "/large.bin");
  client_.reset();
  EXPECT_TRUE(pumpUntil([&] { return ex->sink.dones > 0; }));
  EXPECT_EQ(ex->sink.body.size(), kLargeSize);
}

TEST_F(DirOriginTest, FileShrinkingMidBodyCutsItShort) {
  auto ex = start("GET", "/large.bin");
  ex->sink.on_body = [](std::string_view) { return false; };
  EXPECT_TRUE(drain());
  ASSERT_EQ(ex->sink.body_calls, 1);
  fs::resize_file(root_ / "large.bin", kChunk);  // exactly what was already read
  ex->sink.on_body = nullptr;
  ex->fetch->resume();
  EXPECT_TRUE(pumpUntil([&] { return ex->sink.dones > 0; }));
  EXPECT_EQ(ex->sink.head.status, 200);
  EXPECT_EQ(ex->sink.error, FetchError::Internal);
  EXPECT_EQ(ex->sink.body.size(), kChunk);
}

TEST_F(DirOriginTest, OtherMethods) {
  auto post = run("POST", "/index.html");
  EXPECT_EQ(post->sink.head.status, 405);
  EXPECT_EQ(post->sink.header("Allow"), "GET, HEAD");
  EXPECT_EQ(post->sink.body.find("hello"), std::string::npos);
  post->fetch->sendBody("ignored");  // harmless after the answer
  post->fetch->endBody();
  EXPECT_EQ(post->fetch->pendingBodyBytes(), 0u);

  auto del = run("DELETE", "/index.html");
  EXPECT_EQ(del->sink.head.status, 405);

  auto options = run("OPTIONS", "/index.html");
  EXPECT_EQ(options->sink.head.status, 204);
  EXPECT_EQ(options->sink.header("Allow"), "GET, HEAD");
  EXPECT_EQ(options->sink.body_calls, 0);
}

TEST_F(DirOriginTest, SpecialFilesAreNotServed) {
  ASSERT_EQ(mkfifo((root_ / "pipe").c_str(), 0600), 0);
  auto ex = get("/pipe");  // must neither hang a threadpool thread nor serve
  EXPECT_EQ(ex->sink.head.status, 403);
}

TEST_F(DirOriginTest, UnresolvableRootAnswers500) {
  DirOriginClient broken(&loop_, conf::DirOrigin{(base_ / "no-such-dir").string()});
  EXPECT_TRUE(broken.root().empty());
  auto ex = start("GET", "/index.html", {}, &broken);
  EXPECT_TRUE(pumpUntil([&] { return ex->sink.dones > 0; }));
  EXPECT_EQ(ex->sink.head.status, 500);
  EXPECT_EQ(ex->sink.error, FetchError::None);
}

}  // namespace
}  // namespace portico::origin
