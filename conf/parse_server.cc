// Section readers for [server] (+ [server.tls]), [admin], [cache] and [origins.*].
#include <cstdlib>
#include <filesystem>

#include "conf/parse_sections.h"
#include "conf/redis_url.h"
#include "conf/value_checks.h"

namespace portico::conf {

namespace {

constexpr std::int64_t kMaxWorkers = 1024;

void readTls(TableReader& t, ParseContext& ctx, TlsConfig& tls) {
  if (t.require("listen") && t.getListenList("listen", tls.listen) && tls.listen.empty()) {
    t.error("listen", "must list at least one address");
  }
  if (t.require("certificates")) {
    std::vector<TableReader> certs = t.tableArray("certificates");
    if (certs.empty() && t.has("certificates")) t.error("certificates", "must list at least one { cert, key }");
    for (TableReader& c : certs) {
      TlsCertificate cert;
      cert.line = c.line();
      for (const char* key : {"cert", "key"}) {
        std::string file;
        if (!c.requireString(key, file)) continue;
        file = resolvePath(ctx.base_dir, file);
        if (std::string why = checkReadableFile(file); !why.empty()) c.error(key, why);
        (std::string_view(key) == "cert" ? cert.cert : cert.key) = file;
      }
      tls.certificates.push_back(std::move(cert));
    }
  }
  if (t.getString("min_version", tls.min_version) && tls.min_version != "TLSv1.2" &&
      tls.min_version != "TLSv1.3") {
    t.error("min_version", "must be \"TLSv1.2\" or \"TLSv1.3\"");
  }
  t.getBool("redirect_http", tls.redirect_http);
  t.getInt("hsts_max_age_s", tls.hsts_max_age_s, 0, kMaxTtlSeconds);
}

void checkAccessLog(TableReader& t, ParseContext& ctx, std::string& access_log) {
  if (access_log == "-" || access_log == "off") return;
  if (access_log.empty()) {
    t.error("access_log", "must be \"-\" (stdout), \"off\" or a file path");
    return;
  }
  access_log = resolvePath(ctx.base_dir, access_log);
  const std::filesystem::path parent = std::filesystem::path(access_log).parent_path();
  std::error_code ec;
  if (!std::filesystem::is_directory(parent, ec)) {
    t.error("access_log", "directory does not exist: " + parent.string());
  }
}

// The same explicit address twice would fail at bind time with a less helpful message.
void checkDuplicateListeners(TableReader& t, const ServerConfig& s) {
  std::set<std::string> seen;
  auto check = [&](const ListenAddress& a, const char* key) {
    if (a.port == 0) return;  // port 0: each bind gets its own port
    if (!seen.insert(a.toString()).second) t.error(key, "listen address " + a.toString() + " appears twice");
  };
  for (const ListenAddress& a : s.listen) check(a, "listen");
  if (s.tls) {
    for (const ListenAddress& a : s.tls->listen) check(a, "tls");
  }
}

}  // namespace

void readServer(TableReader& root, ParseContext& ctx) {
  ServerConfig& s = ctx.config.server;
  if (!root.require("server")) return;
  std::optional<TableReader> t = root.table("server");
  if (!t) return;
  t->getInt("workers", s.workers, 0, kMaxWorkers);
  const bool listen_ok = t->getListenList("listen", s.listen);
  t->getSize("max_header_bytes", s.max_header_bytes, 1024, 1 << 20);
  t->getSize("max_body_bytes", s.max_body_bytes, 1);
  t->getUint("header_timeout_ms", s.header_timeout_ms, 1);
  t->getUint("idle_timeout_ms", s.idle_timeout_ms, 1);
  t->getUint("drain_timeout_ms", s.drain_timeout_ms, 1);
  if (t->getString("access_log", s.access_log)) checkAccessLog(*t, ctx, s.access_log);
  if (std::optional<TableReader> tls = t->table("tls")) {
    s.tls.emplace();
    readTls(*tls, ctx, *s.tls);
  }
  const bool any_tls_listener = s.tls && !s.tls->listen.empty();
  // (An invalid listen entry or [server.tls] was reported already: no derived error.)
  if ((listen_ok || !t->has("listen")) && s.listen.empty() && !any_tls_listener && !t->has("tls")) {
    t->error("listen", "at least one listener is required (server.listen or server.tls.listen)");
  }
  if (s.tls && s.tls->redirect_http && s.listen.empty()) {
    ctx.diag.warning(t->lineOf("tls"), "server.tls.redirect_http",
                     "is true but there is no plain-HTTP listener to redirect");
  }
  checkDuplicateListeners(*t, s);
}

void readAdmin(TableReader& root, ParseContext& ctx) {
  AdminConfig& a = ctx.config.admin;
  std::optional<TableReader> t = root.table("admin");
  if (!t) return;
  ListenAddress listen;
  if (t->getListen("listen", listen)) a.listen = listen;
  if (t->getString("token_env", a.token_env) && a.token_env.empty()) {
    t->error("token_env", "must name an environment variable");
  }
  if (a.listen && !a.token_env.empty() && std::getenv(a.token_env.c_str()) == nullptr) {
    t->warning("token_env", "environment variable " + a.token_env + " is not set: POST /purge will be refused");
  }
}

void readCache(TableReader& root, ParseContext& ctx) {
  CacheConfig& c = ctx.config.cache;
  std::optional<TableReader> t = root.table("cache");
  if (!t) return;
  t->getSize("memory", c.memory, 1);
  t->getSize("max_object", c.max_object, 1);
  std::optional<RedisUrl> url;
  if (t->getString("redis", c.redis) && !c.redis.empty()) {
    std::string why;
    url = parseRedisUrl(c.redis, why);
    if (!url) t->error("redis", "must be \"\" (off) or a redis://host:port[/db] URL: " + why);
  }
  t->getSize("redis_max_object", c.redis_max_object, 1);
  if (t->getString("redis_password_env", c.redis_password_env) && !c.redis_password_env.empty() &&
      !c.redis.empty() && std::getenv(c.redis_password_env.c_str()) == nullptr) {
    t->error("redis_password_env", "environment variable " + c.redis_password_env + " is not set");
  }
  t->getBool("redis_cluster", c.redis_cluster);
  if (c.redis_cluster && url && url->db != 0) {
    t->error("redis_cluster", "a Redis Cluster has only database 0; drop the /db from cache.redis");
  }
  if (c.max_object > c.memory) {
    t->warning("max_object", "is larger than cache.memory: such objects can never be cached in memory");
  }
}

void readOrigins(TableReader& root, ParseContext& ctx) {
  std::optional<TableReader> origins = root.table("origins");
  if (!origins) return;
  for (auto& [name, t] : origins->entries()) {
    ctx.origin_names.insert(name);
    ctx.origin_lines[name] = t.line();
    OriginConfig origin;
    origin.name = name;
    std::string type;
    if (!t.requireString("type", type)) {
      t.acceptAll();
      continue;
    }
    if (type == "dir") {
      DirOrigin d;
      if (t.requireString("root", d.root)) {
        d.root = resolvePath(ctx.base_dir, d.root);
        std::error_code ec;
        if (!std::filesystem::exists(d.root, ec)) t.error("root", "directory does not exist: " + d.root);
        else if (!std::filesystem::is_directory(d.root, ec)) t.error("root", "not a directory: " + d.root);
      }
      origin.spec = std::move(d);
    } else if (type == "s3") {
      S3Origin s3;
      if (t.requireString("endpoint", s3.endpoint)) {
        if (std::string why = checkHttpUrl(s3.endpoint); !why.empty()) t.error("endpoint", why);
      }
      if (t.requireString("bucket", s3.bucket) && s3.bucket.find('/') != std::string::npos) {
        t.error("bucket", "must not contain '/'");
      }
      if (t.getString("region", s3.region) && s3.region.empty()) t.error("region", "must not be empty");
      for (const char* key : {"access_key_env", "secret_key_env"}) {
        std::string& var = std::string_view(key) == "access_key_env" ? s3.access_key_env : s3.secret_key_env;
        const bool present = t.has(key);
        if (!t.getString(key, var) && present) continue;  // wrong type: reported already
        if (var.empty()) {
          t.error(key, "must name an environment variable");
        } else if (std::getenv(var.c_str()) == nullptr) {
          t.error(key, "environment variable " + var + " is not set");
        }
      }
      t.getUint("timeout_ms", s3.timeout_ms, 1);
      t.getBool("expose_metadata", s3.expose_metadata);
      origin.spec = std::move(s3);
    } else if (type == "lambda") {
      LambdaOrigin l;
      if (t.requireString("endpoint", l.endpoint)) {
        if (std::string why = checkHttpUrl(l.endpoint); !why.empty()) t.error("endpoint", why);
      }
      t.requireString("function", l.function);
      t.getUint("timeout_ms", l.timeout_ms, 1);
      origin.spec = std::move(l);
    } else if (type == "http") {
      HttpOrigin h;
      if (t.requireString("endpoint", h.endpoint)) {
        if (std::string why = checkHttpUrl(h.endpoint); !why.empty()) t.error("endpoint", why);
      }
      t.getUint("timeout_ms", h.timeout_ms, 1);
      t.getUint("connect_timeout_ms", h.connect_timeout_ms, 1);
      origin.spec = std::move(h);
    } else {
      t.error("type", "must be one of dir, s3, lambda, http (got \"" + type + "\")");
      t.acceptAll();  // which keys are valid depends on the type
      continue;
    }
    ctx.config.origins.emplace(name, std::move(origin));
  }
}

}  // namespace portico::conf
