#pragma once
// Logs: the error log is JSON lines on stderr ({"time","level","msg",...}); the access log is
// JSON lines on stdout, a file (appended), or off. Both are thread-safe: one write(2) per line
// under a mutex, so lines from different workers never interleave.
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace portico::proxy {

// Writes {"time":..., "level":level, "msg":msg, ...fields} to stderr.
void logEvent(std::string_view level, std::string_view msg, nlohmann::json fields = nlohmann::json::object());

// ISO 8601 UTC with milliseconds, e.g. "2026-11-23T10:00:00.123Z".
std::string isoTimeNow();

class AccessLog {
 public:
  // spec: "-" stdout, "off", or a file path. Returns null and sets `error` if the file cannot
  // be opened.
  static std::shared_ptr<AccessLog> open(const std::string& spec, std::string& error);
  ~AccessLog();
  bool enabled() const { return fd_ >= 0; }
  void write(const nlohmann::json& line);
  const std::string& spec() const { return spec_; }

 private:
  AccessLog(std::string spec, int fd, bool owns) : spec_(std::move(spec)), fd_(fd), owns_(owns) {}
  std::string spec_;
  int fd_;
  bool owns_;
  std::mutex mu_;
};

}  // namespace portico::proxy
