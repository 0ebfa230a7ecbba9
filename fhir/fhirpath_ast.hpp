#pragma once
// Private to the FHIRPath engine: the compiled expression tree shared by the parser
// (fhirpath_parse.cpp) and the evaluator (fhirpath.cpp). Trees are built once and never mutated, so
// any number of threads may evaluate one concurrently.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/regex.hpp"
#include "fhir/result.hpp"

namespace fhirgate::fhir::fhirpath {

enum class ExprKind : std::uint8_t {
  empty,     // {}
  boolean,   // true / false
  string,    // 'text'
  integer,   // 42
  decimal,   // 4.2
  date,      // @2020-01
  datetime,  // @2020-01-01T10:00
  time,      // @T10:00
  quantity,  // 5 'mg', 7 days
  member,    // name, optionally on `source`
  function,  // name(args), optionally on `source`
  indexer,   // source[index]
  variable,  // $this $index $total %name
  unary,     // -x +x
  binary,    // x op y
  type_op,   // x is T, x as T
};

enum class BinaryOp : std::uint8_t {
  mul,
  div,
  int_div,
  mod,
  add,
  sub,
  concat,
  union_,
  lt,
  gt,
  le,
  ge,
  eq,
  ne,
  equiv,
  not_equiv,
  in,
  contains,
  and_,
  or_,
  xor_,
  implies,
};

enum class Fn : std::uint8_t {
  empty,
  exists,
  all,
  all_true,
  any_true,
  all_false,
  any_false,
  subset_of,
  superset_of,
  count,
  distinct,
  is_distinct,
  where,
  select,
  repeat,
  of_type,
  as,
  is,
  single,
  first,
  last,
  tail,
  skip,
  take,
  intersect,
  exclude,
  union_,
  combine,
  iif,
  to_boolean,
  converts_to_boolean,
  to_integer,
  converts_to_integer,
  to_decimal,
  converts_to_decimal,
  to_string,
  converts_to_string,
  to_date,
  converts_to_date,
  to_datetime,
  converts_to_datetime,
  to_time,
  converts_to_time,
  to_quantity,
  converts_to_quantity,
  index_of,
  substring,
  starts_with,
  ends_with,
  contains,
  upper,
  lower,
  replace,
  matches,
  replace_matches,
  length,
  to_chars,
  split,
  join,
  trim,
  encode,
  decode,
  children,
  descendants,
  not_,
  trace,
  today,
  now,
  time_of_day,
  extension,
  has_value,
  get_value,
  resolve,
  conforms_to,
  member_of,
  html_checks,
  aggregate,
  abs,
  ceiling,
  exp,
  floor,
  ln,
  log,
  power,
  round,
  sqrt,
  truncate,
  comparable,
  children_count,  // children().count(), fused by the parser (ele-1 runs on every element)
};

struct TypeName {
  std::string ns;    // "FHIR", "System" or empty when unqualified
  std::string name;  // "Patient", "String", "string"
};

struct Expr {
  ExprKind kind = ExprKind::empty;
  BinaryOp op = BinaryOp::add;
  Fn fn = Fn::empty;
  char sign = '-';  // unary operator
  bool boolean = false;
  std::int8_t scale = 0;  // decimal and quantity literals: digits after the point
  std::int64_t integer = 0;
  long double decimal = 0;
  std::string text;        // member/function/variable name, string value, date text, quantity unit
  std::string underscore;  // members: "_" + name, the primitive companion
  TypeName type;           // type_op and is/as/ofType
  std::unique_ptr<const Expr> source;
  std::vector<std::unique_ptr<const Expr>> args;
  std::shared_ptr<const Regex> regex;  // matches/replaceMatches with a literal pattern
};

// Parses a whole expression. Errors: invalid_input with the position and problem.
Result<std::unique_ptr<const Expr>> parse(std::string_view text);

// Compiles a matches()/replaceMatches() pattern in the spec's "single line" mode (`.` matches a newline).
// Errors: Regex::compile's, the message starting "invalid regular expression: ".
Result<std::shared_ptr<const Regex>> compile_regex(std::string_view pattern);

}  // namespace fhirgate::fhir::fhirpath
