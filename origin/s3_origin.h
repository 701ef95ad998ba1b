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
// S3's answers, mapped for a site (CloudFront in front of a bucket):
//   2xx, 304            delivered as they are, minus S3's own fields: x-amz-request-id,
//                       x-amz-id-2 and every other x-amz-* (x-amz-meta-* user metadata too,
//                       unless expose_metadata = true).
//   4xx                 the same status, with a short plain-text body instead of S3's XML error
//                       document (which names the bucket, the key, the request id and, for
//                       signature errors, the string that was signed: never shown to clients).
//                       403 AccessDenied is what S3 answers for a missing key when the
//                       credentials may not list the bucket: sites map it with an error page.
//   3xx (not 304), 5xx  502 (504 when S3 itself said 504) with a plain body: the store failed or
//                       is misconfigured (a 301 PermanentRedirect means the wrong region or
//                       endpoint). The pipeline serves a stale copy instead where one may be.
//   no answer           FetchError as for any http fetch (502 / 504 upstream of here).
//
// Everything else (threading, callbacks, errors, backpressure) is the http machinery's:
// origin/http_origin.h.
#include <string>
#include <string_view>

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

  // The status and plain-text body a client gets for S3's answer `status` (2xx and 304: itself,
  // no body). Exposed for tests.
  static int mappedStatus(int status);

  static constexpr const char* kEmptyPayloadSha256 =
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

 private:
  CurlMulti& multi_;
  conf::S3Origin cfg_;
  std::string access_key_;
  std::string secret_key_;
};

}  // namespace portico::origin
