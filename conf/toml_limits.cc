#include "conf/toml_limits.h"

namespace portico::conf {

std::string checkTomlLimits(std::string_view text, int& line, const TomlLimits& limits) {
  line = 0;
  if (text.size() > limits.max_bytes) {
    return "file is larger than " + std::to_string(limits.max_bytes) + " bytes";
  }
  enum class State { Normal, Comment, Basic, Literal, MultiBasic, MultiLiteral };
  State state = State::Normal;
  int depth = 0;
  int dots = 0;
  line = 1;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const std::string_view rest = text.substr(i);
    if (c == '\n') {
      ++line;
      dots = 0;
      if (state == State::Comment || state == State::Basic || state == State::Literal) state = State::Normal;
      continue;
    }
    switch (state) {
      case State::Normal:
        if (c == '#') {
          state = State::Comment;
        } else if (rest.starts_with("\"\"\"")) {
          state = State::MultiBasic;
          i += 2;
        } else if (rest.starts_with("'''")) {
          state = State::MultiLiteral;
          i += 2;
        } else if (c == '"') {
          state = State::Basic;
        } else if (c == '\'') {
          state = State::Literal;
        } else if (c == '[' || c == '{') {
          if (++depth > limits.max_nesting)
            return "arrays/tables nested deeper than " + std::to_string(limits.max_nesting) + " levels";
        } else if (c == ']' || c == '}') {
          if (depth > 0) --depth;
        } else if (c == '.') {
          if (++dots > limits.max_dots_per_line)
            return "more than " + std::to_string(limits.max_dots_per_line) + " dotted key parts on one line";
        }
        break;
      case State::Comment:
        break;
      case State::Basic:
        if (c == '\\') ++i;  // skip the escaped character (an escaped newline is a syntax error anyway)
        else if (c == '"') state = State::Normal;
        break;
      case State::Literal:
        if (c == '\'') state = State::Normal;
        break;
      case State::MultiBasic:
        if (c == '\\' && i + 1 < text.size() && text[i + 1] != '\n') ++i;
        else if (rest.starts_with("\"\"\"")) {
          state = State::Normal;
          i += 2;
        }
        break;
      case State::MultiLiteral:
        if (rest.starts_with("'''")) {
          state = State::Normal;
          i += 2;
        }
        break;
    }
  }
  line = 0;
  return {};
}

}  // namespace portico::conf
