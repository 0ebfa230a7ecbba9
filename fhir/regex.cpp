// Regular expressions in linear time.
//
// Why not std::regex. libstdc++'s std::regex backtracks, so nested repetition (`(.*)*x`) takes time
// exponential in the input; it recurses once per input character, so long text overflows the stack; and
// it reads counts and back-reference numbers into a long without overflow checks. FHIRPath patterns come
// from profiles and expressions, the text from requests: neither may be able to stall or crash a worker.
//
// How. compile() parses the pattern into a small tree (recursive descent, at most kMaxNesting groups
// deep), then emits a program for a Pike VM, Thompson's NFA simulation with capture slots. Counted
// repetitions are expanded into copies, so the program holds no counters. The VM reads the text once,
// one code point per step, advancing every live thread in lockstep; a thread is an instruction plus its
// capture slots, and at most one thread per instruction survives a step (the first to arrive), so a
// match costs at most (instructions × (characters + 1)) steps and memory proportional to the program.
// Following jumps and splits uses an explicit stack, never recursion. Threads are kept in the order a
// backtracking engine would try them (the first alternative first, a greedy quantifier's next iteration
// before leaving it, a lazy one's after, an earlier start before a later one), and a thread reaching the
// end cuts off every thread behind it, so the match is the one a backtracking engine returns: leftmost,
// then preferred. (Captures inside a repeated group keep their last iteration, as in PCRE.) Boolean
// searches track no captures and stop at the first thread to match; replace_all tracks the whole match
// and groups 1 to 9, the ones a replacement can name.
//
// Limits. Back-references and lookaround cannot run in linear time and are refused, as are possessive
// quantifiers, named groups and syntax whose meaning differs between ECMAScript and PCRE (`[]`), so a
// pattern never silently means something else. Counts above 1,000, groups nested deeper than 100 and
// programs past 20,000 instructions are refused: real patterns are far below (FHIR's dateTime rule is
// 117 instructions, `\d{1000}` is 1,000), and the bound caps both a match's work per character (about
// 0.2 ms at 20,000) and the VM's thread lists (a few hundred KB at most).
#include "fhir/regex.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <iterator>
#include <limits>
#include <utility>
#include <vector>

#include "fhir/utf8.hpp"

namespace fhirgate::fhir {

struct Regex::Program {
  enum class Op : std::uint8_t {
    character,          // x: the code point
    any,                // any character
    any_but_newline,    // any character but \n
    set,                // x: index into Program::sets
    split,              // go on at x, and with lower priority at y
    jump,               // go on at x
    save,               // capture slot x = the position
    text_begin,         // ^
    text_end,           // $
    word_boundary,      // \b
    not_word_boundary,  // \B
    match,
  };

  struct Range {
    char32_t lo;
    char32_t hi;
  };
  using Ranges = std::vector<Range>;

  struct Inst {
    Op op;
    std::uint32_t x = 0;
    std::uint32_t y = 0;
  };

  struct CharSet {
    explicit CharSet(Ranges r);  // any order
    bool contains(char32_t c) const;

    std::array<std::uint64_t, 2> ascii{};
    Ranges ranges;  // sorted, not overlapping
  };

  std::vector<Inst> code;
  std::vector<CharSet> sets;
  std::uint32_t groups = 0;  // capturing groups, not counting the whole match
};

namespace {

using Op = Regex::Program::Op;
using Range = Regex::Program::Range;
using Ranges = Regex::Program::Ranges;

// A byte that starts no well-formed UTF-8 sequence is the character kMalformed + byte: outside Unicode,
// so it matches `.`, negated classes and itself, and nothing else.
constexpr char32_t kMalformed = 0x110000;
constexpr char32_t kMaxChar = kMalformed + 0xFF;
constexpr std::size_t kUnset = std::numeric_limits<std::size_t>::max();
constexpr int kUnbounded = -1;
constexpr std::uint32_t kReportedGroups = 10;  // the whole match and $1 to $9

struct Decoded {
  char32_t c;
  std::size_t length;
};

Decoded decode(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return {b0, 1};
  const std::size_t n = utf8_sequence_length(s, i);
  if (n == 0) return {kMalformed + b0, 1};
  char32_t c = b0 & (0x7Fu >> n);
  for (std::size_t k = 1; k < n; ++k) c = (c << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3Fu);
  return {c, n};
}

bool is_word_byte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

bool at_word_boundary(std::string_view text, std::size_t pos) {
  const bool before = pos > 0 && is_word_byte(text[pos - 1]);
  const bool after = pos < text.size() && is_word_byte(text[pos]);
  return before != after;
}

const Ranges kDigit = {{'0', '9'}};
const Ranges kWord = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
const Ranges kSpace = {{0x09, 0x0D},     {0x20, 0x20},     {0xA0, 0xA0},     {0x1680, 0x1680},
                       {0x2000, 0x200A}, {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F},
                       {0x3000, 0x3000}, {0xFEFF, 0xFEFF}};

// Sorted, with overlapping and adjacent ranges merged.
Ranges normalized(Ranges ranges) {
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.lo < b.lo; });
  Ranges out;
  for (const Range& r : ranges) {
    if (!out.empty() && r.lo <= out.back().hi + 1) {
      out.back().hi = std::max(out.back().hi, r.hi);
    } else {
      out.push_back(r);
    }
  }
  return out;
}

Ranges complement(const Ranges& ranges) {
  Ranges out;
  char32_t next = 0;
  for (const Range& r : normalized(ranges)) {
    if (r.lo > next) out.push_back({next, r.lo - 1});
    next = r.hi + 1;
  }
  if (next <= kMaxChar) out.push_back({next, kMaxChar});
  return out;
}

struct PatternError {
  std::string what;
  std::size_t at;  // byte offset in the pattern, or kUnset
};

}  // namespace

Regex::Program::CharSet::CharSet(Ranges r) : ranges(normalized(std::move(r))) {
  for (const Range& range : ranges) {
    for (char32_t c = range.lo; c <= range.hi && c < 128; ++c) ascii[c / 64] |= std::uint64_t{1} << (c % 64);
  }
}

bool Regex::Program::CharSet::contains(char32_t c) const {
  if (c < 128) return (ascii[c / 64] >> (c % 64)) & 1;
  const auto it = std::upper_bound(ranges.begin(), ranges.end(), c,
                                   [](char32_t value, const Range& r) { return value < r.lo; });
  return it != ranges.begin() && c <= std::prev(it)->hi;
}

namespace {

using Inst = Regex::Program::Inst;

struct Node {
  enum class Kind : std::uint8_t {
    empty,
    character,
    any,
    set,
    assertion,
    capture,
    concat,
    alternate,
    repeat
  };
  Kind kind = Kind::empty;
  Op assertion = Op::text_begin;
  std::uint32_t value = 0;  // code point, set index or group number
  int min = 0;
  int max = 0;  // or kUnbounded
  bool greedy = true;
  std::vector<std::uint32_t> children;
};

// Recursive descent over the pattern; the recursion is as deep as the groups, at most kMaxNesting.
// Empty parts (`(?:)`, `a{0}`) are dropped, so every node that is not empty compiles to at least one
// instruction and the compiler's work is bounded by the program it emits.
class Parser {
 public:
  Parser(std::string_view pattern, std::vector<Node>& nodes, std::vector<Regex::Program::CharSet>& sets)
      : p_(pattern), nodes_(nodes), sets_(sets) {}

  std::uint32_t run() {
    const std::uint32_t root = alternation(0);
    if (pos_ < p_.size()) fail(pos_, "unmatched ')'");
    return root;
  }

  std::uint32_t groups() const { return groups_; }

 private:
  struct Atom {
    std::uint32_t node;
    bool repeatable;
  };

  struct Escape {
    enum class Kind : std::uint8_t { character, set, boundary, not_boundary };
    Kind kind = Kind::character;
    char32_t c = 0;
    Ranges ranges;
  };

  [[noreturn]] static void fail(std::size_t at, std::string what) { throw PatternError{std::move(what), at}; }

  bool at_end() const { return pos_ >= p_.size(); }
  bool next_is(char c) const { return pos_ < p_.size() && p_[pos_] == c; }

  std::uint32_t add(Node node) {
    nodes_.push_back(std::move(node));
    return static_cast<std::uint32_t>(nodes_.size() - 1);
  }
  std::uint32_t add(Node::Kind kind, std::uint32_t value = 0) {
    Node node;
    node.kind = kind;
    node.value = value;
    return add(std::move(node));
  }
  std::uint32_t add_set(Ranges ranges) {
    sets_.emplace_back(std::move(ranges));
    return add(Node::Kind::set, static_cast<std::uint32_t>(sets_.size() - 1));
  }
  bool is_empty(std::uint32_t node) const { return nodes_[node].kind == Node::Kind::empty; }

  std::uint32_t alternation(int depth) {
    std::vector<std::uint32_t> branches{sequence(depth)};
    while (next_is('|')) {
      ++pos_;
      branches.push_back(sequence(depth));
    }
    if (branches.size() == 1) return branches.front();
    Node node;
    node.kind = Node::Kind::alternate;
    node.children = std::move(branches);
    return add(std::move(node));
  }

  std::uint32_t sequence(int depth) {
    std::vector<std::uint32_t> items;
    while (!at_end() && !next_is('|') && !next_is(')')) {
      const std::uint32_t item = quantified(depth);
      if (!is_empty(item)) items.push_back(item);
    }
    if (items.empty()) return add(Node::Kind::empty);
    if (items.size() == 1) return items.front();
    Node node;
    node.kind = Node::Kind::concat;
    node.children = std::move(items);
    return add(std::move(node));
  }

  std::uint32_t quantified(int depth) {
    // Every atom compiles to at least one instruction (or is dropped), so this many cannot fit.
    if (++atoms_ > Regex::kMaxInstructions) fail(kUnset, too_large());
    const Atom atom = this->atom(depth);
    const std::size_t at = pos_;
    int min = 0;
    int max = 0;
    if (!quantifier(min, max)) return atom.node;
    if (!atom.repeatable) fail(at, "nothing to repeat");
    bool greedy = true;
    if (next_is('?')) {
      greedy = false;
      ++pos_;
    } else if (next_is('+')) {
      fail(at, "possessive quantifiers are not supported");
    }
    const std::size_t after = pos_;
    if (int ignored_min = 0, ignored_max = 0; quantifier(ignored_min, ignored_max)) {
      fail(after, "nothing to repeat");
    }
    if (max == 0 || is_empty(atom.node)) return add(Node::Kind::empty);
    if (min == 1 && max == 1) return atom.node;
    Node node;
    node.kind = Node::Kind::repeat;
    node.min = min;
    node.max = max;
    node.greedy = greedy;
    node.children = {atom.node};
    return add(std::move(node));
  }

  static std::string too_large() {
    return "the pattern is too large: more than " + std::to_string(Regex::kMaxInstructions) +
           " instructions once counted repetitions are expanded";
  }

  // *, +, ?, {n}, {n,}, {n,m} at pos_: consumes it and returns true, else leaves pos_ and returns false.
  bool quantifier(int& min, int& max) {
    if (at_end()) return false;
    switch (p_[pos_]) {
      case '*':
        min = 0, max = kUnbounded;
        ++pos_;
        return true;
      case '+':
        min = 1, max = kUnbounded;
        ++pos_;
        return true;
      case '?':
        min = 0, max = 1;
        ++pos_;
        return true;
      case '{':
        return count(min, max);
      default:
        return false;
    }
  }

  bool count(int& min, int& max) {
    const std::size_t start = pos_;
    std::size_t i = pos_ + 1;
    const auto number = [&](int& out) {
      const std::size_t first = i;
      long long value = 0;
      for (; i < p_.size() && p_[i] >= '0' && p_[i] <= '9'; ++i) {
        value = std::min<long long>(value * 10 + (p_[i] - '0'), Regex::kMaxCount + 1);
      }
      out = static_cast<int>(value);
      return i > first;
    };
    if (!number(min)) return false;
    max = min;
    if (i < p_.size() && p_[i] == ',') {
      ++i;
      if (!number(max)) max = kUnbounded;
    }
    if (i >= p_.size() || p_[i] != '}') return false;
    pos_ = i + 1;
    if (min > Regex::kMaxCount || max > Regex::kMaxCount) {
      fail(start, "repetition count above " + std::to_string(Regex::kMaxCount));
    }
    if (max != kUnbounded && max < min) fail(start, "repetition counts out of order");
    return true;
  }

  Atom atom(int depth) {
    const std::size_t start = pos_;
    const char c = p_[pos_];
    switch (c) {
      case '(':
        return {group(depth), true};
      case '[':
        return {add_set(char_class()), true};
      case '.':
        ++pos_;
        return {add(Node::Kind::any), true};
      case '^':
      case '$': {
        ++pos_;
        Node node;
        node.kind = Node::Kind::assertion;
        node.assertion = c == '^' ? Op::text_begin : Op::text_end;
        return {add(std::move(node)), false};
      }
      case '*':
      case '+':
      case '?':
        fail(start, "nothing to repeat");
      case '{': {
        int min = 0;
        int max = 0;
        if (quantifier(min, max)) fail(start, "nothing to repeat");
        fail(start, "'{' that does not start a count {n}, {n,} or {n,m} must be escaped as \\{");
      }
      case '\\': {
        Escape e = escape(false);
        switch (e.kind) {
          case Escape::Kind::character:
            return {add(Node::Kind::character, e.c), true};
          case Escape::Kind::set:
            return {add_set(std::move(e.ranges)), true};
          case Escape::Kind::boundary:
          case Escape::Kind::not_boundary: {
            Node node;
            node.kind = Node::Kind::assertion;
            node.assertion = e.kind == Escape::Kind::boundary ? Op::word_boundary : Op::not_word_boundary;
            return {add(std::move(node)), false};
          }
        }
        break;
      }
      default:
        break;
    }
    const Decoded d = decode(p_, pos_);
    pos_ += d.length;
    return {add(Node::Kind::character, d.c), true};
  }

  std::uint32_t group(int depth) {
    const std::size_t start = pos_;
    ++pos_;
    bool capture = true;
    if (next_is('?')) {
      const char kind = pos_ + 1 < p_.size() ? p_[pos_ + 1] : '\0';
      const char after = pos_ + 2 < p_.size() ? p_[pos_ + 2] : '\0';
      if (kind == ':') {
        capture = false;
        pos_ += 2;
      } else if (kind == '=' || kind == '!') {
        fail(start, "lookahead is not supported");
      } else if (kind == '<' && (after == '=' || after == '!')) {
        fail(start, "lookbehind is not supported");
      } else if (kind == '<' || kind == 'P' || kind == '\'') {
        fail(start, "named groups are not supported");
      } else if (kind == '>') {
        fail(start, "atomic groups are not supported");
      } else {
        fail(start, "unsupported group syntax '(?'; only (?: ) is supported");
      }
    }
    if (depth + 1 > Regex::kMaxNesting) {
      fail(start, "groups nested deeper than " + std::to_string(Regex::kMaxNesting));
    }
    const std::uint32_t number = capture ? ++groups_ : 0;
    const std::uint32_t inner = alternation(depth + 1);
    if (!next_is(')')) fail(start, "missing ')' for this group");
    ++pos_;
    if (!capture) return inner;
    Node node;
    node.kind = Node::Kind::capture;
    node.value = number;
    node.children = {inner};
    return add(std::move(node));
  }

  Ranges char_class() {
    const std::size_t start = pos_;
    ++pos_;
    const bool negated = next_is('^');
    if (negated) ++pos_;
    if (next_is(']')) {
      fail(start, "empty character class (ECMAScript and PCRE read it differently); write \\] for a ']'");
    }
    Ranges ranges;
    while (true) {
      if (at_end()) fail(start, "missing ']' for this character class");
      if (next_is(']')) {
        ++pos_;
        break;
      }
      const std::size_t item = pos_;
      Escape lo = class_atom();
      if (lo.kind == Escape::Kind::set) {
        ranges.insert(ranges.end(), lo.ranges.begin(), lo.ranges.end());
        continue;
      }
      // A '-' first, last or next to a class escape is itself (as in ECMAScript and PCRE).
      if (next_is('-') && pos_ + 1 < p_.size() && p_[pos_ + 1] != ']') {
        ++pos_;
        Escape hi = class_atom();
        if (hi.kind == Escape::Kind::set) {
          ranges.push_back({lo.c, lo.c});
          ranges.push_back({'-', '-'});
          ranges.insert(ranges.end(), hi.ranges.begin(), hi.ranges.end());
          continue;
        }
        if (hi.c < lo.c) fail(item, "character range out of order");
        ranges.push_back({lo.c, hi.c});
        continue;
      }
      ranges.push_back({lo.c, lo.c});
    }
    return negated ? complement(ranges) : ranges;
  }

  Escape class_atom() {
    if (next_is('\\')) return escape(true);
    if (next_is('[') && pos_ + 1 < p_.size() &&
        (p_[pos_ + 1] == ':' || p_[pos_ + 1] == '=' || p_[pos_ + 1] == '.')) {
      const std::size_t close = p_.find(std::string{p_[pos_ + 1], ']'}, pos_ + 2);
      if (close != std::string_view::npos && p_.find(']', pos_ + 2) == close + 1) {
        fail(pos_, "POSIX classes like [:alpha:] are not supported; escape the '[' as \\[");
      }
    }
    const Decoded d = decode(p_, pos_);
    pos_ += d.length;
    Escape e;
    e.c = d.c;
    return e;
  }

  Escape escape(bool in_class) {
    const std::size_t start = pos_;
    ++pos_;
    if (at_end()) fail(start, "the pattern ends in '\\'");
    Escape e;
    const auto set = [&](const Ranges& ranges, bool negated) {
      e.kind = Escape::Kind::set;
      e.ranges = negated ? complement(ranges) : ranges;
      return e;
    };
    const auto character = [&](char32_t c) {
      e.c = c;
      return e;
    };
    if (static_cast<unsigned char>(p_[pos_]) >= 0x80) {
      const Decoded d = decode(p_, pos_);
      pos_ += d.length;
      return character(d.c);
    }
    const char c = p_[pos_++];
    switch (c) {
      case 'd':
      case 'D':
        return set(kDigit, c == 'D');
      case 'w':
      case 'W':
        return set(kWord, c == 'W');
      case 's':
      case 'S':
        return set(kSpace, c == 'S');
      case 'b':
        if (in_class) return character(0x08);
        e.kind = Escape::Kind::boundary;
        return e;
      case 'B':
        if (in_class) fail(start, "\\B is not allowed in a character class");
        e.kind = Escape::Kind::not_boundary;
        return e;
      case 't':
        return character('\t');
      case 'n':
        return character('\n');
      case 'v':
        return character('\v');
      case 'f':
        return character('\f');
      case 'r':
        return character('\r');
      case '0':
        if (!at_end() && p_[pos_] >= '0' && p_[pos_] <= '9') fail(start, "octal escapes are not supported");
        return character(0);
      case 'x':
        return character(hex(start, 2));
      case 'u': {
        if (next_is('{')) fail(start, "\\u{...} is not supported; write \\uHHHH");
        const char32_t unit = hex(start, 4);
        // A surrogate pair written as two escapes is the one code point it encodes.
        if (unit >= 0xD800 && unit <= 0xDBFF && p_.substr(pos_, 2) == "\\u") {
          const std::size_t saved = pos_;
          pos_ += 2;
          if (const char32_t low = hex_or_none(4); low >= 0xDC00 && low <= 0xDFFF) {
            return character(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00));
          }
          pos_ = saved;
        }
        return character(unit);
      }
      case 'k':
        fail(start, "named back-references are not supported");
      case 'p':
      case 'P':
        fail(start, "Unicode property escapes (\\p, \\P) are not supported");
      case 'c':
        fail(start, "control escapes (\\cX) are not supported");
      default:
        break;
    }
    if (c >= '1' && c <= '9') fail(start, "back-references are not supported");
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      fail(start, std::string("unknown escape \\") + c);
    }
    return character(static_cast<unsigned char>(c));
  }

  char32_t hex(std::size_t start, std::size_t digits) {
    const char32_t value = hex_or_none(digits);
    if (value == kUnsetChar) {
      fail(start, "\\" + std::string(1, p_[start + 1]) + " needs " + std::to_string(digits) + " hex digits");
    }
    return value;
  }

  static constexpr char32_t kUnsetChar = 0xFFFFFFFF;

  char32_t hex_or_none(std::size_t digits) {
    if (p_.size() - pos_ < digits) return kUnsetChar;
    char32_t value = 0;
    for (std::size_t k = 0; k < digits; ++k) {
      const char h = p_[pos_ + k];
      int v = 0;
      if (h >= '0' && h <= '9') {
        v = h - '0';
      } else if (h >= 'a' && h <= 'f') {
        v = h - 'a' + 10;
      } else if (h >= 'A' && h <= 'F') {
        v = h - 'A' + 10;
      } else {
        return kUnsetChar;
      }
      value = value * 16 + static_cast<char32_t>(v);
    }
    pos_ += digits;
    return value;
  }

  std::string_view p_;
  std::size_t pos_ = 0;
  std::vector<Node>& nodes_;
  std::vector<Regex::Program::CharSet>& sets_;
  std::uint32_t groups_ = 0;
  std::size_t atoms_ = 0;
};

// Emits the program: save 0, the pattern, save 1, match. Recursion follows the tree, as deep as the groups.
class Compiler {
 public:
  Compiler(const std::vector<Node>& nodes, Regex::Options options, Regex::Program& program)
      : nodes_(nodes), options_(options), code_(program.code) {}

  void run(std::uint32_t root) {
    add({Op::save, 0});
    emit(root);
    add({Op::save, 1});
    add({Op::match});
  }

 private:
  std::uint32_t here() const { return static_cast<std::uint32_t>(code_.size()); }

  std::uint32_t add(Inst inst) {
    if (code_.size() >= Regex::kMaxInstructions) {
      throw PatternError{"the pattern is too large: more than " + std::to_string(Regex::kMaxInstructions) +
                             " instructions once counted repetitions are expanded",
                         kUnset};
    }
    code_.push_back(inst);
    return here() - 1;
  }

  // A split preferring `next` (the following instruction) when greedy; `out` is patched later.
  std::uint32_t add_split(bool greedy) {
    const std::uint32_t at = add({Op::split});
    code_[at].x = greedy ? at + 1 : 0;
    code_[at].y = greedy ? 0 : at + 1;
    return at;
  }
  void patch_out(std::uint32_t split, bool greedy, std::uint32_t out) {
    (greedy ? code_[split].y : code_[split].x) = out;
  }

  void emit(std::uint32_t n) {
    const Node& node = nodes_[n];
    switch (node.kind) {
      case Node::Kind::empty:
        return;
      case Node::Kind::character:
        add({Op::character, node.value});
        return;
      case Node::Kind::any:
        add({options_.dot_matches_newline ? Op::any : Op::any_but_newline});
        return;
      case Node::Kind::set:
        add({Op::set, node.value});
        return;
      case Node::Kind::assertion:
        add({node.assertion});
        return;
      case Node::Kind::capture:
        add({Op::save, 2 * node.value});
        emit(node.children.front());
        add({Op::save, 2 * node.value + 1});
        return;
      case Node::Kind::concat:
        for (const std::uint32_t child : node.children) emit(child);
        return;
      case Node::Kind::alternate: {
        std::vector<std::uint32_t> jumps;
        for (std::size_t i = 0; i + 1 < node.children.size(); ++i) {
          const std::uint32_t split = add_split(true);
          emit(node.children[i]);
          jumps.push_back(add({Op::jump}));
          patch_out(split, true, here());
        }
        emit(node.children.back());
        for (const std::uint32_t jump : jumps) code_[jump].x = here();
        return;
      }
      case Node::Kind::repeat:
        repeat(node);
        return;
    }
  }

  void repeat(const Node& node) {
    const std::uint32_t child = node.children.front();
    if (node.max == kUnbounded) {
      if (node.min == 0) {
        // loop: split body, out; body; jump loop
        const std::uint32_t loop = add_split(node.greedy);
        emit(child);
        add({Op::jump, loop});
        patch_out(loop, node.greedy, here());
        return;
      }
      // x{n,} is n-1 copies, then x+: body; split body, out
      for (int i = 1; i < node.min; ++i) emit(child);
      const std::uint32_t body = here();
      emit(child);
      const std::uint32_t split = add({Op::split});
      code_[split].x = node.greedy ? body : here();
      code_[split].y = node.greedy ? here() : body;
      return;
    }
    for (int i = 0; i < node.min; ++i) emit(child);
    // x{n,m}: after n copies, m-n optional ones, each entered only after the one before it.
    std::vector<std::uint32_t> splits;
    for (int i = node.min; i < node.max; ++i) {
      splits.push_back(add_split(node.greedy));
      emit(child);
    }
    for (const std::uint32_t split : splits) patch_out(split, node.greedy, here());
  }

  const std::vector<Node>& nodes_;
  Regex::Options options_;
  std::vector<Inst>& code_;
};

// The Pike VM. One Matcher serves one call (search, full_match or every search of a replace_all).
class Matcher {
 public:
  // `slots` capture slots are tracked (0 for a yes/no answer); a run stops once it has taken `max_steps`.
  Matcher(const Regex::Program& program, std::size_t slots, std::uint64_t max_steps)
      : program_(program),
        slots_(slots),
        max_steps_(max_steps),
        current_(program.code.size()),
        next_(program.code.size()),
        captures_(slots, kUnset),
        best_(slots, kUnset) {}

  // The preferred match starting at `from` (anchored) or at the leftmost position from `from` on, ending
  // at the end of text when `to_end`. Its slots are in captures() when slots were asked for.
  bool run(std::string_view text, std::size_t from, bool anchored, bool to_end) {
    current_.clear();
    bool matched = false;
    std::size_t pos = from;
    while (true) {
      if (!matched && (!anchored || pos == from)) {
        std::fill(captures_.begin(), captures_.end(), kUnset);
        follow(current_, 0, text, pos);
      }
      steps_ += current_.pcs.size() + 1;
      if (steps_ > max_steps_) {
        exhausted_ = true;
        return false;
      }
      const bool more = pos < text.size();
      const Decoded d = more ? decode(text, pos) : Decoded{0, 0};
      if (current_.pcs.empty()) {
        if (matched || anchored || !more) break;
        current_.clear();
        pos += d.length;
        continue;
      }
      next_.clear();
      for (std::size_t i = 0; i < current_.pcs.size(); ++i) {
        const std::uint32_t pc = current_.pcs[i];
        const Inst& inst = program_.code[pc];
        if (inst.op == Op::match) {
          if (to_end && more) continue;
          if (slots_ == 0) return true;
          matched = true;
          std::copy_n(current_.captures.begin() + static_cast<std::ptrdiff_t>(i * slots_), slots_,
                      best_.begin());
          break;  // the threads behind this one are less preferred
        }
        if (more && consumes(inst, d.c)) {
          std::copy_n(current_.captures.begin() + static_cast<std::ptrdiff_t>(i * slots_), slots_,
                      captures_.begin());
          follow(next_, pc + 1, text, pos + d.length);
        }
      }
      std::swap(current_, next_);
      if (!more) break;
      pos += d.length;
    }
    return matched;
  }

  const std::vector<std::size_t>& captures() const { return best_; }
  bool exhausted() const { return exhausted_; }

 private:
  // Threads in priority order, at most one per instruction.
  struct List {
    explicit List(std::size_t instructions) : seen(instructions, 0) {}
    void clear() {
      pcs.clear();
      captures.clear();
      if (++generation == 0) {
        std::fill(seen.begin(), seen.end(), 0);
        generation = 1;
      }
    }
    // True the first time pc is reached since clear().
    bool visit(std::uint32_t pc) {
      if (seen[pc] == generation) return false;
      seen[pc] = generation;
      return true;
    }
    std::vector<std::uint32_t> pcs;
    std::vector<std::size_t> captures;  // slots per thread, in the order of pcs
    std::vector<std::uint32_t> seen;
    std::uint32_t generation = 1;
  };

  struct Frame {
    std::uint32_t pc;
    std::uint32_t slot;  // kNoSlot: follow pc; else restore slot to `old`
    std::size_t old;
  };
  static constexpr std::uint32_t kNoSlot = std::numeric_limits<std::uint32_t>::max();

  bool consumes(const Inst& inst, char32_t c) const {
    switch (inst.op) {
      case Op::character:
        return c == inst.x;
      case Op::any:
        return true;
      case Op::any_but_newline:
        return c != '\n';
      case Op::set:
        return program_.sets[inst.x].contains(c);
      default:
        return false;
    }
  }

  // Adds the threads reachable from pc at pos without reading a character (through jumps, splits, saves
  // and assertions that hold), in priority order, with captures_ as the slots so far.
  void follow(List& list, std::uint32_t start, std::string_view text, std::size_t pos) {
    stack_.clear();
    stack_.push_back({start, kNoSlot, 0});
    while (!stack_.empty()) {
      const Frame frame = stack_.back();
      stack_.pop_back();
      if (frame.slot != kNoSlot) {
        captures_[frame.slot] = frame.old;
        continue;
      }
      for (std::uint32_t pc = frame.pc; list.visit(pc);) {
        const Inst& inst = program_.code[pc];
        bool go_on = true;
        switch (inst.op) {
          case Op::jump:
            pc = inst.x;
            break;
          case Op::split:
            stack_.push_back({inst.y, kNoSlot, 0});
            pc = inst.x;
            break;
          case Op::save:
            if (inst.x < slots_) {
              stack_.push_back({0, inst.x, captures_[inst.x]});
              captures_[inst.x] = pos;
            }
            ++pc;
            break;
          case Op::text_begin:
            go_on = pos == 0;
            ++pc;
            break;
          case Op::text_end:
            go_on = pos == text.size();
            ++pc;
            break;
          case Op::word_boundary:
          case Op::not_word_boundary:
            go_on = at_word_boundary(text, pos) == (inst.op == Op::word_boundary);
            ++pc;
            break;
          default:
            list.pcs.push_back(pc);
            list.captures.insert(list.captures.end(), captures_.begin(), captures_.end());
            go_on = false;
            break;
        }
        if (!go_on) break;
      }
    }
  }

  const Regex::Program& program_;
  std::size_t slots_;
  std::uint64_t max_steps_;
  std::uint64_t steps_ = 0;
  bool exhausted_ = false;
  List current_;
  List next_;
  std::vector<std::size_t> captures_;
  std::vector<std::size_t> best_;
  std::vector<Frame> stack_;
};

void expand(std::string_view replacement, std::string_view text, const std::vector<std::size_t>& slots,
            std::string& out) {
  for (std::size_t i = 0; i < replacement.size(); ++i) {
    const char c = replacement[i];
    const char next = i + 1 < replacement.size() ? replacement[i + 1] : '\0';
    if (c != '$' || !(next == '$' || (next >= '1' && next <= '9'))) {
      out += c;
      continue;
    }
    ++i;
    if (next == '$') {
      out += '$';
      continue;
    }
    const auto group = static_cast<std::size_t>(next - '0');
    if (2 * group + 1 < slots.size() && slots[2 * group] != kUnset && slots[2 * group + 1] != kUnset) {
      out += text.substr(slots[2 * group], slots[2 * group + 1] - slots[2 * group]);
    }
  }
}

}  // namespace

Result<Regex> Regex::compile(std::string_view pattern, Options options) {
  auto program = std::make_shared<Program>();
  try {
    std::vector<Node> nodes;
    Parser parser(pattern, nodes, program->sets);
    const std::uint32_t root = parser.run();
    program->groups = parser.groups();
    Compiler(nodes, options, *program).run(root);
  } catch (const PatternError& e) {
    std::string what = e.what;
    if (e.at != kUnset) what += " (at position " + std::to_string(e.at + 1) + ")";
    return Error::make(ErrorCode::invalid_input, std::move(what));
  }
  return Regex(std::move(program));
}

bool Regex::search(std::string_view text) const {
  return Matcher(*program_, 0, std::numeric_limits<std::uint64_t>::max()).run(text, 0, false, false);
}

bool Regex::full_match(std::string_view text) const {
  return Matcher(*program_, 0, std::numeric_limits<std::uint64_t>::max()).run(text, 0, true, true);
}

std::optional<std::string> Regex::replace_all(std::string_view text, std::string_view replacement,
                                              std::uint64_t max_steps) const {
  const std::size_t slots = 2 * std::min<std::size_t>(program_->groups + 1, kReportedGroups);
  Matcher matcher(*program_, slots, max_steps);
  std::string out;
  std::size_t copied = 0;  // text before this is in out
  std::size_t from = 0;
  while (from <= text.size()) {
    if (!matcher.run(text, from, false, false)) {
      if (matcher.exhausted()) return std::nullopt;
      break;
    }
    const std::size_t begin = matcher.captures()[0];
    const std::size_t end = matcher.captures()[1];
    assert(begin != kUnset && end != kUnset && copied <= begin && begin <= end);
    out.append(text.substr(copied, begin - copied));
    expand(replacement, text, matcher.captures(), out);
    copied = end;
    if (end > begin) {
      from = end;
    } else if (end < text.size()) {
      from = end + decode(text, end).length;
    } else {
      break;
    }
  }
  out.append(text.substr(copied));
  return out;
}

std::size_t Regex::size() const {
  return program_->code.size();
}

}  // namespace fhirgate::fhir
