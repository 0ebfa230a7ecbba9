#pragma once
// Private to the FHIRPath engine: the item of a collection and the System-type operations on it
// (conversion from FHIR primitives, equality, equivalence, ordering, date/time arithmetic, text).
//
// An item is a small value, never owning: element items point into the caller's Node tree (the value
// node and its `_name` companion) with their TypeDef; System values keep their text as a view into the
// compiled expression, the Node tree, or the evaluation's string arena.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/json.hpp"
#include "fhir/model.hpp"

namespace fhirgate::fhir::fhirpath {

enum class VKind : std::uint8_t { node, boolean, integer, decimal, string, date, datetime, time, quantity };

struct Value {
  VKind kind = VKind::node;
  bool flag = false;      // boolean value; for quantities: unit is a calendar keyword
  std::int8_t scale = 0;  // decimal/quantity: digits after the point
  std::int64_t integer = 0;
  long double decimal = 0;          // decimal and quantity value
  std::string_view text;            // string value, date/time text, quantity unit
  const Node* node = nullptr;       // element value (null when only `_name` is present)
  const Node* companion = nullptr;  // `_name` object of a primitive
  const TypeDef* type = nullptr;    // element type; null when unknown

  static Value boolean(bool b) {
    Value v;
    v.kind = VKind::boolean;
    v.flag = b;
    return v;
  }
  static Value integer_of(std::int64_t i) {
    Value v;
    v.kind = VKind::integer;
    v.integer = i;
    return v;
  }
  static Value decimal_of(long double d, int scale) {
    Value v;
    v.kind = VKind::decimal;
    v.decimal = d;
    v.scale = static_cast<std::int8_t>(scale);
    return v;
  }
  static Value string_of(std::string_view s) {
    Value v;
    v.kind = VKind::string;
    v.text = s;
    return v;
  }
};

using Collection = std::vector<Value>;

// A date, dateTime or time broken into components. `precision` counts the components present:
// year=1 ... second=6, millisecond=7; times start at hour (precision 4..7).
struct Moment {
  int part[7] = {0, 1, 1, 0, 0, 0, 0};
  int precision = 0;
  bool time_only = false;
  bool has_zone = false;
  bool zulu = false;
  int zone_minutes = 0;
};

std::optional<Moment> parse_moment(std::string_view text, VKind kind);
std::string format_moment(const Moment& m);
// Ordering: negative, 0, positive; nullopt when the values have different precisions and agree on
// every component they share (the spec's "empty" comparison).
std::optional<int> compare_moments(const Moment& a, const Moment& b);
// True for the calendar duration units (year, month, week, day, hour, minute, second, millisecond, their
// plurals and UCUM codes other than a and mo).
bool is_calendar_duration(std::string_view unit);
// Adds the whole part of `amount` of a calendar unit; nullopt for a unit that is not a calendar duration,
// and when the result falls outside the years 0000 to 9999 that a date can be written with.
std::optional<Moment> add_duration(const Moment& m, long double amount, std::string_view unit);

// The System value of an item: itself for System values; the primitive's value for FHIR primitives;
// a Quantity for FHIR Quantity (and its specialisations). False when there is none (complex items,
// primitives with only an extension).
bool to_system(const Value& in, Value& out);
VKind primitive_kind(std::string_view fhir_type);

long double round_to(long double v, int scale);
std::string format_decimal(long double v, int scale);
// The text form of a System value (toString()).
std::string to_text(const Value& v);

// `=`: nullopt for an incomparable pair (e.g. dates of different precision).
std::optional<bool> equal_values(const Value& a, const Value& b);
bool equivalent_values(const Value& a, const Value& b);
// The factor to the base unit of a small UCUM table, with its dimension; false when unknown.
bool unit_factor(std::string_view unit, bool calendar, long double& factor, std::string_view& dimension);

}  // namespace fhirgate::fhir::fhirpath
