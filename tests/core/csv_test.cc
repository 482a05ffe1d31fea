#include "formats/csv.h"

#include <fstream>

#include "core/catch_torch.h"

#include "core/error.h"
#include "core/error_matchers.h"
#include "testing/testing.h"

namespace hpsearch::core {
namespace {

using testing::CoreErrorMessage;

using Catch::Matchers::Contains;

TEST_CASE("ParseCsv reads a header and CRLF records", "[core][csv]") {
  const formats::CsvTable table =
      formats::ParseCsv("text,label\r\nhello,a\r\nworld,b\r\n", "x.csv");
  REQUIRE(table.source == "x.csv");
  REQUIRE(table.columns == std::vector<std::string>{"text", "label"});
  REQUIRE(table.records.size() == 2);
  REQUIRE(table.records[0].fields == std::vector<std::string>{"hello", "a"});
  REQUIRE(table.records[0].line == 2);
  REQUIRE(table.records[1].fields == std::vector<std::string>{"world", "b"});
  REQUIRE(table.records[1].line == 3);
}

TEST_CASE("ParseCsv reads LF records, a missing final newline and lone CR records", "[core][csv]") {
  const std::string input = GENERATE(std::string("t,l\nx,1\ny,2"), std::string("t,l\rx,1\ry,2\r"),
                                     std::string("t,l\nx,1\r\ny,2\n"));
  const formats::CsvTable table = formats::ParseCsv(input, "x.csv");
  REQUIRE(table.records.size() == 2);
  REQUIRE(table.records[1].fields == std::vector<std::string>{"y", "2"});
  REQUIRE(table.records[1].line == 3);
}

TEST_CASE("ParseCsv unquotes doubled quotes and keeps commas inside quotes", "[core][csv]") {
  const formats::CsvTable table = formats::ParseCsv(
      "text,label\n\"he said \"\"hi\"\", then left\",a\n\"\"\"\",b\n\"\",c\n", "q.csv");
  REQUIRE(table.records.size() == 3);
  REQUIRE(table.records[0].fields[0] == "he said \"hi\", then left");
  REQUIRE(table.records[1].fields[0] == "\"");
  REQUIRE(table.records[2].fields[0].empty());
  REQUIRE(table.records[2].fields[1] == "c");
}

TEST_CASE("ParseCsv keeps line breaks inside quotes and counts their lines", "[core][csv]") {
  const formats::CsvTable table = formats::ParseCsv(
      "text,label\r\n\"\nfirst\nsecond\n\",a\r\n\"crlf\r\ninside\",b\r\nlast,c\r\n", "n.csv");
  REQUIRE(table.records.size() == 3);
  REQUIRE(table.records[0].fields[0] == "\nfirst\nsecond\n");
  REQUIRE(table.records[0].line == 2);
  REQUIRE(table.records[1].fields[0] == "crlf\r\ninside");
  REQUIRE(table.records[1].line == 6);
  REQUIRE(table.records[2].line == 8);
}

TEST_CASE("ParseCsv skips a BOM, passes UTF-8 through and does not trim", "[core][csv]") {
  const formats::CsvTable table = formats::ParseCsv(
      "\xEF\xBB\xBFtext,label\n  \xC2\xA3"
      "5 \xE2\x82\xAC ,x\n",
      "u.csv");
  REQUIRE(table.columns[0] == "text");
  REQUIRE(table.records[0].fields[0] ==
          "  \xC2\xA3"
          "5 \xE2\x82\xAC ");
}

TEST_CASE("ParseCsv keeps empty fields and skips blank lines", "[core][csv]") {
  const formats::CsvTable table = formats::ParseCsv("a,b,c\n\n,,\n\r\n1,,3\n\n", "e.csv");
  REQUIRE(table.records.size() == 2);
  REQUIRE(table.records[0].fields == std::vector<std::string>{"", "", ""});
  REQUIRE(table.records[0].line == 3);
  REQUIRE(table.records[1].fields == std::vector<std::string>{"1", "", "3"});
  REQUIRE(table.records[1].line == 5);
}

TEST_CASE("ParseCsv keeps a quote inside an unquoted field literally", "[core][csv]") {
  const formats::CsvTable table = formats::ParseCsv("text,label\na 5\" screen,x\n", "l.csv");
  REQUIRE(table.records[0].fields[0] == "a 5\" screen");
}

TEST_CASE("ParseCsv names file and starting line of an unterminated quote", "[core][csv]") {
  const std::string message = CoreErrorMessage(
      [] { formats::ParseCsv("text,label\nok,a\n\"never\nclosed,b\nmore,c\n", "bad.csv"); },
      ErrorCode::kDataLoss);
  REQUIRE_THAT(message, Contains("bad.csv:3:"));
  REQUIRE_THAT(message, Contains("never closed"));
}

TEST_CASE("ParseCsv names the line and the header of a record with the wrong field count",
          "[core][csv]") {
  const std::string message = CoreErrorMessage(
      [] {
        formats::ParseCsv("text,label\r\nok,a\r\n\"multi\nline\",x\r\none,two,three\r\n",
                          "count.csv");
      },
      ErrorCode::kDataLoss);
  REQUIRE_THAT(message, Contains("count.csv:5:"));
  REQUIRE_THAT(message, Contains("3 fields"));
  REQUIRE_THAT(message, Contains("\"text\", \"label\""));
}

TEST_CASE("ParseCsv says a quote that runs over lines was never closed on its own line",
          "[core][csv]") {
  // The quote opened on line 2 ends at the quote before b on line 3; b then follows it.
  const std::string message =
      CoreErrorMessage([] { formats::ParseCsv("text,label\n\"broken,a\nnext,\"b\"\n", "run.csv"); },
                       ErrorCode::kDataLoss);
  REQUIRE_THAT(message, Contains("run.csv:2:"));
  REQUIRE_THAT(message, Contains("is never closed on it"));
  REQUIRE_THAT(message, Contains("up to line 3"));
}

TEST_CASE("ParseCsv rejects text after a closing quote", "[core][csv]") {
  const std::string message =
      CoreErrorMessage([] { formats::ParseCsv("text,label\n\"quoted\"tail,a\n", "tail.csv"); },
                       ErrorCode::kDataLoss);
  REQUIRE_THAT(message, Contains("tail.csv:2:"));
}

TEST_CASE("ParseCsv rejects an input without a header", "[core][csv]") {
  const std::string input =
      GENERATE(std::string(""), std::string("\xEF\xBB\xBF"), std::string("\r\n\n"));
  REQUIRE_THAT(
      CoreErrorMessage([&] { formats::ParseCsv(input, "empty.csv"); }, ErrorCode::kDataLoss),
      Contains("empty.csv: empty CSV"));
}

TEST_CASE("CsvTable::ColumnIndex finds a column or names the ones that exist", "[core][csv]") {
  const formats::CsvTable table = formats::ParseCsv("text,category\nx,y\n", "c.csv");
  REQUIRE(table.ColumnIndex("category") == 1);
  const std::string message =
      CoreErrorMessage([&] { table.ColumnIndex("label"); }, ErrorCode::kNotFound);
  REQUIRE_THAT(message, Contains("no column \"label\""));
  REQUIRE_THAT(message, Contains("\"text\", \"category\""));
  const formats::CsvTable twice = formats::ParseCsv("a,a\n1,2\n", "d.csv");
  CoreErrorMessage([&] { twice.ColumnIndex("a"); }, ErrorCode::kInvalidArgument);
}

TEST_CASE("ReadCsvFile reads a file and reports a missing one", "[core][csv]") {
  testing::TempDir dir;
  const auto path = dir / "small.csv";
  std::ofstream(path, std::ios::binary) << "text,label\r\n\"a,b\",c\r\n";
  const formats::CsvTable table = formats::ReadCsvFile(path);
  REQUIRE(table.source == path.string());
  REQUIRE(table.records[0].fields == std::vector<std::string>{"a,b", "c"});
  REQUIRE_THAT(
      CoreErrorMessage([&] { formats::ReadCsvFile(dir / "missing.csv"); }, ErrorCode::kNotFound),
      Contains("missing.csv"));
}

}  // namespace
}  // namespace hpsearch::core
