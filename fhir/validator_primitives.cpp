#include "fhir/validator_primitives.hpp"

#include <cstddef>
#include <string>

#include "fhir/datetime.hpp"
#include "fhir/json.hpp"

namespace fhirgate::fhir {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

bool digits_at(std::string_view s, std::size_t pos, std::size_t n) {
  if (pos + n > s.size()) return false;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (!is_digit(s[i])) return false;
  }
  return true;
}

int two(std::string_view s, std::size_t pos) { return (s[pos] - '0') * 10 + (s[pos + 1] - '0'); }

// YYYY(-MM(-DD)?)?; `pos` ends after the date. `parts` is how many of year, month, day were present.
bool date_part(std::string_view s, std::size_t& pos, int& parts) {
  if (!digits_at(s, 0, 4) || s.substr(0, 4) == "0000") return false;
  pos = 4;
  parts = 1;
  if (pos == s.size() || s[pos] != '-') return true;
  if (!digits_at(s, pos + 1, 2)) return false;
  const int month = two(s, pos + 1);
  if (month < 1 || month > 12) return false;
  pos += 3;
  parts = 2;
  if (pos == s.size() || s[pos] != '-') return true;
  if (!digits_at(s, pos + 1, 2)) return false;
  const int day = two(s, pos + 1);
  if (day < 1 || day > 31) return false;
  pos += 3;
  parts = 3;
  return parse_time_range(s.substr(0, 10)).has_value();
}

// hh:mm:ss(.f+)? starting at pos.
bool time_part(std::string_view s, std::size_t& pos) {
  if (!digits_at(s, pos, 2) || two(s, pos) > 23) return false;
  if (pos + 2 >= s.size() || s[pos + 2] != ':' || !digits_at(s, pos + 3, 2) || two(s, pos + 3) > 59) return false;
  if (pos + 5 >= s.size() || s[pos + 5] != ':' || !digits_at(s, pos + 6, 2) || two(s, pos + 6) > 60) return false;
  pos += 8;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    const std::size_t start = pos;
    while (pos < s.size() && is_digit(s[pos])) ++pos;
    if (pos == start) return false;
  }
  return true;
}

// Z | (+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00), ending the text.
bool zone_part(std::string_view s, std::size_t pos) {
  if (pos == s.size()) return false;
  if (s[pos] == 'Z') return pos + 1 == s.size();
  if (s[pos] != '+' && s[pos] != '-') return false;
  if (pos + 6 != s.size() || !digits_at(s, pos + 1, 2) || s[pos + 3] != ':' || !digits_at(s, pos + 4, 2))
    return false;
  const int hours = two(s, pos + 1);
  const int minutes = two(s, pos + 4);
  if (minutes > 59) return false;
  return hours < 14 || (hours == 14 && minutes == 0);
}

bool valid_date(std::string_view s) {
  std::size_t pos = 0;
  int parts = 0;
  return date_part(s, pos, parts) && pos == s.size();
}

bool valid_date_time(std::string_view s) {
  std::size_t pos = 0;
  int parts = 0;
  if (!date_part(s, pos, parts)) return false;
  if (pos == s.size()) return true;
  if (parts != 3 || s[pos] != 'T') return false;
  ++pos;
  return time_part(s, pos) && zone_part(s, pos);
}

bool valid_instant(std::string_view s) {
  std::size_t pos = 0;
  int parts = 0;
  if (!date_part(s, pos, parts) || parts != 3 || pos == s.size() || s[pos] != 'T') return false;
  ++pos;
  return time_part(s, pos) && zone_part(s, pos);
}

bool valid_time(std::string_view s) {
  std::size_t pos = 0;
  return time_part(s, pos) && pos == s.size();
}

// [ \r\n\t\S]+, and no control characters but CR, LF and TAB (the regex lets them through as \S, but
// XML cannot carry them and the JSON rules forbid them)
bool valid_string(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    if (c == '\f' || c == '\v') return false;
    if (static_cast<unsigned char>(c) < 0x20 && c != '\r' && c != '\n' && c != '\t') return false;
  }
  return true;
}

// [^\s]+(\s[^\s]+)*
bool valid_code(std::string_view s) {
  if (s.empty() || is_space(s.front()) || is_space(s.back())) return false;
  for (std::size_t i = 1; i < s.size(); ++i) {
    if (is_space(s[i]) && is_space(s[i - 1])) return false;
  }
  return true;
}

// \S*, non-empty
bool valid_uri(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    if (is_space(c)) return false;
  }
  return true;
}

// -?(0|[1-9][0-9]*) within 32 bits
bool valid_integer(std::string_view s, bool allow_sign, bool allow_zero, bool allow_plus) {
  std::size_t pos = 0;
  bool negative = false;
  if (pos < s.size() && s[pos] == '-' && allow_sign) {
    negative = true;
    ++pos;
  } else if (pos < s.size() && s[pos] == '+' && allow_plus) {
    ++pos;
  }
  if (pos == s.size()) return false;
  if (s[pos] == '0') {
    return pos + 1 == s.size() && allow_zero;
  }
  const std::size_t start = pos;
  while (pos < s.size() && is_digit(s[pos])) ++pos;
  if (pos != s.size() || pos - start > 10) return false;
  const long long value = std::stoll(std::string(s.substr(start)));
  return negative ? value <= 2147483648LL : value <= 2147483647LL;
}

// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
bool valid_decimal(std::string_view s) {
  std::size_t pos = 0;
  if (pos < s.size() && s[pos] == '-') ++pos;
  if (pos == s.size() || !is_digit(s[pos])) return false;
  if (s[pos] == '0') {
    ++pos;
  } else {
    while (pos < s.size() && is_digit(s[pos])) ++pos;
  }
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    const std::size_t start = pos;
    while (pos < s.size() && is_digit(s[pos])) ++pos;
    if (pos == start) return false;
  }
  if (pos < s.size() && (s[pos] == 'e' || s[pos] == 'E')) {
    ++pos;
    if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) ++pos;
    const std::size_t start = pos;
    while (pos < s.size() && is_digit(s[pos])) ++pos;
    if (pos == start) return false;
  }
  return pos == s.size();
}

// (\s*([0-9a-zA-Z\+/=]){4}\s*)+, except that whitespace is accepted anywhere (line breaks inside a
// quad occur in the wild and are harmless)
bool valid_base64(std::string_view s) {
  std::size_t count = 0;
  for (const char c : s) {
    if (is_space(c)) continue;
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '+' || c == '/' || c == '=';
    if (!ok) return false;
    ++count;
  }
  return count > 0 && count % 4 == 0;
}

// urn:oid:[0-2](\.(0|[1-9][0-9]*))+
bool valid_oid(std::string_view s) {
  constexpr std::string_view kPrefix = "urn:oid:";
  if (!s.starts_with(kPrefix)) return false;
  s.remove_prefix(kPrefix.size());
  if (s.size() < 3 || s[0] < '0' || s[0] > '2' || s[1] != '.') return false;
  std::size_t pos = 1;
  while (pos < s.size()) {
    if (s[pos] != '.') return false;
    ++pos;
    if (pos == s.size() || !is_digit(s[pos])) return false;
    if (s[pos] == '0') {
      ++pos;
    } else {
      while (pos < s.size() && is_digit(s[pos])) ++pos;
    }
  }
  return true;
}

// urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}
bool valid_uuid(std::string_view s) {
  constexpr std::string_view kPrefix = "urn:uuid:";
  if (!s.starts_with(kPrefix) || s.size() != kPrefix.size() + 36) return false;
  s.remove_prefix(kPrefix.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !(is_digit(s[i]) || (s[i] >= 'a' && s[i] <= 'f'))) return false;
  }
  return true;
}

}  // namespace

std::optional<bool> valid_primitive(std::string_view type, std::string_view text) {
  if (type == "string" || type == "markdown" || type == "xhtml") return valid_string(text);
  if (type == "code") return valid_code(text);
  if (type == "id") return is_valid_id(text);
  if (type == "uri" || type == "url" || type == "canonical") return valid_uri(text);
  if (type == "dateTime") return valid_date_time(text);
  if (type == "date") return valid_date(text);
  if (type == "instant") return valid_instant(text);
  if (type == "time") return valid_time(text);
  if (type == "decimal") return valid_decimal(text);
  if (type == "integer") return valid_integer(text, true, true, false);
  if (type == "positiveInt") return valid_integer(text, false, false, false);
  if (type == "unsignedInt") return valid_integer(text, false, true, false);
  if (type == "boolean") return text == "true" || text == "false";
  if (type == "base64Binary") return valid_base64(text);
  if (type == "oid") return valid_oid(text);
  if (type == "uuid") return valid_uuid(text);
  return std::nullopt;
}

}  // namespace fhirgate::fhir
