#pragma once
// Time as a parameter: policy code takes a Clock (or a time point), never reads the system clock
// itself, so tests move time by hand (style.md G1, G8).
#include <chrono>
#include <cstdint>

namespace portico::core {

using WallTime = std::chrono::system_clock::time_point;
using MonoTime = std::chrono::steady_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual WallTime wallNow() const = 0;
  virtual MonoTime monoNow() const = 0;
};

class SystemClock final : public Clock {
 public:
  WallTime wallNow() const override { return std::chrono::system_clock::now(); }
  MonoTime monoNow() const override { return std::chrono::steady_clock::now(); }
  static const SystemClock& instance() {
    static const SystemClock clock;
    return clock;
  }
};

inline std::int64_t toUnixSeconds(WallTime t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}
inline std::int64_t toUnixMillis(WallTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace portico::core
