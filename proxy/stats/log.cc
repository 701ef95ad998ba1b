#include "proxy/stats/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>

namespace portico::proxy {
namespace {
std::mutex stderr_mu;

void writeAll(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n <= 0) return;  // a broken log sink must never take the proxy down
    off += static_cast<std::size_t>(n);
  }
}
}  // namespace

std::string isoTimeNow() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

void logEvent(std::string_view level, std::string_view msg, nlohmann::json fields) {
  nlohmann::json line = nlohmann::json::object();
  line["time"] = isoTimeNow();
  line["level"] = level;
  line["msg"] = msg;
  if (fields.is_object()) {
    for (auto it = fields.begin(); it != fields.end(); ++it) line[it.key()] = it.value();
  }
  std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::lock_guard<std::mutex> lock(stderr_mu);
  writeAll(STDERR_FILENO, text);
}

std::shared_ptr<AccessLog> AccessLog::open(const std::string& spec, std::string& error) {
  if (spec == "off") return std::shared_ptr<AccessLog>(new AccessLog(spec, -1, false));
  if (spec == "-" || spec.empty()) {
    return std::shared_ptr<AccessLog>(new AccessLog(spec, STDOUT_FILENO, false));
  }
  int fd = ::open(spec.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    error = "cannot open access log " + spec;
    return nullptr;
  }
  return std::shared_ptr<AccessLog>(new AccessLog(spec, fd, true));
}

AccessLog::~AccessLog() {
  if (owns_ && fd_ >= 0) ::close(fd_);
}

void AccessLog::write(const nlohmann::json& line) {
  if (fd_ < 0) return;
  std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::lock_guard<std::mutex> lock(mu_);
  writeAll(fd_, text);
}

}  // namespace portico::proxy
