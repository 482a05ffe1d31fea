#include "formats/jsonl.h"

#include "core/catch_torch.h"

#include "core/error.h"
#include "core/error_matchers.h"

namespace hpsearch::core {
namespace {

using testing::CoreErrorMessage;

using Catch::Matchers::Contains;

TEST_CASE("ParseJsonRecords reads JSON Lines with their line numbers", "[core][jsonl]") {
  const auto records = formats::ParseJsonRecords(
      "\xEF\xBB\xBF{\"text\": \"a\\nb\", \"label\": 3}\r\n\n{\"text\": \"\xC2\xA3\", \"label\": "
      "\"x\"}",
      "d.jsonl");
  REQUIRE(records.size() == 2);
  REQUIRE(records[0].line == 1);
  REQUIRE(records[0].object["text"] == "a\nb");
  REQUIRE(records[0].object["label"] == 3);
  REQUIRE(records[1].line == 3);
  REQUIRE(records[1].object["text"] == "\xC2\xA3");
}

TEST_CASE("ParseJsonRecords reads a JSON array of objects with their lines", "[core][jsonl]") {
  const auto records = formats::ParseJsonRecords(
      "\n[\n  {\"text\": \"[x], {y}\\\"\", \"label\": 1},\n  {\"text\":\n \"b\"}\n]\n", "a.json");
  REQUIRE(records.size() == 2);
  REQUIRE(records[0].line == 3);
  REQUIRE(records[0].object["text"] == "[x], {y}\"");
  REQUIRE(records[1].line == 4);
  REQUIRE(formats::ParseJsonRecords("[]", "empty.json").empty());
}

TEST_CASE("ParseJsonRecords names file and line of bad records", "[core][jsonl]") {
  REQUIRE_THAT(
      CoreErrorMessage([] { formats::ParseJsonRecords("{\"a\": 1}\n{\"a\": }\n", "bad.jsonl"); },
                       ErrorCode::kDataLoss),
      Contains("bad.jsonl:2: invalid JSON"));
  REQUIRE_THAT(
      CoreErrorMessage([] { formats::ParseJsonRecords("{\"a\": 1}\n\n[1, 2]\n", "list.jsonl"); },
                       ErrorCode::kDataLoss),
      Contains("list.jsonl:3: expected a JSON object"));
  REQUIRE_THAT(
      CoreErrorMessage([] { formats::ParseJsonRecords("[\n{\"a\": 1},\n 7\n]", "arr.json"); },
                       ErrorCode::kDataLoss),
      Contains("arr.json:3: array element 1"));
  REQUIRE_THAT(
      CoreErrorMessage([] { formats::ParseJsonRecords("[\n{\"a\": 1},\n{\"a\": ]", "cut.json"); },
                       ErrorCode::kDataLoss),
      Contains("cut.json:3: invalid JSON"));
}

}  // namespace
}  // namespace hpsearch::core
