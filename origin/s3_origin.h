#pragma once
// The `s3` origin (conf::S3Origin): an object store spoken to over plain HTTP, path-style:
//
//   GET|HEAD {endpoint}/{bucket}{path}
//   signed with AWS Signature V4 by libcurl (CURLOPT_AWS_SIGV4 "aws:amz:{region}:s3"), with
//   x-amz-content-sha256 set to the SHA-256 of the empty payload (S3 wants the header; GET and
//   HEAD carry no body).
//
// Credentials come from the environment variables named by access_key_env / secret_key_env,
// read once when the client is built (secrets never live in the conf). When either is unset or
// empty, requests go unsigned (a public bucket).
//
// What is forwarded: the method (HEAD stays HEAD, every other method is fetched as GET: a
// static site reads objects, it never writes them), the path, and only the validator and range
// headers (Range, If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since). The query
// string is NOT forwarded: S3 reads sub-resources from it (?acl, ?list-type=2, ?versions...),
// which a client must not reach through the edge. A request body is ignored.
//
// Everything else (threading, callbacks, errors, backpressure) is the http machinery's:
// origin/http_origin.h. S3's own answers (403, 404, 304, 206) are delivered as heads.
#include <string>

#include "conf/config.h"
#include "origin/curl_multi.h"
#include "origin/origin_client.h"

namespace portico::origin {

class S3OriginClient : public OriginClient {
 public:
  // `multi` must outlive every Fetch this client returns (it is the worker's).
  S3OriginClient(CurlMulti& multi, conf::S3Origin cfg);

  // OriginClient
  FetchPtr fetch(OriginRequest request, ResponseSink& sink) override;

  // {endpoint}/{bucket}{path} (path-style addressing).
  std::string objectUrl(const std::string& path) const;
  bool signs() const { return !access_key_.empty() && !secret_key_.empty(); }

  static constexpr const char* kEmptyPayloadSha256 =
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

 private:
  CurlMulti& multi_;
  conf::S3Origin cfg_;
  std::string access_key_;
  std::string secret_key_;
};

}  // namespace portico::origin
