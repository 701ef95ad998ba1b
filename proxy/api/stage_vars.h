#pragma once
// Stage variables: "${stageVariables.name}" references in an origin's endpoint or function name,
// replaced by the value the API stage defines (API Gateway's syntax for HTTP integration URIs,
// e.g. "http://${stageVariables.host}/bills" or "fn-${stageVariables.env}").
//
// Syntax, as in API Gateway: a reference is exactly "${stageVariables." + name + "}", where the
// name is one or more of [A-Za-z0-9_] ("Variable names can have alphanumeric and underscore
// characters", API Gateway's Stage reference); "stageVariables" is case-sensitive.
//   - Text that does not start with "${stageVariables." is literal: a lone "$", "${other}",
//     "$stageVariables.x" (the mapping-template form, not valid in URIs) are kept as they are.
//   - Text that starts with "${stageVariables." but is not a complete reference (unterminated,
//     empty name, a character outside [A-Za-z0-9_] before the '}') is an ERROR, not literal text:
//     it is almost certainly a typo, and sending it to an origin would fail later and obscurely.
//   - Substitution is one pass: a value that itself contains "${...}" is inserted verbatim and
//     never expanded again (no recursion, no injection through values).
// All functions are pure and thread-safe. The conf layer checks every stage of every API using
// an origin defines the names referencedStageVariables() returns, so request-time errors are
// the exception; substituteStageVariables() still reports them instead of guessing.
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace portico::proxy {

// `text` with every reference replaced by its value in `variables`. On an unknown variable or a
// malformed reference, returns nullopt and sets `error`, e.g.
//   stage variable "env" is not defined in stage "prod"        (when stage_name is given)
//   malformed stage variable reference at offset 7: ...        (see checkStageVariableSyntax)
// `error` is left untouched on success.
std::optional<std::string> substituteStageVariables(std::string_view text,
                                                    const std::map<std::string, std::string>& variables,
                                                    std::string& error,
                                                    std::string_view stage_name = {});

// True if `text` contains "${stageVariables." at all (well-formed or not): such text needs
// substitution per stage, and substitution may fail.
bool hasStageVariables(std::string_view text);

// Every name referenced by a well-formed reference, deduplicated, in order of first appearance.
// Malformed references are skipped here; checkStageVariableSyntax() reports them.
std::vector<std::string> referencedStageVariables(std::string_view text);

// False (and `error` set) if `text` holds a malformed reference; for conf load-time checks.
bool checkStageVariableSyntax(std::string_view text, std::string& error);

}  // namespace portico::proxy
