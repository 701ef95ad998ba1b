#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "proxy/api/stage_vars.h"

namespace portico::proxy {
namespace {

const std::map<std::string, std::string> kVars = {
    {"host", "billing.internal:8443"},
    {"env", "prod"},
    {"fn_Name2", "bill-handler"},
    {"tricky", "${stageVariables.env}"},
    {"dollar", "$"},
    {"empty", ""},
};

std::optional<std::string> sub(std::string_view text, std::string* error_out = nullptr) {
  std::string error;
  std::optional<std::string> out = substituteStageVariables(text, kVars, error, "prod");
  if (error_out) *error_out = error;
  if (out) {
    EXPECT_TRUE(error.empty()) << error;  // success leaves `error` untouched
  }
  return out;
}

TEST(StageVars, NoReferenceIsUnchanged) {
  EXPECT_EQ(sub("http://billing.example.test/v1"), "http://billing.example.test/v1");
  EXPECT_EQ(sub(""), "");
  EXPECT_FALSE(hasStageVariables("http://billing.example.test/v1"));
  EXPECT_TRUE(referencedStageVariables("http://billing.example.test/v1").empty());
}

TEST(StageVars, OneReference) {
  EXPECT_EQ(sub("https://${stageVariables.host}/bills"), "https://billing.internal:8443/bills");
  EXPECT_EQ(sub("${stageVariables.fn_Name2}"), "bill-handler");
  EXPECT_EQ(sub("a${stageVariables.empty}b"), "ab");
  EXPECT_TRUE(hasStageVariables("https://${stageVariables.host}/bills"));
}

TEST(StageVars, SeveralAndRepeatedReferences) {
  EXPECT_EQ(sub("http://${stageVariables.host}/${stageVariables.env}/x?e=${stageVariables.env}"),
            "http://billing.internal:8443/prod/x?e=prod");
  EXPECT_EQ(referencedStageVariables("${stageVariables.env}/${stageVariables.host}/${stageVariables.env}"),
            (std::vector<std::string>{"env", "host"}));
}

TEST(StageVars, AdjacentReferences) {
  EXPECT_EQ(sub("${stageVariables.env}${stageVariables.fn_Name2}"), "prodbill-handler");
  EXPECT_EQ(sub("${stageVariables.env}-${stageVariables.env}"), "prod-prod");
}

TEST(StageVars, UnknownVariableIsAnError) {
  std::string error;
  EXPECT_FALSE(sub("http://${stageVariables.host}/${stageVariables.region}", &error).has_value());
  EXPECT_EQ(error, "stage variable \"region\" is not defined in stage \"prod\"");

  std::string no_stage;
  EXPECT_FALSE(substituteStageVariables("${stageVariables.x}", {}, no_stage).has_value());
  EXPECT_EQ(no_stage, "stage variable \"x\" is not defined");
}

TEST(StageVars, NamesAreCaseSensitive) {
  std::string error;
  EXPECT_FALSE(sub("${stageVariables.ENV}", &error).has_value());
  EXPECT_NE(error.find("\"ENV\""), std::string::npos);
  // "stageVariables" itself is case-sensitive: another spelling is literal text.
  EXPECT_EQ(sub("${StageVariables.env}"), "${StageVariables.env}");
}

TEST(StageVars, MalformedReferencesAreErrors) {
  for (std::string_view text : {"http://${stageVariables.host", "${stageVariables.", "${stageVariables.}",
                                "x/${stageVariables.my-var}", "${stageVariables.a b}",
                                "${stageVariables.host.name}", "${stageVariables.${stageVariables.env}}"}) {
    std::string error;
    EXPECT_FALSE(sub(text, &error).has_value()) << text;
    EXPECT_NE(error.find("malformed stage variable reference at offset"), std::string::npos) << text;
    std::string syntax_error;
    EXPECT_FALSE(checkStageVariableSyntax(text, syntax_error)) << text;
    EXPECT_EQ(syntax_error, error) << text;
    EXPECT_TRUE(hasStageVariables(text)) << text;
  }
  std::string error;
  EXPECT_FALSE(sub("ok ${stageVariables.env} then ${stageVariables.", &error).has_value());
  EXPECT_NE(error.find("offset 30"), std::string::npos) << error;
}

TEST(StageVars, ReferencesAfterAMalformedOneAreStillListed) {
  EXPECT_EQ(referencedStageVariables("${stageVariables.bad-name} ${stageVariables.env}"),
            (std::vector<std::string>{"env"}));
  EXPECT_EQ(referencedStageVariables("${stageVariables.${stageVariables.env}}"),
            (std::vector<std::string>{"env"}));
}

TEST(StageVars, OtherDollarSyntaxIsLiteral) {
  EXPECT_EQ(sub("$"), "$");
  EXPECT_EQ(sub("price$5"), "price$5");
  EXPECT_EQ(sub("${"), "${");
  EXPECT_EQ(sub("${other}"), "${other}");
  EXPECT_EQ(sub("$stageVariables.env"), "$stageVariables.env");  // mapping-template form
  EXPECT_EQ(sub("$${stageVariables.env}"), "$prod");
  std::string error;
  EXPECT_TRUE(checkStageVariableSyntax("${other} $ ${", error));
  EXPECT_FALSE(hasStageVariables("${other} $ ${"));
}

TEST(StageVars, ValuesAreNotExpandedAgain) {
  EXPECT_EQ(sub("x/${stageVariables.tricky}/y"), "x/${stageVariables.env}/y");
  EXPECT_EQ(sub("${stageVariables.dollar}{stageVariables.env}"), "${stageVariables.env}");
}

TEST(StageVars, ErrorUntouchedOnSuccess) {
  std::string error = "previous";
  EXPECT_EQ(substituteStageVariables("${stageVariables.env}", kVars, error), "prod");
  EXPECT_EQ(error, "previous");
}

}  // namespace
}  // namespace portico::proxy
