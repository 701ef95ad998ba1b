#include "origin/origin_client.h"

namespace portico::origin {

std::string_view toString(FetchError e) {
  switch (e) {
    case FetchError::None: return "none";
    case FetchError::ConnectFailed: return "connect_failed";
    case FetchError::Timeout: return "timeout";
    case FetchError::BadResponse: return "bad_response";
    case FetchError::FunctionError: return "function_error";
    case FetchError::NotFound: return "not_found";
    case FetchError::Internal: return "internal";
  }
  return "unknown";
}

}  // namespace portico::origin
