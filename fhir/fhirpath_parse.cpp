// FHIRPath lexer and recursive-descent parser.
//
// The grammar is N1's, by precedence from loosest to tightest: implies; or xor; and; in contains;
// = ~ != !~; < > <= >=; |; is as; + - &; * / div mod; unary + -; invocation (. and []). The lexer
// works on demand (one token of lookahead) so literals whose meaning depends on context stay simple:
// a number followed by a string or a calendar keyword is a quantity, `2.power(3)` is the integer 2
// invoked, and `@` literals are classified by shape. Function names are resolved here, so an unknown
// function or a wrong argument count is a compile error rather than a surprise at evaluation time.
// Nesting and size are bounded so that evaluation (a recursive tree walk) has bounded stack depth.
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <unordered_map>
#include <utility>

#include "fhir/fhirpath_ast.hpp"

namespace fhirgate::fhir::fhirpath {

namespace {

struct FunctionInfo {
  Fn fn;
  std::uint8_t min;
  std::uint8_t max;
};

const std::unordered_map<std::string_view, FunctionInfo>& functions() {
  static const std::unordered_map<std::string_view, FunctionInfo> table = {
      {"empty", {Fn::empty, 0, 0}},
      {"exists", {Fn::exists, 0, 1}},
      {"all", {Fn::all, 1, 1}},
      {"allTrue", {Fn::all_true, 0, 0}},
      {"anyTrue", {Fn::any_true, 0, 0}},
      {"allFalse", {Fn::all_false, 0, 0}},
      {"anyFalse", {Fn::any_false, 0, 0}},
      {"subsetOf", {Fn::subset_of, 1, 1}},
      {"supersetOf", {Fn::superset_of, 1, 1}},
      {"count", {Fn::count, 0, 0}},
      {"distinct", {Fn::distinct, 0, 0}},
      {"isDistinct", {Fn::is_distinct, 0, 0}},
      {"where", {Fn::where, 1, 1}},
      {"select", {Fn::select, 1, 1}},
      {"repeat", {Fn::repeat, 1, 1}},
      {"ofType", {Fn::of_type, 1, 1}},
      {"as", {Fn::as, 1, 1}},
      {"is", {Fn::is, 1, 1}},
      {"single", {Fn::single, 0, 0}},
      {"first", {Fn::first, 0, 0}},
      {"last", {Fn::last, 0, 0}},
      {"tail", {Fn::tail, 0, 0}},
      {"skip", {Fn::skip, 1, 1}},
      {"take", {Fn::take, 1, 1}},
      {"intersect", {Fn::intersect, 1, 1}},
      {"exclude", {Fn::exclude, 1, 1}},
      {"union", {Fn::union_, 1, 1}},
      {"combine", {Fn::combine, 1, 1}},
      {"iif", {Fn::iif, 2, 3}},
      {"toBoolean", {Fn::to_boolean, 0, 0}},
      {"convertsToBoolean", {Fn::converts_to_boolean, 0, 0}},
      {"toInteger", {Fn::to_integer, 0, 0}},
      {"convertsToInteger", {Fn::converts_to_integer, 0, 0}},
      {"toDecimal", {Fn::to_decimal, 0, 0}},
      {"convertsToDecimal", {Fn::converts_to_decimal, 0, 0}},
      {"toString", {Fn::to_string, 0, 0}},
      {"convertsToString", {Fn::converts_to_string, 0, 0}},
      {"toDate", {Fn::to_date, 0, 0}},
      {"convertsToDate", {Fn::converts_to_date, 0, 0}},
      {"toDateTime", {Fn::to_datetime, 0, 0}},
      {"convertsToDateTime", {Fn::converts_to_datetime, 0, 0}},
      {"toTime", {Fn::to_time, 0, 0}},
      {"convertsToTime", {Fn::converts_to_time, 0, 0}},
      {"toQuantity", {Fn::to_quantity, 0, 1}},
      {"convertsToQuantity", {Fn::converts_to_quantity, 0, 1}},
      {"indexOf", {Fn::index_of, 1, 1}},
      {"substring", {Fn::substring, 1, 2}},
      {"startsWith", {Fn::starts_with, 1, 1}},
      {"endsWith", {Fn::ends_with, 1, 1}},
      {"contains", {Fn::contains, 1, 1}},
      {"upper", {Fn::upper, 0, 0}},
      {"lower", {Fn::lower, 0, 0}},
      {"replace", {Fn::replace, 2, 2}},
      {"matches", {Fn::matches, 1, 1}},
      {"replaceMatches", {Fn::replace_matches, 2, 2}},
      {"length", {Fn::length, 0, 0}},
      {"toChars", {Fn::to_chars, 0, 0}},
      {"split", {Fn::split, 1, 1}},
      {"join", {Fn::join, 0, 1}},
      {"trim", {Fn::trim, 0, 0}},
      {"encode", {Fn::encode, 1, 1}},
      {"decode", {Fn::decode, 1, 1}},
      {"children", {Fn::children, 0, 0}},
      {"descendants", {Fn::descendants, 0, 0}},
      {"not", {Fn::not_, 0, 0}},
      {"trace", {Fn::trace, 1, 2}},
      {"today", {Fn::today, 0, 0}},
      {"now", {Fn::now, 0, 0}},
      {"timeOfDay", {Fn::time_of_day, 0, 0}},
      {"extension", {Fn::extension, 1, 1}},
      {"hasValue", {Fn::has_value, 0, 0}},
      {"getValue", {Fn::get_value, 0, 0}},
      {"resolve", {Fn::resolve, 0, 0}},
      {"conformsTo", {Fn::conforms_to, 1, 1}},
      {"memberOf", {Fn::member_of, 1, 1}},
      {"htmlChecks", {Fn::html_checks, 0, 0}},
      {"htmlchecks", {Fn::html_checks, 0, 0}},
      {"aggregate", {Fn::aggregate, 1, 2}},
      {"abs", {Fn::abs, 0, 0}},
      {"ceiling", {Fn::ceiling, 0, 0}},
      {"exp", {Fn::exp, 0, 0}},
      {"floor", {Fn::floor, 0, 0}},
      {"ln", {Fn::ln, 0, 0}},
      {"log", {Fn::log, 1, 1}},
      {"power", {Fn::power, 1, 1}},
      {"round", {Fn::round, 0, 1}},
      {"sqrt", {Fn::sqrt, 0, 0}},
      {"truncate", {Fn::truncate, 0, 0}},
      {"comparable", {Fn::comparable, 1, 1}},
  };
  return table;
}

enum class Tok : std::uint8_t { end, identifier, string, number, date, variable, env, symbol };

struct Token {
  Tok kind = Tok::end;
  std::string text;  // identifier, unescaped string, number, date text (without @), variable name, symbol
  std::size_t pos = 0;
  bool quoted = false;  // a `backtick` identifier (never a keyword)
};

bool is_ident_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}
bool is_ident_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool is_calendar_unit(std::string_view s) {
  static constexpr std::string_view kUnits[] = {
      "year", "years", "month",  "months",  "week",   "weeks",   "day",         "days",
      "hour", "hours", "minute", "minutes", "second", "seconds", "millisecond", "milliseconds"};
  for (auto u : kUnits) {
    if (s == u) return true;
  }
  return false;
}

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Result<std::unique_ptr<const Expr>> run() {
    if (!advance()) return std::move(*error_);
    auto e = expression();
    if (error_) return std::move(*error_);
    if (!e) return fail_now("invalid expression");
    if (tok_.kind != Tok::end) return fail_now("unexpected '" + tok_.text + "'");
    return std::unique_ptr<const Expr>(std::move(e));
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
  Token tok_;
  std::optional<Error> error_;
  int depth_ = 0;
  int nodes_ = 0;
  static constexpr int kMaxDepth = 100;
  static constexpr int kMaxNodes = 1000;

  Error fail_now(const std::string& what) {
    return Error::make(ErrorCode::invalid_input,
                       "FHIRPath syntax error at " + std::to_string(tok_.pos + 1) + ": " + what);
  }
  std::unique_ptr<Expr> fail(const std::string& what) {
    if (!error_) error_ = fail_now(what);
    return nullptr;
  }

  bool lex_error(std::size_t at, const std::string& what) {
    if (!error_) {
      error_ = Error::make(ErrorCode::invalid_input,
                           "FHIRPath syntax error at " + std::to_string(at + 1) + ": " + what);
    }
    tok_ = Token{};
    return false;
  }

  bool read_quoted(char quote, std::string& out) {
    const std::size_t start = pos_;
    ++pos_;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      char c = text_[pos_];
      if (c == '\\') {
        if (pos_ + 1 >= text_.size()) return lex_error(start, "unterminated string");
        const char e = text_[pos_ + 1];
        pos_ += 2;
        switch (e) {
          case 'n':
            out += '\n';
            break;
          case 'r':
            out += '\r';
            break;
          case 't':
            out += '\t';
            break;
          case 'f':
            out += '\f';
            break;
          case 'u': {
            if (pos_ + 4 > text_.size()) return lex_error(start, "bad \\u escape");
            unsigned code = 0;
            auto [p, ec] = std::from_chars(text_.data() + pos_, text_.data() + pos_ + 4, code, 16);
            if (ec != std::errc() || p != text_.data() + pos_ + 4) return lex_error(start, "bad \\u escape");
            pos_ += 4;
            if (code < 0x80) {
              out += static_cast<char>(code);
            } else if (code < 0x800) {
              out += static_cast<char>(0xC0 | (code >> 6));
              out += static_cast<char>(0x80 | (code & 0x3F));
            } else {
              out += static_cast<char>(0xE0 | (code >> 12));
              out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
              out += static_cast<char>(0x80 | (code & 0x3F));
            }
            break;
          }
          default:
            out += e;
            break;
        }
        continue;
      }
      out += c;
      ++pos_;
    }
    if (pos_ >= text_.size()) return lex_error(start, "unterminated string");
    ++pos_;
    return true;
  }

  bool advance() {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (std::isspace(static_cast<unsigned char>(c))) {
        ++pos_;
      } else if (c == '/' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '/') {
        while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
      } else if (c == '/' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '*') {
        const auto close = text_.find("*/", pos_ + 2);
        if (close == std::string_view::npos) return lex_error(pos_, "unterminated comment");
        pos_ = close + 2;
      } else {
        break;
      }
    }
    tok_ = Token{};
    tok_.pos = pos_;
    if (pos_ >= text_.size()) return true;
    const char c = text_[pos_];
    if (is_ident_start(c)) {
      const std::size_t start = pos_;
      while (pos_ < text_.size() && is_ident_char(text_[pos_])) ++pos_;
      tok_.kind = Tok::identifier;
      tok_.text = std::string(text_.substr(start, pos_ - start));
      return true;
    }
    if (c == '`') {
      tok_.kind = Tok::identifier;
      tok_.quoted = true;
      return read_quoted('`', tok_.text);
    }
    if (c == '\'') {
      tok_.kind = Tok::string;
      return read_quoted('\'', tok_.text);
    }
    if (is_digit(c)) {
      const std::size_t start = pos_;
      while (pos_ < text_.size() && is_digit(text_[pos_])) ++pos_;
      if (pos_ + 1 < text_.size() && text_[pos_] == '.' && is_digit(text_[pos_ + 1])) {
        ++pos_;
        while (pos_ < text_.size() && is_digit(text_[pos_])) ++pos_;
      }
      tok_.kind = Tok::number;
      tok_.text = std::string(text_.substr(start, pos_ - start));
      return true;
    }
    if (c == '@') {
      const std::size_t start = ++pos_;
      while (pos_ < text_.size()) {
        const char d = text_[pos_];
        if (is_digit(d) || d == '-' || d == ':' || d == 'T' || d == 'Z') {
          ++pos_;
        } else if (d == '.' && pos_ + 1 < text_.size() && is_digit(text_[pos_ + 1])) {
          ++pos_;
        } else if (d == '+' && pos_ > start && text_[start] != 'T') {
          ++pos_;
        } else {
          break;
        }
      }
      tok_.kind = Tok::date;
      tok_.text = std::string(text_.substr(start, pos_ - start));
      if (tok_.text.empty()) return lex_error(start - 1, "empty date literal");
      return true;
    }
    if (c == '$') {
      const std::size_t start = ++pos_;
      while (pos_ < text_.size() && is_ident_char(text_[pos_])) ++pos_;
      tok_.kind = Tok::variable;
      tok_.text = std::string(text_.substr(start, pos_ - start));
      return true;
    }
    if (c == '%') {
      ++pos_;
      tok_.kind = Tok::env;
      if (pos_ < text_.size() && text_[pos_] == '`') return read_quoted('`', tok_.text);
      if (pos_ < text_.size() && text_[pos_] == '\'') return read_quoted('\'', tok_.text);
      const std::size_t start = pos_;
      while (pos_ < text_.size() && (is_ident_char(text_[pos_]) || text_[pos_] == '-')) ++pos_;
      tok_.text = std::string(text_.substr(start, pos_ - start));
      if (tok_.text.empty()) return lex_error(start - 1, "empty environment variable");
      return true;
    }
    static constexpr std::string_view kTwo[] = {"<=", ">=", "!=", "!~"};
    for (auto s : kTwo) {
      if (text_.substr(pos_, 2) == s) {
        tok_.kind = Tok::symbol;
        tok_.text = std::string(s);
        pos_ += 2;
        return true;
      }
    }
    if (std::string_view("().,[]{}=~<>|+-*/&").find(c) != std::string_view::npos) {
      tok_.kind = Tok::symbol;
      tok_.text = std::string(1, c);
      ++pos_;
      return true;
    }
    return lex_error(pos_, std::string("unexpected character '") + c + "'");
  }

  bool is_symbol(std::string_view s) const { return tok_.kind == Tok::symbol && tok_.text == s; }
  bool is_keyword(std::string_view s) const {
    return tok_.kind == Tok::identifier && !tok_.quoted && tok_.text == s;
  }
  bool expect(std::string_view s) {
    if (!is_symbol(s)) {
      fail("expected '" + std::string(s) + "'");
      return false;
    }
    return advance();
  }

  std::unique_ptr<Expr> make(ExprKind kind) {
    if (++nodes_ > kMaxNodes && !error_) error_ = fail_now("expression too long");
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    return e;
  }

  std::unique_ptr<Expr> binary(BinaryOp op, std::unique_ptr<Expr> l, std::unique_ptr<Expr> r) {
    if (!l || !r) return nullptr;
    auto e = make(ExprKind::binary);
    e->op = op;
    e->args.push_back(std::move(l));
    e->args.push_back(std::move(r));
    return e;
  }

  std::unique_ptr<Expr> expression() {
    if (++depth_ > kMaxDepth) return fail("expression nested too deeply");
    auto e = implies_expr();
    --depth_;
    return e;
  }

  std::unique_ptr<Expr> implies_expr() {
    auto l = or_expr();
    while (l && is_keyword("implies")) {
      if (!advance()) return nullptr;
      l = binary(BinaryOp::implies, std::move(l), or_expr());
    }
    return l;
  }
  std::unique_ptr<Expr> or_expr() {
    auto l = and_expr();
    while (l && (is_keyword("or") || is_keyword("xor"))) {
      const BinaryOp op = tok_.text == "or" ? BinaryOp::or_ : BinaryOp::xor_;
      if (!advance()) return nullptr;
      l = binary(op, std::move(l), and_expr());
    }
    return l;
  }
  std::unique_ptr<Expr> and_expr() {
    auto l = membership_expr();
    while (l && is_keyword("and")) {
      if (!advance()) return nullptr;
      l = binary(BinaryOp::and_, std::move(l), membership_expr());
    }
    return l;
  }
  std::unique_ptr<Expr> membership_expr() {
    auto l = equality_expr();
    while (l && (is_keyword("in") || is_keyword("contains"))) {
      const BinaryOp op = tok_.text == "in" ? BinaryOp::in : BinaryOp::contains;
      if (!advance()) return nullptr;
      l = binary(op, std::move(l), equality_expr());
    }
    return l;
  }
  std::unique_ptr<Expr> equality_expr() {
    auto l = inequality_expr();
    while (l && (is_symbol("=") || is_symbol("~") || is_symbol("!=") || is_symbol("!~"))) {
      const BinaryOp op = tok_.text == "="    ? BinaryOp::eq
                          : tok_.text == "~"  ? BinaryOp::equiv
                          : tok_.text == "!=" ? BinaryOp::ne
                                              : BinaryOp::not_equiv;
      if (!advance()) return nullptr;
      l = binary(op, std::move(l), inequality_expr());
    }
    return l;
  }
  std::unique_ptr<Expr> inequality_expr() {
    auto l = union_expr();
    while (l && (is_symbol("<") || is_symbol(">") || is_symbol("<=") || is_symbol(">="))) {
      const BinaryOp op = tok_.text == "<"    ? BinaryOp::lt
                          : tok_.text == ">"  ? BinaryOp::gt
                          : tok_.text == "<=" ? BinaryOp::le
                                              : BinaryOp::ge;
      if (!advance()) return nullptr;
      l = binary(op, std::move(l), union_expr());
    }
    return l;
  }
  std::unique_ptr<Expr> union_expr() {
    auto l = type_expr();
    while (l && is_symbol("|")) {
      if (!advance()) return nullptr;
      l = binary(BinaryOp::union_, std::move(l), type_expr());
    }
    return l;
  }
  std::unique_ptr<Expr> type_expr() {
    auto l = additive_expr();
    while (l && (is_keyword("is") || is_keyword("as"))) {
      auto e = make(ExprKind::type_op);
      e->fn = tok_.text == "is" ? Fn::is : Fn::as;
      if (!advance()) return nullptr;
      if (!type_specifier(e->type)) return nullptr;
      e->source = std::move(l);
      l = std::move(e);
    }
    return l;
  }
  bool type_specifier(TypeName& out) {
    if (tok_.kind != Tok::identifier) {
      fail("expected a type name");
      return false;
    }
    std::string first = tok_.text;
    if (!advance()) return false;
    if (is_symbol(".")) {
      if (!advance()) return false;
      if (tok_.kind != Tok::identifier) {
        fail("expected a type name");
        return false;
      }
      out.ns = std::move(first);
      out.name = tok_.text;
      return advance();
    }
    out.name = std::move(first);
    return true;
  }
  std::unique_ptr<Expr> additive_expr() {
    auto l = multiplicative_expr();
    while (l && (is_symbol("+") || is_symbol("-") || is_symbol("&"))) {
      const BinaryOp op = tok_.text == "+"   ? BinaryOp::add
                          : tok_.text == "-" ? BinaryOp::sub
                                             : BinaryOp::concat;
      if (!advance()) return nullptr;
      l = binary(op, std::move(l), multiplicative_expr());
    }
    return l;
  }
  std::unique_ptr<Expr> multiplicative_expr() {
    auto l = unary_expr();
    while (l && (is_symbol("*") || is_symbol("/") || is_keyword("div") || is_keyword("mod"))) {
      const BinaryOp op = tok_.text == "*"     ? BinaryOp::mul
                          : tok_.text == "/"   ? BinaryOp::div
                          : tok_.text == "div" ? BinaryOp::int_div
                                               : BinaryOp::mod;
      if (!advance()) return nullptr;
      l = binary(op, std::move(l), unary_expr());
    }
    return l;
  }
  std::unique_ptr<Expr> unary_expr() {
    if (is_symbol("-") || is_symbol("+")) {
      const char sign = tok_.text[0];
      if (!advance()) return nullptr;
      if (++depth_ > kMaxDepth) return fail("expression nested too deeply");
      auto operand = unary_expr();
      --depth_;
      if (!operand) return nullptr;
      auto e = make(ExprKind::unary);
      e->sign = sign;
      e->source = std::move(operand);
      return e;
    }
    return postfix_expr();
  }
  std::unique_ptr<Expr> postfix_expr() {
    auto e = term();
    while (e) {
      if (is_symbol(".")) {
        if (!advance()) return nullptr;
        if (tok_.kind != Tok::identifier) return fail("expected a name after '.'");
        e = invocation(std::move(e));
      } else if (is_symbol("[")) {
        if (!advance()) return nullptr;
        auto index = expression();
        if (!index || !expect("]")) return nullptr;
        auto ix = make(ExprKind::indexer);
        ix->source = std::move(e);
        ix->args.push_back(std::move(index));
        e = std::move(ix);
      } else {
        break;
      }
    }
    return e;
  }

  // At an identifier: a member or a function call on `source` (null for the focus).
  std::unique_ptr<Expr> invocation(std::unique_ptr<Expr> source) {
    std::string name = tok_.text;
    const bool quoted = tok_.quoted;
    const std::size_t at = tok_.pos;
    if (!advance()) return nullptr;
    if (!quoted && is_symbol("(")) {
      if (!advance()) return nullptr;
      auto e = make(ExprKind::function);
      const auto it = functions().find(name);
      if (it == functions().end()) {
        tok_.pos = at;
        return fail("unknown function '" + name + "'");
      }
      e->fn = it->second.fn;
      e->text = name;
      if (!is_symbol(")")) {
        while (true) {
          auto arg = expression();
          if (!arg) return nullptr;
          e->args.push_back(std::move(arg));
          if (is_symbol(",")) {
            if (!advance()) return nullptr;
            continue;
          }
          break;
        }
      }
      if (!expect(")")) return nullptr;
      if (e->args.size() < it->second.min || e->args.size() > it->second.max) {
        tok_.pos = at;
        return fail("wrong number of arguments to " + name + "()");
      }
      if (e->fn == Fn::is || e->fn == Fn::as || e->fn == Fn::of_type) {
        const Expr* arg = e->args.front().get();
        if (arg->kind != ExprKind::member) return fail(name + "() needs a type name");
        if (arg->source) {
          if (arg->source->kind != ExprKind::member || arg->source->source) {
            return fail(name + "() needs a type name");
          }
          e->type.ns = arg->source->text;
        }
        e->type.name = arg->text;
      }
      if ((e->fn == Fn::matches || e->fn == Fn::replace_matches) &&
          e->args.front()->kind == ExprKind::string) {
        auto regex = compile_regex(e->args.front()->text);
        if (!regex) {
          tok_.pos = at;
          return fail(regex.error().issues.front().diagnostics);
        }
        e->regex = std::move(regex).value();
      }
      if (e->fn == Fn::count && source && source->kind == ExprKind::function && source->fn == Fn::children) {
        e->fn = Fn::children_count;
        e->source = std::move(source->source);
        return e;
      }
      e->source = std::move(source);
      return e;
    }
    auto e = make(ExprKind::member);
    e->text = std::move(name);
    e->underscore = "_" + e->text;
    e->source = std::move(source);
    return e;
  }

  std::unique_ptr<Expr> number_literal() {
    const std::string text = tok_.text;
    if (!advance()) return nullptr;
    const auto dot = text.find('.');
    std::unique_ptr<Expr> e;
    if (dot == std::string::npos) {
      e = make(ExprKind::integer);
      std::int64_t v = 0;
      auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (ec != std::errc()) return fail("integer out of range");
      e->integer = v;
      e->decimal = static_cast<long double>(v);
    } else {
      e = make(ExprKind::decimal);
      e->decimal = std::strtold(text.c_str(), nullptr);
      e->scale = static_cast<std::int8_t>(std::min<std::size_t>(text.size() - dot - 1, 30));
    }
    e->text = text;
    if (tok_.kind == Tok::string ||
        (tok_.kind == Tok::identifier && !tok_.quoted && is_calendar_unit(tok_.text))) {
      e->kind = ExprKind::quantity;
      if (dot == std::string::npos) e->scale = 0;
      e->text = tok_.text;
      if (tok_.kind == Tok::identifier) e->boolean = true;
      if (!advance()) return nullptr;
    }
    return e;
  }

  std::unique_ptr<Expr> term() {
    switch (tok_.kind) {
      case Tok::end:
        return fail("unexpected end of expression");
      case Tok::number:
        return number_literal();
      case Tok::string: {
        auto e = make(ExprKind::string);
        e->text = tok_.text;
        if (!advance()) return nullptr;
        return e;
      }
      case Tok::date: {
        const std::string& t = tok_.text;
        ExprKind kind = ExprKind::date;
        std::string text = t;
        if (t[0] == 'T') {
          kind = ExprKind::time;
          text = t.substr(1);
        } else if (t.find('T') != std::string::npos) {
          kind = ExprKind::datetime;
          if (text.back() == 'T') text.pop_back();
        }
        auto e = make(kind);
        e->text = std::move(text);
        if (!advance()) return nullptr;
        return e;
      }
      case Tok::variable: {
        if (tok_.text != "this" && tok_.text != "index" && tok_.text != "total") {
          return fail("unknown variable $" + tok_.text);
        }
        auto e = make(ExprKind::variable);
        e->text = "$" + tok_.text;
        if (!advance()) return nullptr;
        return e;
      }
      case Tok::env: {
        static constexpr std::string_view kKnown[] = {"resource", "rootResource", "context", "ucum",
                                                      "sct",      "loinc",        "us-zip"};
        const std::string& n = tok_.text;
        bool known = n.starts_with("vs-") || n.starts_with("ext-");
        for (auto k : kKnown) known = known || n == k;
        if (!known) return fail("unknown environment variable %" + n);
        auto e = make(ExprKind::variable);
        e->text = "%" + n;
        if (!advance()) return nullptr;
        return e;
      }
      case Tok::identifier: {
        if (!tok_.quoted && (tok_.text == "true" || tok_.text == "false")) {
          auto e = make(ExprKind::boolean);
          e->boolean = tok_.text == "true";
          if (!advance()) return nullptr;
          return e;
        }
        return invocation(nullptr);
      }
      case Tok::symbol:
        if (is_symbol("(")) {
          if (!advance()) return nullptr;
          auto e = expression();
          if (!e || !expect(")")) return nullptr;
          return e;
        }
        if (is_symbol("{")) {
          if (!advance()) return nullptr;
          if (!expect("}")) return nullptr;
          return make(ExprKind::empty);
        }
        return fail("unexpected '" + tok_.text + "'");
    }
    return fail("unexpected token");
  }
};

}  // namespace

Result<std::unique_ptr<const Expr>> parse(std::string_view text) {
  return Parser(text).run();
}

Result<std::shared_ptr<const Regex>> compile_regex(std::string_view pattern) {
  auto regex = Regex::compile(pattern, {.dot_matches_newline = true});
  if (!regex) {
    return Error::make(ErrorCode::invalid_input,
                       "invalid regular expression: " + regex.error().issues.front().diagnostics);
  }
  return std::make_shared<const Regex>(std::move(regex).value());
}

}  // namespace fhirgate::fhir::fhirpath
