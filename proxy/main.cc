// portico: the edge caching reverse proxy.
//   portico                 run the embedded demo configuration
//   portico -c FILE         run with FILE
//   portico -t [-c FILE]    validate and exit: 0 valid, 1 with "file:line: key: reason" lines
//   portico --version
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include <curl/curl.h>

#include "conf/config_parser.h"
#include "proxy/io/tls_context.h"
#include "proxy/api/api_state.h"
#include "proxy/server.h"
#include "proxy/stats/log.h"

namespace {

void usage(FILE* out) {
  std::fprintf(out,
               "usage: portico [-c FILE] [-t]\n"
               "       portico --version\n"
               "  -c FILE   configuration file (TOML); without it the embedded demo runs\n"
               "  -t        validate the configuration and exit (0 valid, 1 invalid)\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::string conf_path;
  bool test_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--version" || a == "-v") {
      std::printf("portico %s\n", PORTICO_VERSION);
      return 0;
    } else if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else if (a == "-t") {
      test_only = true;
    } else if (a == "-c" && i + 1 < argc) {
      conf_path = argv[++i];
    } else {
      std::fprintf(stderr, "portico: unknown argument: %s\n", a.c_str());
      usage(stderr);
      return 2;
    }
  }

  portico::conf::LoadResult result =
      conf_path.empty()
          ? portico::conf::parseConfig(portico::proxy::kEmbeddedConfig, "<embedded>", "deploy/demo")
          : portico::conf::loadConfigFile(conf_path);
  if (!result.ok()) {
    for (const auto& w : result.warnings) std::fprintf(stderr, "%s\n", w.toString().c_str());
    for (const auto& e : result.errors) std::fprintf(stderr, "%s\n", e.toString().c_str());
    if (result.errors.empty()) std::fprintf(stderr, "%s: invalid configuration\n", conf_path.c_str());
    return 1;
  }
  for (const auto& w : result.warnings) {
    if (test_only) {
      std::fprintf(stderr, "%s\n", w.toString().c_str());
    } else {
      portico::proxy::logEvent("warn", "configuration warning", {{"warning", w.toString()}});
    }
  }
  if (test_only) {
    // Certificates are checked here (conf/ cannot: it uses no OpenSSL): readable, key matches,
    // not expired. At start-up and on reload the same checks run when the snapshot is built.
    // Likewise the authorizers' JWKS files.
    std::vector<portico::conf::ConfigError> tls_errors = portico::proxy::validateTls(*result.config);
    std::vector<portico::conf::ConfigError> key_errors = portico::proxy::validateAuthorizers(*result.config);
    tls_errors.insert(tls_errors.end(), key_errors.begin(), key_errors.end());
    for (const auto& e : tls_errors) std::fprintf(stderr, "%s\n", e.toString().c_str());
    if (!tls_errors.empty()) return 1;
    std::printf("%s: configuration ok\n", conf_path.empty() ? "<embedded>" : conf_path.c_str());
    return 0;
  }

  std::signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  int rc;
  {
    portico::proxy::Server server(result.config, conf_path);
    rc = server.run();
  }
  curl_global_cleanup();
  return rc;
}
