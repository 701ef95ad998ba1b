#include "origin/s3_origin.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <utility>

#include "origin/http_origin.h"
#include "proxy/core/header_map.h"

namespace portico::origin {
namespace {

constexpr std::array<std::string_view, 5> kForwarded = {"Range", "If-Match", "If-None-Match",
                                                        "If-Modified-Since", "If-Unmodified-Since"};

bool isS3Field(std::string_view name, bool expose_metadata) {
  if (name.size() < 6 || !core::iequals(name.substr(0, 6), "x-amz-")) return false;
  return !(expose_metadata && name.size() > 11 && core::iequals(name.substr(0, 11), "x-amz-meta-"));
}

// One S3 exchange: the http fetch underneath, with S3's answer mapped on the way to the sink
// (see s3_origin.h). Same contract as any Fetch; the inner fetch is destroyed with this one,
// so no callback reaches the sink after destruction.
class S3Fetch final : public Fetch, private ResponseSink {
 public:
  S3Fetch(ResponseSink& sink, bool expose_metadata, bool head_only)
      : sink_(sink), expose_metadata_(expose_metadata), head_only_(head_only) {}
  void start(CurlMulti& multi, HttpFetchSpec spec) {
    inner_ = startHttpFetch(multi, std::move(spec), *this);
  }

  void sendBody(std::string_view chunk) override { inner_->sendBody(chunk); }
  void endBody() override { inner_->endBody(); }
  std::size_t pendingBodyBytes() const override { return inner_->pendingBodyBytes(); }
  void resume() override { inner_->resume(); }

 private:
  void onOriginHead(core::ResponseHead head) override {
    const int status = S3OriginClient::mappedStatus(head.status);
    if (status == head.status && (status < 300 || status == 304)) {
      auto& fields = head.headers.entries();
      std::erase_if(fields, [&](const auto& f) { return isS3Field(f.name, expose_metadata_); });
      sink_.onOriginHead(std::move(head));
      return;
    }
    // S3's error document is dropped; the client gets the status and a line of text.
    replaced_ = true;
    core::ResponseHead out;
    out.status = status;
    replacement_ = std::to_string(status) + " " + std::string(core::reasonPhrase(status)) + "\n";
    out.headers.add("Content-Type", "text/plain; charset=utf-8");
    out.headers.add("Content-Length", std::to_string(replacement_.size()));
    if (auto date = head.headers.get("date")) out.headers.add("Date", *date);
    sink_.onOriginHead(std::move(out));
  }
  bool onOriginBody(std::string_view chunk) override {
    return replaced_ ? true : sink_.onOriginBody(chunk);
  }
  void onOriginDone(FetchError error) override {
    if (replaced_) {
      // The replacement is complete whatever became of S3's XML body.
      if (!head_only_) sink_.onOriginBody(replacement_);
      sink_.onOriginDone(FetchError::None);
      return;
    }
    sink_.onOriginDone(error);
  }
  void onRequestBodyDrained() override { sink_.onRequestBodyDrained(); }

  ResponseSink& sink_;
  const bool expose_metadata_;
  const bool head_only_;
  bool replaced_ = false;
  std::string replacement_;
  FetchPtr inner_;
};

std::string fromEnv(const std::string& name) {
  if (name.empty()) return {};
  const char* v = std::getenv(name.c_str());
  return v == nullptr ? std::string() : std::string(v);
}

}  // namespace

S3OriginClient::S3OriginClient(CurlMulti& multi, conf::S3Origin cfg)
    : multi_(multi),
      cfg_(std::move(cfg)),
      access_key_(fromEnv(cfg_.access_key_env)),
      secret_key_(fromEnv(cfg_.secret_key_env)) {}

std::string S3OriginClient::objectUrl(const std::string& path) const {
  return joinUrl(joinUrl(cfg_.endpoint, "/" + cfg_.bucket, ""), path, "");
}

FetchPtr S3OriginClient::fetch(OriginRequest request, ResponseSink& sink) {
  HttpFetchSpec spec;
  spec.url = objectUrl(request.path);
  spec.method = request.head.isHead() ? "HEAD" : "GET";
  for (std::string_view name : kForwarded) {
    for (std::string_view v : request.head.headers.getAll(name)) spec.headers.add(name, v);
  }
  spec.headers.add("x-amz-content-sha256", kEmptyPayloadSha256);
  spec.timeout_ms = cfg_.timeout_ms;
  spec.connect_timeout_ms = std::min<std::uint64_t>(cfg_.timeout_ms, 2000);
  if (signs()) {
    spec.aws_sigv4 = "aws:amz:" + cfg_.region + ":s3";
    spec.aws_access_key = access_key_;
    spec.aws_secret_key = secret_key_;
  }
  auto fetch = std::make_unique<S3Fetch>(sink, cfg_.expose_metadata, spec.method == "HEAD");
  fetch->start(multi_, std::move(spec));
  return fetch;
}

int S3OriginClient::mappedStatus(int status) {
  if ((status >= 200 && status < 300) || status == 304) return status;
  if (status >= 400 && status < 500) return status;
  return status == 504 ? 504 : 502;
}

}  // namespace portico::origin
