#include "mappers/hl7v2.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "mappers/hl7v2_mllp.hpp"
#include "tests/support/paths.hpp"

namespace fhirgate::mappers {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Message parse_ok(std::string_view text) {
  auto m = Message::parse(text);
  REQUIRE_MESSAGE(m.ok(), (m.ok() ? std::string() : m.error().issues[0].diagnostics));
  return std::move(m).value();
}

std::string parse_error(std::string_view text) {
  auto m = Message::parse(text);
  REQUIRE(!m.ok());
  CHECK(m.error().code == ErrorCode::invalid_input);
  return m.error().issues[0].diagnostics;
}

constexpr std::string_view kAdt =
    "MSH|^~\\&|PAS|RX1^LEEDS|FHIRGW|RX2|20240514092133||ADT^A01^ADT_A01|MSG00001|P|2.5.1\r"
    "EVN|A01|20240514092100\r"
    "PID|1||9434765919^^^NHS^NH~RX1-42^^^RX1&1.2.3&ISO^MR||CHALMERS^PETER^JAMES||19741225|M\r"
    "OBX|1|TX|||first\r"
    "OBX|2|TX|||second\r"
    "ZPI|custom^value\r";

TEST_CASE("hl7v2: fields, repetitions, components and subcomponents, 1-based") {
  Message m = parse_ok(kAdt);
  CHECK(m.segment_count() == 6);
  auto pid = m.segment("PID");
  REQUIRE(pid);
  CHECK(pid->name() == "PID");
  CHECK(pid->field_count() == 8);
  CHECK(pid->field(3).count() == 2);
  CHECK(pid->field(3).repetition(1).component(1).value() == "9434765919");
  CHECK(pid->field(3).repetition(2).component(4).subcomponent(2).value() == "1.2.3");
  CHECK(pid->field(3).repetition(2).component(4).count() == 3);
  CHECK(pid->field(3).repetition(2).component(4).value() == "RX1");
  CHECK(pid->field(5).component(2).value() == "PETER");
  CHECK(pid->field(5).raw() == "CHALMERS^PETER^JAMES");
  CHECK(pid->field(3).repetition(3).empty());
  CHECK(pid->field(42).empty());
  CHECK(pid->field(5).component(9).value() == "");
}

TEST_CASE("hl7v2: MSH-1 and MSH-2 are the delimiters, read verbatim") {
  Message m = parse_ok(kAdt);
  auto msh = m.segment("MSH");
  REQUIRE(msh);
  CHECK(msh->field(1).value() == "|");
  CHECK(msh->field(2).value() == "^~\\&");
  CHECK(msh->field(3).value() == "PAS");
  CHECK(msh->field(4).component(2).value() == "LEEDS");
  CHECK(msh->field_count() == 12);
  CHECK(m.value("MSH-2") == "^~\\&");
  CHECK(m.value("MSH-2.2") == "");
  CHECK(msh->field(2).component(1).value() == "^~\\&");
  CHECK(msh->field(2).repetition(2).empty());
}

TEST_CASE("hl7v2: path syntax SEG[s]-F[r].C.S") {
  Message m = parse_ok(kAdt);
  CHECK(m.value("PID-5") == "CHALMERS");
  CHECK(m.value("PID-5[1].2") == "PETER");
  CHECK(m.value("PID-5.3") == "JAMES");
  CHECK(m.value("PID-3[2].4.3") == "ISO");
  CHECK(m.value("PID[1]-3[2].1") == "RX1-42");
  CHECK(m.value("OBX-5") == "first");
  CHECK(m.value("OBX[2]-5") == "second");
  CHECK(m.value("OBX[3]-5") == "");
  CHECK(m.value("ZPI-1.2") == "value");
  CHECK(m.value("PID") == "");
  CHECK(m.value("PID-x") == "");
  CHECK(!Path::parse("pid-3").ok());
  CHECK(!Path::parse("PID-0").ok());
  CHECK(!Path::parse("PID-3[0]").ok());
  CHECK(!Path::parse("PID-3.1.2.3").ok());
  auto p = Path::parse("OBX[2]-5[3].1.2");
  REQUIRE(p.ok());
  CHECK(p->segment == "OBX");
  CHECK(p->segment_index == 2);
  CHECK(p->field == 5);
  CHECK(p->repetition == 3);
  CHECK(p->component == 1);
  CHECK(p->subcomponent == 2);
  CHECK(p->to_string() == "OBX[2]-5[3].1.2");
}

TEST_CASE("hl7v2: header helpers") {
  Message m = parse_ok(kAdt);
  CHECK(m.control_id() == "MSG00001");
  auto t = m.message_type();
  CHECK(t.code == "ADT");
  CHECK(t.trigger == "A01");
  CHECK(t.structure == "ADT_A01");
  CHECK(m.version() == "2.5.1");
  CHECK(m.charset() == Charset::ascii);
  CHECK(m.segments("OBX").size() == 2);
  CHECK(m.segments("NK1").empty());
  CHECK(!m.segment("NK1"));
}

TEST_CASE("hl7v2: supported versions are 2.3 to 2.8") {
  for (auto v : {"2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.2"})
    CHECK(is_supported_version(v));
  for (auto v : {"", "2.2", "2.1", "2.9", "3.0", "2.30", "2.5x"}) CHECK(!is_supported_version(v));
}

TEST_CASE("hl7v2: other delimiters from MSH-1 and MSH-2") {
  Message m = parse_ok("MSH#!*$@#A#B#C#D#20240101##ADT!A01#1#P#2.3\rPID#1##a!b@c*d!e#x$F$y\r");
  CHECK(m.delimiters().field == '#');
  CHECK(m.delimiters().component == '!');
  CHECK(m.delimiters().repetition == '*');
  CHECK(m.delimiters().escape == '$');
  CHECK(m.delimiters().subcomponent == '@');
  CHECK(m.value("MSH-1") == "#");
  CHECK(m.value("MSH-2") == "!*$@");
  CHECK(m.message_type().trigger == "A01");
  CHECK(m.value("PID-3.2.2") == "c");
  CHECK(m.value("PID-3[2].2") == "e");
  CHECK(m.value("PID-4") == "x#y");
  CHECK(encode("a#b!c", m.delimiters()) == "a$F$b$S$c");
}

TEST_CASE("hl7v2: truncation character (v2.7+) as a fifth encoding character") {
  Message m = parse_ok("MSH|^~\\&#|A|B|C|D|20240101||ADT^A01|1|P|2.7\rPID|1||a\\P\\b\r");
  CHECK(m.delimiters().truncation == '#');
  CHECK(m.value("MSH-2") == "^~\\&#");
  CHECK(m.value("PID-3") == "a#b");
  CHECK(encode("x#y", m.delimiters()) == "x\\P\\y");
}

TEST_CASE("hl7v2: escape sequences are decoded when read") {
  Message m = parse_ok(
      "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\r"
      "NTE|1||a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f|x\\X0D0A\\y|line1\\.br\\line2|\\H\\bold\\N\\|\\Zcustom\\|"
      "\\X41\\\r");
  CHECK(m.value("NTE-3") == "a|b^c&d~e\\f");
  CHECK(m.segment("NTE")->field(3).raw() == "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f");
  CHECK(m.value("NTE-4") == "x\r\ny");
  CHECK(m.value("NTE-5") == "line1\nline2");
  CHECK(m.value("NTE-6") == "bold");
  CHECK(m.value("NTE-7") == "\\Zcustom\\");
  CHECK(m.value("NTE-8") == "A");
}

TEST_CASE("hl7v2: encode escapes every delimiter and line breaks") {
  CHECK(encode("plain") == "plain");
  CHECK(encode("a|b^c&d~e\\f") == "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f");
  CHECK(encode("l1\nl2\r\nl3") == "l1\\.br\\l2\\.br\\l3");
  CHECK(decode(encode("a|b^c&d~e\\f\nx")) == "a|b^c&d~e\\f\nx");
}

TEST_CASE("fuzz: hl7v2: a line break in a value is written as \\X0A\\ when '.' is a delimiter") {
  // Found by hl7v2_fuzz (fuzz/regressions/hl7v2/ack-line-break-dot-delimiter): with MSH-2 '^~\\.' the
  // subcomponent separator is '.', so the \\.br\\ written for the line break in MSH-10 (\\X0D0A\\) split
  // into an unterminated escape, and the ACK quoting that control ID could not be parsed.
  Message m = parse_ok("MSH|^~\\.|A|B|C|D|20240101||ADT^A08|X1<\\X0D0A\\P|P|2.3\rPID|1||1^^^NHS\r");
  CHECK(m.control_id() == "X1<\r\nP");
  CHECK(encode("l1\nl2", m.delimiters()) == "l1\\X0A\\l2");
  CHECK(decode(encode("l1\nl2", m.delimiters()), m.delimiters()) == "l1\nl2");
  AckOptions options;
  options.control_id = "ACK1";
  Result<Message> ack = Message::parse(make_ack(m, "AA", "line\nbreak", options));
  REQUIRE(ack.ok());
  CHECK(ack->value("MSA-2") == "X1<\nP");
  CHECK(ack->value("MSA-3") == "line\nbreak");
}

TEST_CASE("hl7v2: MSH-18 8859/1 is converted to UTF-8 on read, raw bytes kept") {
  std::string text =
      "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5||||||8859/1\rPID|1||||M\xFCller^J\xE9r\xF4me\r";
  Message m = parse_ok(text);
  CHECK(m.charset() == Charset::latin1);
  CHECK(m.value("PID-5") == "M\xC3\xBCller");
  CHECK(m.value("PID-5.2") == "J\xC3\xA9r\xC3\xB4me");
  CHECK(m.serialize() == text);
  Message x = parse_ok("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5||||||8859/1\rNTE|1||\\XE9\\\r");
  CHECK(x.value("NTE-3") == "\xC3\xA9");
  REQUIRE(m.set("PID-5.1", "Gr\xC3\xBC\xC3\x9F").ok());
  CHECK(m.segment("PID")->field(5).component(1).raw() == "Gr\xFC\xDF");
  CHECK(!m.set("PID-5.1", "\xE2\x82\xAC").ok());
}

TEST_CASE("hl7v2: MSH-18 ASCII and UNICODE UTF-8 are accepted, others rejected") {
  CHECK(parse_ok("MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.6||||||ASCII\r").charset() == Charset::ascii);
  Message u = parse_ok("MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.8||||||UNICODE UTF-8\rPID|1||||Z\xC3\xBC\r");
  CHECK(u.charset() == Charset::utf8);
  CHECK(u.value("PID-5") == "Z\xC3\xBC");
  CHECK(parse_error("MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.8||||||ISO IR87\r") ==
        "MSH[1]-18: unsupported character set (supported: ASCII, 8859/1, UNICODE UTF-8)");
}

TEST_CASE("hl7v2: segment terminators CR, LF and CR LF; output uses CR") {
  std::string cr = "MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\rPID|1\rZZZ|z\r";
  std::string lf = "MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\nPID|1\nZZZ|z\n";
  std::string crlf = "MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\r\nPID|1\r\nZZZ|z";
  std::string blank = "\r\nMSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\r\n\r\nPID|1\n\nZZZ|z\r\n\r\n";
  for (const auto& t : {cr, lf, crlf, blank, "\xEF\xBB\xBF" + cr}) {
    Message m = parse_ok(t);
    CHECK(m.segment_count() == 3);
    CHECK(m.serialize() == cr);
    CHECK(m.value("ZZZ-1") == "z");
  }
}

TEST_CASE("hl7v2: a segment with only its name, and trailing empty fields, round trip") {
  std::string t = "MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5|||\rPV1\rPID|||||\r";
  Message m = parse_ok(t);
  CHECK(m.serialize() == t);
  CHECK(m.segment("PV1")->field_count() == 0);
  CHECK(m.segment("PID")->field_count() == 5);
}

TEST_CASE("hl7v2: batch files parse as one message with FHS/BHS headers") {
  Message m =
      parse_ok("FHS|^~\\&|A\rBHS|^~\\&|A\rMSH|^~\\&|A|B|C|D|1||ORU^R01|42|P|2.5.1\rPID|1\rBTS|1\rFTS|1\r");
  CHECK(m.segment_count() == 6);
  CHECK(m.value("FHS-2") == "^~\\&");
  CHECK(m.control_id() == "42");
}

TEST_CASE("hl7v2: parse errors name the place, never the content") {
  CHECK(parse_error("") == "HL7 v2 message is empty");
  CHECK(parse_error("\r\n\r\n") == "HL7 v2 message is empty");
  CHECK(parse_error("PID|1|SECRET\r") == "HL7 v2 message must start with an MSH segment (1st segment)");
  CHECK(parse_error("MSH|^~|A|B\r") == "MSH[1]-2: expected 4 or 5 encoding characters, found 2");
  CHECK(parse_error("MSH|^~\\\\&|A|B\r") == "MSH[1]-2: delimiters must be distinct punctuation characters");
  CHECK(parse_error("MSH|^~\\^|A|B\r") == "MSH[1]-2: delimiters must be distinct punctuation characters");
  CHECK(parse_error("MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\rPID|1\rsecret data here\r") ==
        "segment 3 (byte 42): segment name must be three capital letters or digits followed by the field "
        "separator");
  CHECK(parse_error("MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\rPID|1\rPID|1||a~b^SECRET\\Xzz\r") ==
        "PID[2]-3[2].2.1: unterminated escape sequence at byte 59");
  CHECK(parse_error("MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\rPID|1||x&y\\F\r") ==
        "PID[1]-3[1].1.2: unterminated escape sequence at byte 46");
  CHECK(parse_error("MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\rMSH|^~\\#|A\r") ==
        "segment 2 (MSH): encoding characters differ from the first header");
}

TEST_CASE("hl7v2: set writes escaped values and grows the structure") {
  Message m = parse_ok(kAdt);
  REQUIRE(m.set("PID-5.2", "PETE|R").ok());
  CHECK(m.segment("PID")->field(5).raw() == "CHALMERS^PETE\\F\\R^JAMES");
  CHECK(m.value("PID-5.2") == "PETE|R");
  REQUIRE(m.set("PID-13[2].4", "a@b").ok());
  CHECK(m.segment("PID")->field(13).raw() == "~^^^a@b");
  REQUIRE(m.set("PID-3[2].4.2", "9.9").ok());
  CHECK(m.value("PID-3[2].4.2") == "9.9");
  CHECK(m.value("PID-3[2].4.3") == "ISO");
  REQUIRE(m.set("MSH-10", "NEW1").ok());
  CHECK(m.control_id() == "NEW1");
  CHECK(m.value("MSH-2") == "^~\\&");
  REQUIRE(m.set("OBX[3]-5", "third").ok());
  CHECK(m.segments("OBX").size() == 3);
  CHECK(m.segment_at(m.segment_count() - 1).raw() == "OBX|||||third");
  REQUIRE(m.set("PID-8", "").ok());
  CHECK(m.segment("PID")->field(8).empty());
  REQUIRE(m.set_raw("PID-11", "1 Road^^Leeds").ok());
  CHECK(m.value("PID-11.3") == "Leeds");
  CHECK(!m.set("MSH-1", "#").ok());
  CHECK(!m.set("MSH-2", "#").ok());
  CHECK(!m.set("OBX[9]-5", "x").ok());
  CHECK(!m.set("bad", "x").ok());
  auto again = Message::parse(m.serialize());
  REQUIRE(again.ok());
  CHECK(again->serialize() == m.serialize());
}

TEST_CASE("hl7v2: make_ack swaps applications, echoes the control id") {
  Message in = parse_ok(kAdt);
  std::string ack = make_ack(in, "AA", "", {"ACK00001", "20240514092200", std::nullopt, "", ""});
  CHECK(ack ==
        "MSH|^~\\&|FHIRGW|RX2|PAS|RX1^LEEDS|20240514092200||ACK^A01^ACK|ACK00001|P|2.5.1\r"
        "MSA|AA|MSG00001\r");
  Message parsed = parse_ok(ack);
  CHECK(parsed.value("MSA-2") == in.control_id());
}

TEST_CASE("hl7v2: make_ack with an error adds ERR (v2.5+ and v2.3/2.4 layouts)") {
  Message in = parse_ok(kAdt);
  AckOptions o{"ACK2", "20240101", AckError{"PID[1]-3[2].1", "101", "E"}, "", ""};
  std::string ack = make_ack(in, "AE", "Required field missing", o);
  CHECK(ack ==
        "MSH|^~\\&|FHIRGW|RX2|PAS|RX1^LEEDS|20240101||ACK^A01^ACK|ACK2|P|2.5.1\r"
        "MSA|AE|MSG00001|Required field missing\r"
        "ERR||PID^1^3^2^1|101^Required field missing^HL70357|E\r");
  Message old = parse_ok("MSH|^~\\&|A|B|C|D|1||ADT^A08|X9|T|2.3||||||8859/1\r");
  std::string ack23 = make_ack(old, "AR", "bad & wrong", {"K", "2", AckError{"PID-3", "102", "E"}, "", ""});
  CHECK(ack23 ==
        "MSH|^~\\&|C|D|A|B|2||ACK^A08^ACK|K|T|2.3||||||8859/1\r"
        "MSA|AR|X9|bad \\T\\ wrong\r"
        "ERR|PID^1^3^102&bad \\T\\ wrong&HL70357\r");
  std::string noloc = make_ack(in, "AR", "Unsupported", {"K", "2", AckError{"", "200", "E"}, "", ""});
  CHECK(noloc.substr(noloc.find("ERR")) == "ERR|||200^Unsupported^HL70357|E\r");
}

TEST_CASE("hl7v2: the ADT^A01 sample in tests/data parses and round trips") {
  std::string text = read_file(fhirgate::testing::source_path("tests/data/adt_a01.hl7"));
  REQUIRE(!text.empty());
  Message m = parse_ok(text);
  CHECK(m.message_type().code == "ADT");
  CHECK(m.message_type().trigger == "A01");
  CHECK(m.control_id() == "MSG00001");
  CHECK(m.version() == "2.4");
  CHECK(m.charset() == Charset::utf8);
  CHECK(m.value("PID-5.1") == "CHALMERS");
  CHECK(m.value("PID-3[2].1") == "RX1-0042731");
  CHECK(m.value("PID-13[2].4") == "peter.chalmers@example.org");
  CHECK(m.serialize() == text);
}

TEST_CASE("hl7v2: parse speed of a 700-byte ADT^A01") {
  std::string text = read_file(fhirgate::testing::source_path("tests/data/adt_a01.hl7"));
  REQUIRE(!text.empty());
  constexpr int kRounds = 200000;
  std::size_t sink = 0;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kRounds; ++i) {
    auto m = Message::parse(text);
    sink += m->segment_count();
  }
  auto parse_ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() / kRounds;
  start = std::chrono::steady_clock::now();
  for (int i = 0; i < kRounds; ++i) {
    auto m = Message::parse(text);
    sink += m->value("PID-5.1").size() + m->control_id().size() + m->message_type().trigger.size() +
            m->value("PID-3[2].1").size();
  }
  auto read_ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() / kRounds;
  CHECK(sink > 0);
  MESSAGE("parse of " << text.size() << "-byte ADT^A01: " << parse_ns << " ns (" << 1e9 / parse_ns
                      << " msg/s); parse + 5 reads: " << read_ns << " ns");
}

TEST_CASE("mllp: frame and deframe in any split") {
  std::string framed = mllp_frame("MSH|a\r");
  CHECK(framed == std::string("\x0BMSH|a\r\x1C\x0D"));
  std::string two = framed + "\r\n" + mllp_frame("MSH|b\r");
  for (std::size_t cut = 0; cut <= two.size(); ++cut) {
    MllpDeframer d;
    CHECK(d.feed(std::string_view(two).substr(0, cut)).ok());
    CHECK(d.feed(std::string_view(two).substr(cut)).ok());
    CHECK(d.pop() == "MSH|a\r");
    CHECK(d.pop() == "MSH|b\r");
    CHECK(!d.pop());
    CHECK(!d.in_frame());
  }
  MllpDeframer bytewise;
  for (char c : two) CHECK(bytewise.feed(std::string_view(&c, 1)).ok());
  CHECK(bytewise.pop() == "MSH|a\r");
  CHECK(bytewise.pop() == "MSH|b\r");
}

TEST_CASE("mllp: garbage between frames is reported and skipped") {
  MllpDeframer d;
  auto s = d.feed("junk" + mllp_frame("one") + "xx" + mllp_frame("two"));
  REQUIRE(!s.ok());
  CHECK(s.error().code == ErrorCode::invalid_input);
  CHECK(s.error().issues[0].diagnostics == "MLLP: bytes outside a frame (expected start block 0x0B)");
  CHECK(d.pop() == "one");
  CHECK(d.pop() == "two");
  CHECK(!d.pop());
}

TEST_CASE("mllp: malformed end and nested start") {
  MllpDeframer d;
  auto s = d.feed(std::string("\x0B") + "bad\x1CX" + mllp_frame("ok"));
  REQUIRE(!s.ok());
  CHECK(s.error().issues[0].diagnostics == "MLLP: end block 0x1C not followed by 0x0D; message dropped");
  CHECK(d.pop() == "ok");
  CHECK(!d.pop());
  auto n = d.feed(std::string("\x0B") + "partial" + mllp_frame("whole"));
  REQUIRE(!n.ok());
  CHECK(d.pop() == "whole");
}

TEST_CASE("mllp: a message over max size is dropped, the next one kept") {
  MllpDeframer d(8);
  CHECK(d.feed(mllp_frame("12345678")).ok());
  CHECK(d.pop() == "12345678");
  auto s = d.feed(mllp_frame("123456789") + mllp_frame("small"));
  REQUIRE(!s.ok());
  CHECK(s.error().code == ErrorCode::payload_too_large);
  CHECK(d.pop() == "small");
  CHECK(!d.pop());
  CHECK(d.feed(std::string("\x0B") + "1234").ok());
  CHECK(d.feed("5678").ok());
  CHECK(d.buffered() == 8);
  CHECK(!d.feed("9").ok());
  CHECK(d.feed(std::string("\x1C\x0D") + mllp_frame("next")).ok());
  CHECK(d.pop() == "next");
}

TEST_CASE("mllp: a message over max size is queued incomplete, with its first segment and its size") {
  const std::string msh = "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|BIG1|P|2.5\r";
  const std::string big = msh + "NTE|1||" + std::string(5000, 'x') + "\r";
  for (std::size_t piece : {std::size_t{1}, std::size_t{7}, std::size_t{4096}, big.size() + 10}) {
    CAPTURE(piece);
    MllpDeframer d(1024);
    const std::string wire = mllp_frame("small") + mllp_frame(big) + mllp_frame("after");
    bool too_large = false;
    for (std::size_t at = 0; at < wire.size(); at += piece) {
      const Status fed = d.feed(std::string_view(wire).substr(at, piece));
      too_large = too_large || (!fed.ok() && fed.error().code == ErrorCode::payload_too_large);
    }
    CHECK(too_large);
    auto first = d.pop_frame();
    REQUIRE(first);
    CHECK(first->complete);
    CHECK(first->message == "small");
    auto oversize = d.pop_frame();
    REQUIRE(oversize);
    CHECK_FALSE(oversize->complete);
    CHECK(oversize->message == msh.substr(0, msh.size() - 1));  // the MSH segment, to answer by
    CHECK(oversize->size == big.size());
    auto after = d.pop_frame();
    REQUIRE(after);
    CHECK(after->message == "after");
    CHECK(after->size == 5);
    CHECK_FALSE(d.pop_frame());
    CHECK(d.frame_bytes() == 0);
  }
  // pop() hands out complete messages only; an oversize frame still going counts its bytes, holds its head.
  MllpDeframer d(16);
  CHECK_FALSE(d.feed(mllp_frame(std::string(40, 'y')) + mllp_frame("ok")).ok());
  CHECK(d.pop() == "ok");
  CHECK_FALSE(d.feed("\x0B" + std::string(100, 'z')).ok());
  CHECK(d.frame_bytes() == 100);
  CHECK(d.buffered() == 16);
  CHECK(d.feed(std::string(50, 'z')).ok());
  CHECK(d.frame_bytes() == 150);
  CHECK(d.buffered() == 16);
}

}  // namespace
}  // namespace fhirgate::mappers
