#include "proxy/api/stage_vars.h"

#include <algorithm>

namespace portico::proxy {
namespace {

constexpr std::string_view kPrefix = "${stageVariables.";

bool isNameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

// One step of the scanner over `text` from `pos`.
struct Piece {
  enum class Kind { Literal, Reference, Malformed, End };
  Kind kind = Kind::End;
  std::string_view text;  // Literal: the text; Reference: the name
  std::size_t offset = 0;  // where the piece starts in the whole text
  std::size_t next = 0;    // where the next piece starts
};

Piece nextPiece(std::string_view text, std::size_t pos) {
  Piece p;
  p.offset = pos;
  if (pos >= text.size()) return p;
  const std::size_t ref = text.find(kPrefix, pos);
  if (ref != pos) {
    const std::size_t end = ref == std::string_view::npos ? text.size() : ref;
    p.kind = Piece::Kind::Literal;
    p.text = text.substr(pos, end - pos);
    p.next = end;
    return p;
  }
  const std::size_t name_begin = pos + kPrefix.size();
  std::size_t i = name_begin;
  while (i < text.size() && isNameChar(text[i])) ++i;
  if (i == name_begin || i >= text.size() || text[i] != '}') {
    // Resume right after the prefix, so that later references are still seen.
    p.kind = Piece::Kind::Malformed;
    p.next = name_begin;
    return p;
  }
  p.kind = Piece::Kind::Reference;
  p.text = text.substr(name_begin, i - name_begin);
  p.next = i + 1;
  return p;
}

std::string malformedError(std::size_t offset) {
  return "malformed stage variable reference at offset " + std::to_string(offset) +
         ": expected \"${stageVariables.<name>}\" with a name of letters, digits and '_'";
}

}  // namespace

std::optional<std::string> substituteStageVariables(std::string_view text,
                                                    const std::map<std::string, std::string>& variables,
                                                    std::string& error,
                                                    std::string_view stage_name) {
  std::string out;
  out.reserve(text.size());
  for (Piece p = nextPiece(text, 0); p.kind != Piece::Kind::End; p = nextPiece(text, p.next)) {
    switch (p.kind) {
      case Piece::Kind::Literal:
        out += p.text;
        break;
      case Piece::Kind::Reference: {
        auto it = variables.find(std::string(p.text));
        if (it == variables.end()) {
          error = "stage variable \"" + std::string(p.text) + "\" is not defined";
          if (!stage_name.empty()) error += " in stage \"" + std::string(stage_name) + "\"";
          return std::nullopt;
        }
        out += it->second;
        break;
      }
      case Piece::Kind::Malformed:
        error = malformedError(p.offset);
        return std::nullopt;
      case Piece::Kind::End:
        break;
    }
  }
  return out;
}

bool hasStageVariables(std::string_view text) { return text.find(kPrefix) != std::string_view::npos; }

std::vector<std::string> referencedStageVariables(std::string_view text) {
  std::vector<std::string> names;
  for (Piece p = nextPiece(text, 0); p.kind != Piece::Kind::End; p = nextPiece(text, p.next)) {
    if (p.kind != Piece::Kind::Reference) continue;
    if (std::find(names.begin(), names.end(), p.text) == names.end()) names.emplace_back(p.text);
  }
  return names;
}

bool checkStageVariableSyntax(std::string_view text, std::string& error) {
  for (Piece p = nextPiece(text, 0); p.kind != Piece::Kind::End; p = nextPiece(text, p.next)) {
    if (p.kind == Piece::Kind::Malformed) {
      error = malformedError(p.offset);
      return false;
    }
  }
  return true;
}

}  // namespace portico::proxy
