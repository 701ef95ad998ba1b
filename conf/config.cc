#include "conf/config.h"

namespace portico::conf {

std::string ListenAddress::toString() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::string_view OriginConfig::typeName() const {
  switch (spec.index()) {
    case 0: return "dir";
    case 1: return "s3";
    case 2: return "lambda";
    case 3: return "http";
  }
  return "unknown";
}

}  // namespace portico::conf
