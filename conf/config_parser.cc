// parseConfig / loadConfigFile: TOML text -> validated Config. The TOML is parsed by toml11 in
// one go (a syntax error is the only error then reported); the tree is then read section by
// section (parse_sections.h) with every problem collected, so one run shows all of them.
#include "conf/config_parser.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "conf/parse_sections.h"
#include "conf/toml_limits.h"
#include "conf/value_checks.h"

namespace portico::conf {

namespace {

std::string formatProblem(const std::string& file, int line, const std::string& key, const std::string& reason) {
  std::string r = file;
  if (line > 0) r += ":" + std::to_string(line);
  r += ": ";
  if (!key.empty()) r += key + ": ";
  return r + reason;
}

// toml11's what() is a multi-line, caret-annotated excerpt; its first line carries the reason:
// "[error] toml::parse_array: missing array separator `,` after a value".
std::string syntaxReason(const char* what) {
  std::string s(what);
  s = s.substr(0, s.find('\n'));
  if (s.starts_with("[error] ")) s.erase(0, 8);
  if (s.starts_with("toml::")) {
    const std::size_t colon = s.find(": ");
    if (colon != std::string::npos) s.erase(0, colon + 2);
  }
  return "TOML syntax error: " + s;
}

}  // namespace

std::string ConfigError::toString() const { return formatProblem(file, line, key, reason); }
std::string ConfigWarning::toString() const { return formatProblem(file, line, key, reason); }

void ParseContext::checkOriginRef(TableReader& t, std::string_view key, const std::string& name) {
  if (origin_names.count(name) != 0) {
    used_origins.insert(name);
    return;
  }
  std::string defined;
  for (const std::string& n : origin_names) defined += (defined.empty() ? "" : ", ") + n;
  t.error(key, "unknown origin \"" + name + "\" (defined: " + (defined.empty() ? "none" : defined) + ")");
}

void ParseContext::claimHosts(TableReader& t, std::string_view key, std::vector<std::string>& hosts) {
  if (hosts.empty()) {
    t.error(key, "must list at least one host");
    return;
  }
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    std::string& host = hosts[i];
    host = toLowerAscii(host);
    const std::string path = t.keyPath(key) + "[" + std::to_string(i) + "]";
    if (std::string why = checkHostName(host); !why.empty()) {
      diag.error(t.lineOf(key), path, "\"" + host + "\" " + why);
      continue;
    }
    const auto [it, fresh] = host_owner.emplace(host, t.path());
    if (!fresh) diag.error(t.lineOf(key), path, "host \"" + host + "\" is already served by " + it->second);
  }
}

void ParseContext::claimName(TableReader& t, std::string_view key, const std::string& name) {
  const auto [it, fresh] = name_owner.emplace(name, t.path());
  if (!fresh) t.error(key, "name \"" + name + "\" is already used by " + it->second);
}

LoadResult parseConfig(std::string_view text, const std::string& file_name, const std::string& base_dir) {
  LoadResult result;
  int limit_line = 0;
  if (std::string why = checkTomlLimits(text, limit_line); !why.empty()) {
    result.errors.push_back(ConfigError{file_name, limit_line, "", why});
    return result;
  }
  TomlValue tree;
  try {
    std::istringstream in{std::string(text)};
    tree = toml::parse(in, file_name);
  } catch (const toml::exception& e) {
    result.errors.push_back(ConfigError{file_name, static_cast<int>(e.location().line()), "", syntaxReason(e.what())});
    return result;
  } catch (const std::exception& e) {
    result.errors.push_back(ConfigError{file_name, 0, "", std::string("cannot parse: ") + e.what()});
    return result;
  }

  auto config = std::make_shared<Config>();
  config->source_path = file_name;
  Diagnostics diag(file_name);
  std::error_code ec;
  std::string base = std::filesystem::absolute(base_dir.empty() ? "." : base_dir, ec).lexically_normal().string();
  if (ec) base = base_dir;
  ParseContext ctx{diag, base, *config, {}, {}, {}, {}, {}};
  {
    TableReader root(tree, "", diag);
    readServer(root, ctx);
    readAdmin(root, ctx);
    readCache(root, ctx);
    readOrigins(root, ctx);
    readSites(root, ctx);
    readApis(root, ctx);
    if (config->sites.empty() && config->apis.empty() && !diag.hasErrors()) {
      diag.warning(0, "sites", "no [[sites]] or [[apis]]: every request gets 404");
    }
    for (const auto& [name, origin] : config->origins) {
      if (ctx.used_origins.count(name) == 0) {
        diag.warning(ctx.origin_lines[name], "origins." + name, "defined but not used by any site, behavior or route");
      }
    }
  }  // root's destructor reports unknown top-level keys
  result.errors = diag.takeErrors();
  result.warnings = diag.takeWarnings();
  if (result.errors.empty()) result.config = std::move(config);
  return result;
}

LoadResult loadConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) {
    LoadResult r;
    r.errors.push_back(ConfigError{path, 0, "", "cannot open file"});
    return r;
  }
  std::ostringstream text;
  text << in.rdbuf();
  std::error_code ec;
  const std::filesystem::path abs = std::filesystem::absolute(path, ec);
  const std::string dir = ec ? std::filesystem::path(path).parent_path().string() : abs.parent_path().string();
  return parseConfig(text.str(), path, dir);
}

}  // namespace portico::conf
