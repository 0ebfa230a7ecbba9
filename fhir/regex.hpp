#pragma once
// fhirgate's one regular expression engine: FHIRPath matches()/replaceMatches() and the lexical rules of
// FHIR primitives. It matches in time linear in the input (a Pike VM, see regex.cpp) and uses no
// recursion that input can deepen, so neither the pattern nor the text can make it hang or overflow the
// stack.
//
// Syntax, the subset of ECMAScript and PCRE that FHIR constraints use: literals; `.`; classes `[a-z]`,
// `[^...]`; escapes \d \D \w \W \s \S (ASCII digits and word characters, ECMAScript white space) \b \B
// \t \n \r \f \v \0 \xHH \uHHHH and escaped metacharacters; anchors ^ $ (the whole text, no multiline
// mode); groups ( ) and (?: ); alternation |; quantifiers * + ? {n} {n,} {n,m}, each with a lazy `?`
// form. Patterns and text are UTF-8: `.` and classes consume one code point (a byte that starts no
// well-formed sequence is one character of its own) and ranges compare code points.
//
// A compiled Regex is immutable: any number of threads may match with one concurrently.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "fhir/result.hpp"

namespace fhirgate::fhir {

class Regex {
 public:
  // The limits compile() enforces. Counted repetitions are expanded into copies, so kMaxInstructions is
  // what bounds the cost of a match (see size()).
  static constexpr int kMaxCount = 1000;                  // n and m in {n}, {n,}, {n,m}
  static constexpr int kMaxNesting = 100;                 // groups inside groups
  static constexpr std::size_t kMaxInstructions = 20000;  // the compiled program

  struct Options {
    bool dot_matches_newline = false;  // "single line" mode: `.` matches \n too
  };

  // Errors (invalid_input): a malformed pattern, naming the problem and its 1-based byte position;
  // syntax that cannot run in linear time or means different things in ECMAScript and PCRE
  // (back-references, lookaround, possessive quantifiers, named groups, `[]`); counts above kMaxCount,
  // groups nested deeper than kMaxNesting and programs larger than kMaxInstructions.
  static Result<Regex> compile(std::string_view pattern, Options options);
  static Result<Regex> compile(std::string_view pattern) { return compile(pattern, Options{}); }

  // Whether the pattern matches somewhere in text.
  bool search(std::string_view text) const;
  // Whether the pattern matches the whole of text.
  bool full_match(std::string_view text) const;
  // text with every match, leftmost first and not overlapping, replaced by `replacement`, in which $1 to
  // $9 stand for the groups' text (empty for a group that took no part or does not exist) and $$ for
  // `$`; an empty match inserts the replacement and the search goes on one character further. Each search
  // after a match starts over, so the work is not linear in the worst case (`a*b|a` on a long run of
  // a's is quadratic): nullopt once it would take more than max_steps steps (see size()).
  std::optional<std::string> replace_all(std::string_view text, std::string_view replacement,
                                         std::uint64_t max_steps) const;

  // Instructions in the compiled program. search() and full_match() take at most
  // size() × (text.size() + 1) steps, and memory proportional to size().
  std::size_t size() const;

  struct Program;  // regex.cpp

 private:
  explicit Regex(std::shared_ptr<const Program> program) : program_(std::move(program)) {}

  std::shared_ptr<const Program> program_;
};

}  // namespace fhirgate::fhir
