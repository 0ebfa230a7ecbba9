#include "fhir/regex.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace fhirgate::fhir {
namespace {

constexpr std::uint64_t kUnlimited = std::numeric_limits<std::uint64_t>::max();

Regex compiled(std::string_view pattern, Regex::Options options = {}) {
  auto re = Regex::compile(pattern, options);
  INFO(std::string(pattern));
  REQUIRE_MESSAGE(re.ok(), re.error().issues.front().diagnostics);
  return std::move(re).value();
}

bool search(std::string_view pattern, std::string_view text) {
  return compiled(pattern).search(text);
}

bool full(std::string_view pattern, std::string_view text) {
  return compiled(pattern).full_match(text);
}

std::string replace(std::string_view pattern, std::string_view text, std::string_view with) {
  auto out = compiled(pattern).replace_all(text, with, kUnlimited);
  REQUIRE(out.has_value());
  return *out;
}

// The diagnostics of a pattern compile() refuses.
std::string refusal(std::string_view pattern) {
  auto re = Regex::compile(pattern);
  INFO(std::string(pattern));
  REQUIRE_FALSE(re.ok());
  CHECK(re.error().code == ErrorCode::invalid_input);
  return re.error().issues.front().diagnostics;
}

bool refused_with(std::string_view pattern, std::string_view what) {
  const std::string message = refusal(pattern);
  INFO(message);
  return message.find(what) != std::string::npos;
}

TEST_CASE("regex: literals, search and full match") {
  CHECK(search("", ""));
  CHECK(search("", "abc"));
  CHECK(search("bc", "abcd"));
  CHECK_FALSE(search("bd", "abcd"));
  CHECK(full("abcd", "abcd"));
  CHECK_FALSE(full("abc", "abcd"));
  CHECK_FALSE(full("bcd", "abcd"));
  CHECK(full("", ""));
  CHECK_FALSE(full("", "a"));
  // full_match finds the whole-text match even when a shorter alternative is preferred.
  CHECK(full("a|ab", "ab"));
  CHECK(full("(a|ab)(c|bcd)", "abcd"));
  CHECK(full("a*?", "aaa"));
  // Closing brackets on their own are literal, as in ECMAScript and PCRE.
  CHECK(full("a]}", "a]}"));
}

TEST_CASE("regex: dot is one code point and, by default, not a newline") {
  CHECK(full("a.c", "abc"));
  CHECK_FALSE(search("a.c", "a\nc"));
  CHECK(full("a.c", "a\rc"));
  CHECK(compiled("a.c", {.dot_matches_newline = true}).full_match("a\nc"));
  CHECK(full(".", "é"));             // two bytes, one character
  CHECK(full(".", "\xE2\x82\xAC"));  // €
  CHECK(full(".", "\xF0\x9F\x98\x80"));
  CHECK_FALSE(full("..", "é"));
  // A byte that starts no well-formed sequence is a character of its own.
  CHECK(full(".", "\xFF"));
  CHECK(full("..", "\xC3\x28"));       // a lead byte without its continuation, then '('
  CHECK(full("...", "\xED\xA0\x80"));  // an encoded surrogate is three malformed bytes
  CHECK(full("\xFF", "\xFF"));
  CHECK_FALSE(full("\xFE", "\xFF"));
}

TEST_CASE("regex: character classes") {
  CHECK(full("[abc]+", "cab"));
  CHECK_FALSE(full("[abc]", "d"));
  CHECK(full("[a-z0-9_]+", "abc_42"));
  CHECK(full("[^a-z]", "A"));
  CHECK_FALSE(full("[^a-z]", "q"));
  CHECK(full("[^a]", "é"));      // a negated class consumes the whole code point
  CHECK(full("[^a]", "\xFF"));   // and malformed bytes
  CHECK(full("[à-ü]+", "éèü"));  // ranges compare code points
  CHECK_FALSE(full("[à-ü]", "ÿ"));
  CHECK(full("[€]", "€"));
  // Hyphens first, last or beside a class escape are literal; escapes work inside.
  CHECK(full("[-a]+", "-a"));
  CHECK(full("[a-]+", "-a"));
  CHECK(full("[\\d-z]+", "1-z"));
  CHECK_FALSE(full("[\\d-z]", "y"));
  CHECK(full("[\\]\\\\\\-\\^]+", "]\\-^"));
  CHECK(full("[a^]+", "^a"));
  CHECK(full("[.*+?(){}|$]+", ".*+?(){}|$"));
  CHECK(full("[[]", "["));
  CHECK(full("[\\b]", "\b"));  // backspace inside a class
  CHECK(full("[\\s\\d]+", " 1\t2"));
  CHECK(full("[\\D]", "a"));
  CHECK_FALSE(full("[\\D]", "5"));
  CHECK(full("[^\\W]", "_"));
  CHECK(full("[\\x41-\\x43]+", "ABC"));
  CHECK(full("[\\u00e0-\\u00fc]", "é"));
}

TEST_CASE("regex: escapes") {
  CHECK(full("\\d+", "0123456789"));
  CHECK_FALSE(full("\\d", "٣"));  // ASCII digits only, as in ECMAScript
  CHECK(full("\\D\\D", "aé"));
  CHECK(full("\\w+", "azAZ09_"));
  CHECK_FALSE(full("\\w", "é"));
  CHECK(full("\\W", "é"));
  CHECK(full("\\s+", " \t\n\r\f\v\xC2\xA0\xE3\x80\x80\xEF\xBB\xBF"));  // ECMAScript white space
  CHECK_FALSE(full("\\s", "a"));
  CHECK(full("\\S+", "a-é"));
  CHECK(full("\\t\\n\\r\\f\\v", "\t\n\r\f\v"));
  CHECK(full("a\\0b", std::string_view("a\0b", 3)));
  CHECK(full("\\x41\\x7a", "Az"));
  CHECK(full("\\u00e9\\u20AC", "é€"));
  CHECK(full("\\uD83D\\uDE00", "\xF0\x9F\x98\x80"));  // a surrogate pair is one code point
  CHECK(full("\\.\\*\\+\\?\\(\\)\\[\\]\\{\\}\\|\\^\\$\\\\\\/\\-", ".*+?()[]{}|^$\\/-"));
  CHECK(full("x\\{12345678901\\}", "x{12345678901}"));
  CHECK(full("\\é", "é"));
}

TEST_CASE("regex: word boundaries") {
  CHECK(search("\\bfoo\\b", "a foo b"));
  CHECK(search("\\bfoo\\b", "foo"));
  CHECK_FALSE(search("\\bfoo\\b", "afoo"));
  CHECK_FALSE(search("\\bfoo\\b", "foo_"));
  CHECK(search("\\bfoo\\b", "éfooé"));  // only ASCII letters, digits and _ are word characters
  CHECK(search("o\\B", "foo"));
  CHECK_FALSE(search("\\Bf", "foo"));
  CHECK(replace("\\b", "ab cd", "|") == "|ab| |cd|");
}

TEST_CASE("regex: anchors are the whole text, not lines") {
  CHECK(search("^ab", "abc"));
  CHECK_FALSE(search("^bc", "abc"));
  CHECK(search("bc$", "abc"));
  CHECK_FALSE(search("ab$", "abc"));
  CHECK_FALSE(search("^b", "a\nb"));
  CHECK_FALSE(search("a$", "a\nb"));
  CHECK_FALSE(search("a$", "a\n"));
  CHECK(search("a^|b", "ab"));
  CHECK_FALSE(search("a^", "ab"));
  CHECK(replace("^", "abc", ">") == ">abc");
  CHECK(replace("$", "abc", "<") == "abc<");
}

TEST_CASE("regex: groups and alternation") {
  CHECK(full("(ab)+", "ababab"));
  CHECK(full("(?:ab)+", "ababab"));
  CHECK_FALSE(full("(?:ab)+", "aba"));
  CHECK(full("a(b|c|)d", "ad"));
  CHECK(full("(|x)y", "y"));
  CHECK(full("((a)|b)+", "abba"));
  // The first alternative that leads to a match wins, as in a backtracking engine.
  CHECK(replace("(a|ab)(c|bcd)(d*)", "abcd", "[$1,$2,$3]") == "[a,bcd,]");
  CHECK(replace("a|ab", "ab", "[$0]") == "[$0]b");
  CHECK(replace("ab|a", "ab", "X") == "X");
  CHECK(replace("(?:a)(b)", "ab", "$1") == "b");  // (?: ) takes no number
  CHECK(replace("(a)|(b)", "b", "[$1|$2]") == "[|b]");
}

TEST_CASE("regex: quantifiers, greedy and lazy") {
  CHECK(full("a*", ""));
  CHECK(full("a+", "aaa"));
  CHECK_FALSE(full("a+", ""));
  CHECK(full("ab?c", "ac"));
  CHECK(full("a{3}", "aaa"));
  CHECK_FALSE(full("a{3}", "aa"));
  CHECK(full("a{2,}", "aaaaa"));
  CHECK_FALSE(full("a{2,}", "a"));
  CHECK(full("a{2,3}", "aaa"));
  CHECK_FALSE(full("a{2,3}", "aaaa"));
  CHECK(full("a{0,1}b{0}", "a"));
  CHECK(full("^a{1,000000002}$", "aa"));  // leading zeros
  CHECK(full("(?:a{1000}){2}", std::string(2000, 'a')));
  // Greedy takes as much as it can, lazy as little.
  CHECK(replace("(a+)(a*)", "aaa", "$1|$2") == "aaa|");
  CHECK(replace("(a+?)(a*)", "aaa", "$1|$2") == "a|aa");
  CHECK(replace("(a*)(a*)", "aa", "$1|$2") == "aa||");
  CHECK(replace("(a*?)(a*)", "aa", "$1|$2") == "|aa|");
  CHECK(replace("(a?\?)(a)", "a", "$1|$2") == "|a");  // (a??)
  CHECK(replace("(a?)(a)", "aa", "$1|$2") == "a|a");
  CHECK(replace("(.*)-(.*)", "a-b-c", "$1|$2") == "a-b|c");
  CHECK(replace("(.*?)-(.*)", "a-b-c", "$1|$2") == "a|b-c");
  CHECK(replace("a{2,3}", "aaaaaaa", "X") == "XXa");
  CHECK(replace("a{2,3}?", "aaaaaaa", "X") == "XXXa");
  CHECK(replace("a{2,}?", "aaaaa", "X") == "XXa");
  CHECK(replace("(a|b)*c", "abac", "$1") == "a");  // a repeated group keeps its last iteration
  // Empty iterations end a loop instead of spinning.
  CHECK(full("(a*)*b", "aab"));
  CHECK(full("(a*)+b", "b"));
  CHECK(full("(?:a?)*?b", "aab"));
}

TEST_CASE("regex: replace_all") {
  CHECK(replace("234", "123456", "X") == "1X56");
  CHECK(replace("[0-9]", "abc123", "-") == "abc---");
  CHECK(replace("aa", "aaabaa", "\"aa\"") == "\"aa\"ab\"aa\"");
  CHECK(replace("aa", "aaaa", "X") == "XX");  // not overlapping, left to right
  CHECK(replace("[0-9]+", "10/15/2014", "X") == "X/X/X");
  CHECK(replace("(\\w+) (\\w+)", "Mary had a little lamb", "$2, $1") == "had, Mary little, a lamb");
  CHECK(replace("(\\d+)/(\\d+)/(\\d+)", "11/30/1972", "$2-$1-$3") == "30-11-1972");
  CHECK(replace("b", "abc", "$$") == "a$c");
  CHECK(replace("b", "abc", "$") == "a$c");
  CHECK(replace("b", "abc", "$x$0$&") == "a$x$0$&c");
  CHECK(replace("(b)", "abc", "$9") == "ac");     // no such group: empty
  CHECK(replace("(b)", "abc", "$12") == "ab2c");  // one digit: $1, then "2"
  CHECK(replace("(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)", "abcdefghij", "$9$1") == "ia");
  CHECK(replace("z", "abc", "X") == "abc");
  CHECK(replace("", "", "X") == "X");
  // An empty match replaces nothing and the search moves on one character (a whole code point).
  CHECK(replace("x*", "abc", "-") == "-a-b-c-");
  CHECK(replace("x*", "éa", "-") == "-é-a-");
  CHECK(replace("x*", "\xFF", "-") == "-\xFF-");
  CHECK(replace("a*", "baaac", "-") == "-b--c-");
  CHECK(replace("a*", "aaa", "-") == "--");
  CHECK(replace("é", "aéb", "e") == "aeb");
}

TEST_CASE("regex: replace_all stops at its step budget") {
  // Each search after a match starts over, so `a*b|a` on a run of a's is quadratic.
  const Regex re = compiled("a*b|a");
  CHECK(re.replace_all(std::string(2000, 'a'), "x", kUnlimited) == std::string(2000, 'x'));
  CHECK_FALSE(re.replace_all(std::string(100000, 'a'), "x", 1'000'000).has_value());
  CHECK(re.replace_all("aab", "x", 100) == "x");
}

TEST_CASE("regex: refused syntax names the problem") {
  CHECK(refused_with("(a)\\1", "back-references are not supported (at position 4)"));
  CHECK(refused_with("\\9", "back-references"));
  CHECK(refused_with("[\\1]", "back-references"));
  CHECK(refused_with("(?<n>a)\\k<n>", "named groups"));
  CHECK(refused_with("\\k<n>", "named back-references"));
  CHECK(refused_with("a(?=b)", "lookahead is not supported (at position 2)"));
  CHECK(refused_with("a(?!b)", "lookahead"));
  CHECK(refused_with("(?<=a)b", "lookbehind"));
  CHECK(refused_with("(?<!a)b", "lookbehind"));
  CHECK(refused_with("a*+", "possessive quantifiers are not supported (at position 2)"));
  CHECK(refused_with("a++", "possessive"));
  CHECK(refused_with("a?+", "possessive"));
  CHECK(refused_with("a{2}+", "possessive"));
  CHECK(refused_with("^y.*+ln()", "possessive"));
  CHECK(refused_with("(?P<n>a)", "named groups"));
  CHECK(refused_with("(?'n'a)", "named groups"));
  CHECK(refused_with("(?>a)", "atomic groups"));
  CHECK(refused_with("(?i)a", "unsupported group syntax"));
  CHECK(refused_with("\\p{L}", "Unicode property"));
  CHECK(refused_with("\\cA", "control escapes"));
  CHECK(refused_with("\\01", "octal"));
  CHECK(refused_with("\\q", "unknown escape \\q"));
  CHECK(refused_with("\\u{1F600}", "\\uHHHH"));
  CHECK(refused_with("[[:alpha:]]", "POSIX classes"));
  CHECK(refused_with("[]a]", "empty character class"));
  CHECK(refused_with("[^]", "empty character class"));
}

TEST_CASE("regex: counts, nesting and program size are bounded") {
  CHECK(refused_with("a{1001}", "repetition count above 1000 (at position 2)"));
  CHECK(refused_with("a{1,1001}", "repetition count above 1000"));
  CHECK(refused_with("a{1001,}", "repetition count above 1000"));
  CHECK(refused_with("a{1,99999999999999999999}", "repetition count above 1000"));
  CHECK(refused_with("a{9999999999}", "repetition count above 1000"));
  CHECK(full("a{1000}", std::string(1000, 'a')));
  // 100 nested groups compile, 101 do not.
  CHECK(full(std::string(100, '(') + "a" + std::string(100, ')'), "a"));
  CHECK(refused_with(std::string(101, '(') + "a" + std::string(101, ')'), "groups nested deeper than 100"));
  CHECK(refused_with(std::string(100000, '('), "groups nested deeper than 100"));
  // Counted repetition is expanded, and the program may not pass 20,000 instructions.
  CHECK(compiled("(?:a{1000}){19}").size() <= Regex::kMaxInstructions);
  CHECK(refused_with("(?:a{1000}){20}", "too large: more than 20000 instructions"));
  CHECK(refused_with("((a{1000}){1000}){1000}", "too large"));
  CHECK(refused_with(std::string(30000, 'a'), "too large"));
  // Empty groups repeated do not blow up compilation.
  CHECK(search("(?:(?:(?:){1000}){1000}){1000}", "abc"));
  CHECK(search("(?:(?:a{0}){1000}){1000}x", "x"));
}

TEST_CASE("regex: malformed patterns name the position") {
  CHECK(refused_with("ab(c", "missing ')' for this group (at position 3)"));
  CHECK(refused_with("ab)c", "unmatched ')' (at position 3)"));
  CHECK(refused_with("a[bc", "missing ']' for this character class (at position 2)"));
  CHECK(refused_with("*a", "nothing to repeat (at position 1)"));
  CHECK(refused_with("a|+", "nothing to repeat (at position 3)"));
  CHECK(refused_with("(?)", "unsupported group syntax"));
  CHECK(refused_with("a**", "nothing to repeat (at position 3)"));
  CHECK(refused_with("a{2}{3}", "nothing to repeat (at position 5)"));
  CHECK(refused_with("^*", "nothing to repeat (at position 2)"));
  CHECK(refused_with("\\b+", "nothing to repeat"));
  CHECK(refused_with("{2}", "nothing to repeat (at position 1)"));
  CHECK(refused_with("a{2,1}", "repetition counts out of order (at position 2)"));
  CHECK(refused_with("x{", "must be escaped as \\{ (at position 2)"));
  CHECK(refused_with("x{a}", "must be escaped"));
  CHECK(refused_with("x{,3}", "must be escaped"));
  CHECK(refused_with("[z-a]", "character range out of order (at position 2)"));
  CHECK(refused_with("ab\\", "the pattern ends in '\\' (at position 3)"));
  CHECK(refused_with("\\x4", "\\x needs 2 hex digits (at position 1)"));
  CHECK(refused_with("\\xg1", "\\x needs 2 hex digits"));
  CHECK(refused_with("a\\u12", "\\u needs 4 hex digits (at position 2)"));
  CHECK(refused_with("[\\B]", "\\B is not allowed in a character class"));
}

TEST_CASE("regex: nested repetition runs in linear time (std::regex took exponential time)") {
  const std::string xs(100000, 'x');
  CHECK_FALSE(search("^y(.*)*ln", "y" + xs + "es"));
  CHECK(search("^y(.*)*es$", "y" + xs + "es"));
  CHECK_FALSE(search("(x+x+)+y", xs));
  CHECK_FALSE(search("(x|x)*y", xs));
  CHECK_FALSE(search("(?:x*)*y", xs));
  CHECK_FALSE(full("(x*)*", xs + "y"));
  CHECK(replace("^y(x*)*es", "y" + xs + "es", "z") == "z");
  CHECK(replace("(x+x+)+y", xs, "z") == xs);
}

TEST_CASE("regex: long input needs no stack (std::regex recursed once per character)") {
  const std::string letters(1000000, 'a');
  CHECK(full("[a-z]+", letters));
  CHECK(search("^[a-z]+$", letters));
  CHECK_FALSE(search("^[a-z]+$", letters + "!"));
  CHECK(search("(a|b)*$", letters));
  CHECK(replace("a", std::string(100000, 'a'), "bb") == std::string(200000, 'b'));
  const std::string nested = std::string(100, '(') + "a*" + std::string(100, ')') + "$";
  CHECK(search(nested, std::string(10000, 'a')));
}

TEST_CASE("regex: a compiled pattern is reusable and copyable") {
  const Regex re = compiled("(\\d+)");
  const Regex copy = re;
  CHECK(re.search("a1"));
  CHECK(copy.search("a1"));
  CHECK_FALSE(copy.search("a"));
  CHECK(copy.replace_all("a1b22", "<$1>", kUnlimited) == "a<1>b<22>");
}

}  // namespace
}  // namespace fhirgate::fhir
