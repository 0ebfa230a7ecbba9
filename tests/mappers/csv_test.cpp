#include "mappers/csv.hpp"

#include <doctest/doctest.h>

#include <charconv>
#include <sstream>
#include <streambuf>

namespace fhirgate::mappers {
namespace {

using Fields = std::vector<std::string>;

std::vector<CsvRecord> read_all(std::string_view text, CsvOptions options = {}) {
  std::istringstream in{std::string(text)};
  CsvReader reader(in, options);
  std::vector<CsvRecord> records;
  CsvRecord record;
  while (reader.next(record)) records.push_back(record);
  return records;
}

CsvOptions with_delimiter(char delimiter) {
  CsvOptions options;
  options.delimiter = delimiter;
  return options;
}

CsvOptions with_max_record_bytes(std::size_t max) {
  CsvOptions options;
  options.max_record_bytes = max;
  return options;
}

CsvOptions windows1252() {
  CsvOptions options;
  options.encoding = TextEncoding::windows1252;
  return options;
}

// One record "p,aaa...\n" of exactly `size` bytes (size >= 3), to place what follows at a chosen offset.
std::string filler_record(std::size_t size) {
  return "p," + std::string(size - 3, 'a') + "\n";
}

// Serves "<i>,client <i>,2024-01-01\n" for i in [0, rows), a batch of rows per underflow, so a feed of any
// size can be read without holding it.
class GeneratedCsv : public std::streambuf {
 public:
  explicit GeneratedCsv(std::size_t rows) : rows_(rows) {}

 protected:
  int_type underflow() override {
    if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
    if (next_row_ == rows_) return traits_type::eof();
    batch_.clear();
    for (int n = 0; n < 100 && next_row_ < rows_; ++n, ++next_row_) {
      char digits[24];
      const auto end = std::to_chars(digits, digits + sizeof digits, next_row_).ptr;
      const std::string_view id(digits, static_cast<std::size_t>(end - digits));
      batch_ += id;
      batch_ += ",client ";
      batch_ += id;
      batch_ += ",2024-01-01\n";
    }
    setg(batch_.data(), batch_.data(), batch_.data() + batch_.size());
    return traits_type::to_int_type(*gptr());
  }

 private:
  std::size_t rows_;
  std::size_t next_row_ = 0;
  std::string batch_;
};

TEST_CASE("csv: quoted fields keep embedded delimiters, escaped quotes and line breaks") {
  const auto records = read_all(
      "id,text\r\n"
      "1,\"a, b\"\r\n"
      "2,\"say \"\"hi\"\"\"\r\n"
      "3,\"two\r\nlines\"\r\n"
      "4,\"lf\nonly\",x\n"
      "5,\"\"\n");
  REQUIRE(records.size() == 6);
  for (const auto& record : records) CHECK(record.error == "");
  CHECK(records[0].fields == Fields{"id", "text"});
  CHECK(records[1].fields == Fields{"1", "a, b"});
  CHECK(records[2].fields == Fields{"2", "say \"hi\""});
  CHECK(records[3].fields == Fields{"3", "two\r\nlines"});
  CHECK(records[4].fields == Fields{"4", "lf\nonly", "x"});
  CHECK(records[5].fields == Fields{"5", ""});
}

TEST_CASE("csv: a byte order mark at the very start is removed, in either encoding") {
  for (const CsvOptions& options : {CsvOptions{}, windows1252()}) {
    const auto records = read_all(
        "\xEF\xBB\xBF"
        "name,x\nb,y\n",
        options);
    REQUIRE(records.size() == 2);
    CHECK(records[0].fields == Fields{"name", "x"});
    CHECK(records[0].error == "");
    CHECK(records[0].line == 1);
  }
  const auto later = read_all(
      "a\n\xEF\xBB\xBF"
      "b\n");
  REQUIRE(later.size() == 2);
  CHECK(later[1].fields == Fields{"\xEF\xBB\xBF"
                                  "b"});
}

TEST_CASE("csv: records end at CRLF, LF or a lone CR") {
  const auto records = read_all("a,1\r\nb,2\nc,3\rd,4\r\n");
  REQUIRE(records.size() == 4);
  CHECK(records[0].fields == Fields{"a", "1"});
  CHECK(records[1].fields == Fields{"b", "2"});
  CHECK(records[2].fields == Fields{"c", "3"});
  CHECK(records[3].fields == Fields{"d", "4"});
  for (std::size_t k = 0; k < records.size(); ++k) {
    CHECK(records[k].line == k + 1);
    CHECK(records[k].end_line == k + 1);
  }

  const auto lf_then_cr = read_all("a\n\rb");
  REQUIRE(lf_then_cr.size() == 2);
  CHECK(lf_then_cr[1].fields == Fields{"b"});
  CHECK(lf_then_cr[1].line == 3);
}

TEST_CASE("csv: the last record counts without a trailing line break") {
  const auto plain = read_all("a,b\nc,d");
  REQUIRE(plain.size() == 2);
  CHECK(plain[1].fields == Fields{"c", "d"});
  CHECK(plain[1].error == "");

  const auto quoted = read_all("a,\"b\"");
  REQUIRE(quoted.size() == 1);
  CHECK(quoted[0].fields == Fields{"a", "b"});

  const auto trailing_delimiter = read_all("a,");
  REQUIRE(trailing_delimiter.size() == 1);
  CHECK(trailing_delimiter[0].fields == Fields{"a", ""});
}

TEST_CASE("csv: empty lines are skipped but a line of delimiters is a record of empty fields") {
  const auto records = read_all("\n\na\n\r\n\r\nb\n\n,,,\n");
  REQUIRE(records.size() == 3);
  CHECK(records[0].fields == Fields{"a"});
  CHECK(records[0].line == 3);
  CHECK(records[1].fields == Fields{"b"});
  CHECK(records[1].line == 6);
  CHECK(records[2].fields == Fields{"", "", "", ""});
  CHECK(records[2].line == 8);
  CHECK(records[2].error == "");
}

TEST_CASE("csv: no input, or only line ends and a byte order mark, gives no records") {
  CHECK(read_all("").empty());
  CHECK(read_all("\r\n\n\r").empty());
  CHECK(read_all("\xEF\xBB\xBF").empty());

  std::istringstream in("a\n");
  CsvReader reader(in);
  CsvRecord record;
  CHECK(reader.next(record));
  CHECK_FALSE(reader.next(record));
  CHECK(record.fields.empty());
  CHECK_FALSE(reader.next(record));
}

TEST_CASE("csv: next() replaces the fields of the previous record") {
  std::istringstream in("a,b,c\nd\n");
  CsvReader reader(in);
  CsvRecord record;
  REQUIRE(reader.next(record));
  CHECK(record.fields.size() == 3);
  REQUIRE(reader.next(record));
  CHECK(record.fields == Fields{"d"});
}

TEST_CASE("csv: custom delimiters, semicolon and tab") {
  const auto semicolon = read_all("a;\"b;c\";x,y\n", with_delimiter(';'));
  REQUIRE(semicolon.size() == 1);
  CHECK(semicolon[0].fields == Fields{"a", "b;c", "x,y"});

  const auto tab = read_all("a\t\"b\tc\"\t\n1,2\t3\n", with_delimiter('\t'));
  REQUIRE(tab.size() == 2);
  CHECK(tab[0].fields == Fields{"a", "b\tc", ""});
  CHECK(tab[1].fields == Fields{"1,2", "3"});
}

TEST_CASE("csv: line and end_line span a record whose quoted field holds line breaks") {
  const auto records = read_all("h\n1,\"a\nb\r\nc\rd\"\n2,x\r\n");
  REQUIRE(records.size() == 3);
  CHECK(records[0].line == 1);
  CHECK(records[0].end_line == 1);
  CHECK(records[1].fields == Fields{"1", "a\nb\r\nc\rd"});
  CHECK(records[1].line == 2);
  CHECK(records[1].end_line == 5);
  CHECK(records[2].line == 6);
  CHECK(records[2].end_line == 6);
}

TEST_CASE("csv: a quote inside an unquoted field is an error at its column and reading continues") {
  const auto records = read_all(
      "1,ok\n2,\xC3\xA9"
      "b\"c,d\n3,ok\n");
  REQUIRE(records.size() == 3);
  CHECK(records[0].error == "");
  CHECK(records[1].error == "line 2, column 5: a quote inside an unquoted field");
  CHECK(records[1].line == 2);
  CHECK(records[2].error == "");
  CHECK(records[2].fields == Fields{"3", "ok"});
  CHECK(records[2].line == 3);
}

TEST_CASE("csv: text after a closing quote is an error at its column and reading continues") {
  const auto records = read_all("1,ok\n2,\"ab\"c,d\n3,ok\n");
  REQUIRE(records.size() == 3);
  CHECK(records[1].error ==
        "line 2, column 7: text after a closing quote (expected the delimiter or a line end)");
  CHECK(records[1].line == 2);
  CHECK(records[2].fields == Fields{"3", "ok"});
  CHECK(records[2].error == "");

  SUBCASE("the errored record still runs to the next line end outside quotes") {
    const auto spanning = read_all("2,\"ab\"c,\"x\ny\"\n3,ok\n");
    REQUIRE(spanning.size() == 2);
    CHECK(spanning[0].error.starts_with("line 1, column 7: text after a closing quote"));
    CHECK(spanning[0].end_line == 2);
    CHECK(spanning[1].fields == Fields{"3", "ok"});
    CHECK(spanning[1].line == 3);
  }
}

TEST_CASE("csv: an unterminated quote is reported where it opened and the lines after it are read again") {
  const auto records = read_all("1,a\n2,\"open\n3,c\n4,d\n5,e\n");
  REQUIRE(records.size() == 5);
  CHECK(records[0].fields == Fields{"1", "a"});
  CHECK(records[1].error == "line 2, column 3: quote never closed");
  CHECK(records[1].line == 2);
  CHECK(records[1].end_line == 2);
  for (std::size_t k = 2; k < 5; ++k) {
    CHECK(records[k].error == "");
    CHECK(records[k].fields == Fields{std::to_string(k + 1), std::string(1, static_cast<char>('a' + k))});
    CHECK(records[k].line == k + 1);
  }

  SUBCASE("on the last line, without a line end") {
    const auto last = read_all("1,a\r\n2,\"bc");
    REQUIRE(last.size() == 2);
    CHECK(last[1].error == "line 2, column 3: quote never closed");
  }
  SUBCASE("after another fault in the same record, which is the one reported") {
    const auto both = read_all("1,a\r\n2,x\"y,\"bc\r\n3,c");
    REQUIRE(both.size() == 3);
    CHECK(both[1].error == "line 2, column 4: a quote inside an unquoted field");
    CHECK(both[2].fields == Fields{"3", "c"});
    CHECK(both[2].line == 3);
  }
  SUBCASE("closed by a quote on a later line that text follows") {
    const auto stray = read_all("1,a\r\n2,\"open\r\n3,c\r\n4,\"d\"\r\n");
    REQUIRE(stray.size() == 4);
    CHECK(stray[1].error ==
          "line 2, column 3: quote never closed (the quote at line 4, column 3 that would close it is "
          "followed by text)");
    CHECK(stray[2].fields == Fields{"3", "c"});
    CHECK(stray[2].line == 3);
    CHECK(stray[3].fields == Fields{"4", "d"});
    CHECK(stray[3].error == "");
  }
}

TEST_CASE(
    "csv: an unterminated quote growing past max_record_bytes is reported and the lines after it read") {
  std::string text = "1,a\n2,\"open\n";
  for (int row = 3; row <= 40; ++row) text += std::to_string(row) + ",v\n";
  text += "41,\"x\"\n";
  const auto records = read_all(text, with_max_record_bytes(16));
  REQUIRE(records.size() == 41);
  CHECK(records[1].error == "line 2, column 3: quote never closed (record longer than 16 bytes)");
  CHECK(records[1].end_line == 2);
  for (std::size_t k = 2; k < 40; ++k) {
    CHECK(records[k].error == "");
    CHECK(records[k].fields == Fields{std::to_string(k + 1), "v"});
    CHECK(records[k].line == k + 1);
  }
  CHECK(records[40].fields == Fields{"41", "x"});

  SUBCASE("when the line that opens the quote is itself too long") {
    const auto long_line = read_all("1,\"" + std::string(100, 'x') + "\n2,ok\n", with_max_record_bytes(50));
    REQUIRE(long_line.size() == 2);
    CHECK(long_line[0].error == "line 1, column 3: quote never closed (record longer than 50 bytes)");
    CHECK(long_line[1].fields == Fields{"2", "ok"});
    CHECK(long_line[1].line == 2);
  }
}

TEST_CASE("csv: a record longer than max_record_bytes is an error and reading resumes at the next line") {
  const auto records = read_all("0123456789\n0123456789a\nb,c\n", with_max_record_bytes(10));
  REQUIRE(records.size() == 3);
  CHECK(records[0].error == "");
  CHECK(records[0].fields == Fields{"0123456789"});
  CHECK(records[1].error == "line 2: record longer than 10 bytes");
  CHECK(records[2].fields == Fields{"b", "c"});
  CHECK(records[2].line == 3);

  SUBCASE("a line many chunks long is skipped without being held") {
    const std::string text = "1,ok\n2," + std::string(5 * CsvReader::kChunkBytes, 'x') + "\r\n3,ok\n";
    const auto long_line = read_all(text, with_max_record_bytes(100'000));
    REQUIRE(long_line.size() == 3);
    CHECK(long_line[1].error == "line 2: record longer than 100000 bytes");
    CHECK(long_line[2].fields == Fields{"3", "ok"});
    CHECK(long_line[2].line == 3);
  }
}

TEST_CASE("csv: invalid UTF-8 is an error at its line and character column") {
  const auto records = read_all("1,ok\n2,\xC3\xA9\xFFx\n3,\"a\nbc\xED\xA0\x80\"\n4,ok");
  REQUIRE(records.size() == 4);
  CHECK(records[0].error == "");
  CHECK(records[1].error == "line 2, column 4: not valid UTF-8");
  CHECK(records[2].error == "line 4, column 3: not valid UTF-8");
  CHECK(records[3].error == "");
  CHECK(records[3].line == 5);
}

TEST_CASE("csv: windows-1252 input is converted to UTF-8") {
  const auto records = read_all("\xE9t\xE9,\x80 5,\x92s\n\xE9\xE9x\"y\n", windows1252());
  REQUIRE(records.size() == 2);
  CHECK(records[0].error == "");
  CHECK(records[0].fields == Fields{"\xC3\xA9t\xC3\xA9", "\xE2\x82\xAC 5", "\xE2\x80\x99s"});
  CHECK(records[1].error == "line 2, column 4: a quote inside an unquoted field");
}

TEST_CASE("csv: windows1252_to_utf8 maps every byte, the undefined ones to U+FFFD") {
  std::string every_byte;
  for (int b = 0; b < 256; ++b) every_byte += static_cast<char>(b);
  const std::string utf8 = windows1252_to_utf8(every_byte);
  CHECK(valid_utf8(utf8));
  CHECK(windows1252_to_utf8("plain ascii") == "plain ascii");
  CHECK(windows1252_to_utf8("\x80") == "\xE2\x82\xAC");
  CHECK(windows1252_to_utf8("\x92") == "\xE2\x80\x99");
  CHECK(windows1252_to_utf8("\x9F") == "\xC5\xB8");
  CHECK(windows1252_to_utf8("\xA0") == "\xC2\xA0");
  CHECK(windows1252_to_utf8("\xE9") == "\xC3\xA9");
  CHECK(windows1252_to_utf8("\xFF") == "\xC3\xBF");
  for (const char undefined : {'\x81', '\x8D', '\x8F', '\x90', '\x9D'}) {
    CHECK(windows1252_to_utf8(std::string(1, undefined)) == "\xEF\xBF\xBD");
  }
}

TEST_CASE("csv: valid_utf8 rejects overlong forms, surrogates, out-of-range and truncated sequences") {
  for (const std::string_view good : {"", "abc", "\xC3\xA9", "\xE2\x82\xAC", "\xED\x9F\xBF", "\xEE\x80\x80",
                                      "\xF0\x9D\x84\x9E", "\xF4\x8F\xBF\xBF"}) {
    CHECK(valid_utf8(good));
  }
  struct Bad {
    std::string_view text;
    std::size_t offset;
  };
  const Bad bad[] = {
      {"ab\xC0\xAF", 2},                 // overlong '/'
      {"\xE0\x80\xAF", 0},               // overlong, 3 bytes
      {"\xF0\x80\x80\xAF", 0},           // overlong, 4 bytes
      {"x\xED\xA0\x80", 1},              // surrogate U+D800
      {"\xF4\x90\x80\x80", 0},           // above U+10FFFF
      {"\xF5\x80\x80\x80", 0},           // lead byte never valid
      {"abc\xE2\x82", 3},                // truncated at the end
      {"\x80", 0},                       // continuation byte alone
      {"\xC3\xA9\xC3(", 2},              // bad continuation
      {"aaaaaaaaaaaaaaaaaaaa\xFF", 20},  // after the ASCII fast path
  };
  for (const Bad& b : bad) {
    std::size_t offset = 999;
    CHECK_FALSE(valid_utf8(b.text, &offset));
    CHECK(offset == b.offset);
  }
}

TEST_CASE("csv: chunk boundaries inside CRLF pairs, escaped quotes, quoted line breaks and UTF-8") {
  const std::string tail = "r,v\r\nq,\"a\"\"b\r\nc\"\r\nu,\xE2\x82\xAC\r\nz";
  for (const std::size_t boundary : {CsvReader::kChunkBytes, 2 * CsvReader::kChunkBytes}) {
    for (std::size_t tail_start = boundary - tail.size(); tail_start <= boundary; ++tail_start) {
      CAPTURE(boundary - tail_start);
      const auto records = read_all(filler_record(tail_start) + tail);
      REQUIRE(records.size() == 5);
      for (const auto& record : records) CHECK(record.error == "");
      CHECK(records[1].fields == Fields{"r", "v"});
      CHECK(records[1].line == 2);
      CHECK(records[2].fields == Fields{"q", "a\"b\r\nc"});
      CHECK(records[2].line == 3);
      CHECK(records[2].end_line == 4);
      CHECK(records[3].fields == Fields{"u", "\xE2\x82\xAC"});
      CHECK(records[3].line == 5);
      CHECK(records[4].fields == Fields{"z"});
      CHECK(records[4].line == 6);
    }
  }
}

TEST_CASE(
    "csv: a stray quote across a chunk boundary is located where it opened and the lines after it read") {
  const std::string tails[] = {"2,\"open\r\n3,c\r\n4,d", "2,\"open\r\n3,c\r\n4,\"d\"\r\n"};
  const std::string errors[] = {
      "line 2, column 3: quote never closed",
      "line 2, column 3: quote never closed (the quote at line 4, column 3 that would close it is followed "
      "by text)"};
  for (std::size_t variant = 0; variant < 2; ++variant) {
    const std::string& tail = tails[variant];
    for (std::size_t tail_start = CsvReader::kChunkBytes - tail.size(); tail_start <= CsvReader::kChunkBytes;
         ++tail_start) {
      CAPTURE(variant);
      CAPTURE(CsvReader::kChunkBytes - tail_start);
      const auto records = read_all(filler_record(tail_start) + tail);
      REQUIRE(records.size() == 4);
      CHECK(records[1].error == errors[variant]);
      CHECK(records[2].fields == Fields{"3", "c"});
      CHECK(records[2].line == 3);
      CHECK(records[3].fields == Fields{"4", "d"});
      CHECK(records[3].error == "");
    }
  }
}

TEST_CASE("csv: large feeds stream through the reader") {
  SUBCASE("200,000 rows with quoted line breaks through a stringstream") {
    constexpr std::size_t kRows = 200'000;
    std::string text;
    for (std::size_t i = 0; i < kRows; ++i) {
      const std::string id = std::to_string(i);
      text += id + ",\"Name \"\"" + id + "\"\"\r\nsecond, line\",plain " + id + "\r\n";
      if (i % 7 == 0) text += "\r\n";
    }
    std::stringstream in(text);
    CsvReader reader(in);
    CsvRecord record;
    std::size_t count = 0;
    std::size_t expected_line = 1;
    std::size_t wrong = 0;
    while (reader.next(record)) {
      const std::string id = std::to_string(count);
      if (record.fields != Fields{id, "Name \"" + id + "\"\r\nsecond, line", "plain " + id} ||
          !record.error.empty() || record.line != expected_line || record.end_line != expected_line + 1) {
        if (++wrong == 1) {
          CAPTURE(count);
          CHECK(record.error == "");
          CHECK(record.line == expected_line);
          CHECK(record.fields == Fields{id, "Name \"" + id + "\"\r\nsecond, line", "plain " + id});
        }
      }
      expected_line += count % 7 == 0 ? 3 : 2;
      ++count;
    }
    CHECK(count == kRows);
    CHECK(wrong == 0);
  }

  SUBCASE("a million rows generated on the fly") {
    constexpr std::size_t kRows = 1'000'000;
    GeneratedCsv generated(kRows);
    std::istream in(&generated);
    CsvReader reader(in);
    CsvRecord record;
    std::size_t count = 0;
    std::size_t wrong = 0;
    std::string last_id;
    while (reader.next(record)) {
      if (record.fields.size() != 3 || !record.error.empty()) ++wrong;
      if (!record.fields.empty()) last_id = record.fields[0];
      ++count;
    }
    CHECK(count == kRows);
    CHECK(wrong == 0);
    CHECK(last_id == "999999");
  }
}

}  // namespace
}  // namespace fhirgate::mappers
