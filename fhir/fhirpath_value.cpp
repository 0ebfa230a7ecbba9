#include "fhir/fhirpath_value.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "fhir/datetime.hpp"

namespace fhirgate::fhir::fhirpath {

namespace {

constexpr std::int64_t kMsPerDay = 86400000;

std::int64_t epoch_ms(const Moment& m) {
  return days_from_civil(m.part[0], m.part[1], m.part[2]) * kMsPerDay + m.part[3] * 3600000LL +
         m.part[4] * 60000LL + m.part[5] * 1000LL + m.part[6];
}

void set_epoch_ms(Moment& m, std::int64_t ms) {
  std::int64_t days = ms / kMsPerDay;
  std::int64_t rest = ms % kMsPerDay;
  if (rest < 0) {
    rest += kMsPerDay;
    --days;
  }
  const CivilDate civil = civil_from_days(days);
  m.part[0] = civil.year;
  m.part[1] = civil.month;
  m.part[2] = civil.day;
  m.part[3] = static_cast<int>(rest / 3600000);
  m.part[4] = static_cast<int>(rest / 60000 % 60);
  m.part[5] = static_cast<int>(rest / 1000 % 60);
  m.part[6] = static_cast<int>(rest % 1000);
}

bool read_digits(std::string_view s, std::size_t& pos, std::size_t width, int& out) {
  if (s.size() - pos < width) return false;
  int v = 0;
  for (std::size_t i = 0; i < width; ++i) {
    const char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  pos += width;
  out = v;
  return true;
}

bool parse_time_part(std::string_view s, std::size_t& pos, Moment& m) {
  if (!read_digits(s, pos, 2, m.part[3]) || m.part[3] > 23) return false;
  m.precision = 4;
  if (pos < s.size() && s[pos] == ':') {
    ++pos;
    if (!read_digits(s, pos, 2, m.part[4]) || m.part[4] > 59) return false;
    m.precision = 5;
    if (pos < s.size() && s[pos] == ':') {
      ++pos;
      if (!read_digits(s, pos, 2, m.part[5]) || m.part[5] > 59) return false;
      m.precision = 6;
      if (pos < s.size() && s[pos] == '.') {
        ++pos;
        const std::size_t start = pos;
        while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) ++pos;
        if (pos == start) return false;
        std::string frac(s.substr(start, pos - start));
        frac.resize(3, '0');
        m.part[6] = std::atoi(frac.c_str());
        m.precision = 7;
      }
    }
  }
  return true;
}

}  // namespace

std::optional<Moment> parse_moment(std::string_view s, VKind kind) {
  Moment m;
  std::size_t pos = 0;
  if (kind == VKind::time) {
    m.time_only = true;
    if (!parse_time_part(s, pos, m) || pos != s.size()) return std::nullopt;
    return m;
  }
  if (!read_digits(s, pos, 4, m.part[0])) return std::nullopt;
  m.precision = 1;
  if (pos < s.size() && s[pos] == '-') {
    ++pos;
    if (!read_digits(s, pos, 2, m.part[1]) || m.part[1] < 1 || m.part[1] > 12) return std::nullopt;
    m.precision = 2;
    if (pos < s.size() && s[pos] == '-') {
      ++pos;
      if (!read_digits(s, pos, 2, m.part[2]) || m.part[2] < 1 ||
          m.part[2] > days_in_month(m.part[0], m.part[1])) {
        return std::nullopt;
      }
      m.precision = 3;
    }
  }
  if (pos < s.size() && s[pos] == 'T') {
    if (kind == VKind::date) return std::nullopt;
    ++pos;
    if (pos < s.size() && m.precision == 3) {
      if (!parse_time_part(s, pos, m)) return std::nullopt;
    }
  }
  if (pos < s.size()) {
    if (kind == VKind::date) return std::nullopt;
    if (s[pos] == 'Z') {
      ++pos;
      m.has_zone = m.zulu = true;
    } else if (s[pos] == '+' || s[pos] == '-') {
      const int sign = s[pos] == '-' ? -1 : 1;
      ++pos;
      int h = 0;
      int mi = 0;
      if (!read_digits(s, pos, 2, h) || pos >= s.size() || s[pos] != ':') return std::nullopt;
      ++pos;
      if (!read_digits(s, pos, 2, mi)) return std::nullopt;
      m.has_zone = true;
      m.zone_minutes = sign * (h * 60 + mi);
    }
  }
  if (pos != s.size()) return std::nullopt;
  return m;
}

std::string format_moment(const Moment& m) {
  char buf[64];
  std::string out;
  if (!m.time_only) {
    std::snprintf(buf, sizeof buf, "%04d", m.part[0]);
    out += buf;
    if (m.precision >= 2) {
      std::snprintf(buf, sizeof buf, "-%02d", m.part[1]);
      out += buf;
    }
    if (m.precision >= 3) {
      std::snprintf(buf, sizeof buf, "-%02d", m.part[2]);
      out += buf;
    }
    if (m.precision >= 4) out += 'T';
  }
  if (m.precision >= 4) {
    std::snprintf(buf, sizeof buf, "%02d", m.part[3]);
    out += buf;
  }
  if (m.precision >= 5) {
    std::snprintf(buf, sizeof buf, ":%02d", m.part[4]);
    out += buf;
  }
  if (m.precision >= 6) {
    std::snprintf(buf, sizeof buf, ":%02d", m.part[5]);
    out += buf;
  }
  if (m.precision >= 7) {
    std::snprintf(buf, sizeof buf, ".%03d", m.part[6]);
    out += buf;
  }
  if (m.has_zone && !m.time_only) {
    if (m.zulu) {
      out += 'Z';
    } else {
      const int z = m.zone_minutes < 0 ? -m.zone_minutes : m.zone_minutes;
      std::snprintf(buf, sizeof buf, "%c%02d:%02d", m.zone_minutes < 0 ? '-' : '+', z / 60, z % 60);
      out += buf;
    }
  }
  return out;
}

std::optional<int> compare_moments(const Moment& a_in, const Moment& b_in) {
  Moment a = a_in;
  Moment b = b_in;
  if (a.time_only != b.time_only) return std::nullopt;
  if (!a.time_only && (a.precision >= 4 || b.precision >= 4)) {
    if (a.has_zone != b.has_zone && a.precision >= 4 && b.precision >= 4) return std::nullopt;
    if (a.has_zone && b.has_zone && a.precision >= 4 && b.precision >= 4) {
      set_epoch_ms(a, epoch_ms(a) - a.zone_minutes * 60000LL);
      set_epoch_ms(b, epoch_ms(b) - b.zone_minutes * 60000LL);
    }
  }
  const int pa = std::min(a.precision, 6);
  const int pb = std::min(b.precision, 6);
  const int common = std::min(pa, pb);
  for (int i = a.time_only ? 3 : 0; i < common; ++i) {
    int x = a.part[i];
    int y = b.part[i];
    if (i == 5) {
      x = x * 1000 + a.part[6];
      y = y * 1000 + b.part[6];
    }
    if (x != y) return x < y ? -1 : 1;
  }
  if (pa != pb) return std::nullopt;
  return 0;
}

namespace {

// Milliseconds in one `unit` (singular), 0 for a month or year, -1 for a unit that is no calendar duration.
std::int64_t duration_ms(std::string_view unit) {
  if (unit == "year" || unit == "month") return 0;
  if (unit == "week" || unit == "wk") return 7 * kMsPerDay;
  if (unit == "day" || unit == "d") return kMsPerDay;
  if (unit == "hour" || unit == "h") return 3600000;
  if (unit == "minute" || unit == "min") return 60000;
  if (unit == "second" || unit == "s") return 1000;
  if (unit == "millisecond" || unit == "ms") return 1;
  return -1;
}

std::string_view singular(std::string_view unit) {
  if (unit.ends_with('s') && unit.size() > 3 && unit != "ms") unit.remove_suffix(1);
  return unit;
}

constexpr int kMaxYear = 9999;  // dates are written with four-digit years

}  // namespace

bool is_calendar_duration(std::string_view unit) {
  return duration_ms(singular(unit)) >= 0;
}

std::optional<Moment> add_duration(const Moment& m_in, long double amount, std::string_view unit) {
  Moment m = m_in;
  unit = singular(unit);
  const std::int64_t unit_ms = duration_ms(unit);
  if (unit_ms < 0) return std::nullopt;
  // Any amount beyond this leaves the years a date can have, whatever the unit (10000 years are 3.2e14 ms),
  // and it keeps the month count below in range.
  const long double whole = std::trunc(amount);
  if (!std::isfinite(whole) || std::fabs(whole) > 1e15L) return std::nullopt;
  const auto n = static_cast<std::int64_t>(whole);
  if (unit_ms == 0) {
    const std::int64_t months = m.part[0] * 12LL + (m.part[1] - 1) + (unit == "year" ? n * 12 : n);
    if (months < 0 || months >= (kMaxYear + 1) * 12LL) return std::nullopt;
    m.part[0] = static_cast<int>(months / 12);
    m.part[1] = static_cast<int>(months % 12 + 1);
    m.part[2] = std::min(m.part[2], days_in_month(m.part[0], m.part[1]));
    return m;
  }
  std::int64_t ms = 0;
  if (__builtin_mul_overflow(n, unit_ms, &ms)) return std::nullopt;
  if (m.time_only) {
    std::int64_t t =
        (m.part[3] * 3600000LL + m.part[4] * 60000LL + m.part[5] * 1000LL + m.part[6] + ms % kMsPerDay) %
        kMsPerDay;
    if (t < 0) t += kMsPerDay;
    m.part[3] = static_cast<int>(t / 3600000);
    m.part[4] = static_cast<int>(t / 60000 % 60);
    m.part[5] = static_cast<int>(t / 1000 % 60);
    m.part[6] = static_cast<int>(t % 1000);
    return m;
  }
  if (m.precision <= 3) ms = ms / kMsPerDay * kMsPerDay;
  std::int64_t at = 0;
  if (__builtin_add_overflow(epoch_ms(m), ms, &at)) return std::nullopt;
  if (at < days_from_civil(0, 1, 1) * kMsPerDay || at >= days_from_civil(kMaxYear + 1, 1, 1) * kMsPerDay)
    return std::nullopt;
  set_epoch_ms(m, at);
  return m;
}

VKind primitive_kind(std::string_view t) {
  switch (t.size()) {
    case 4:
      if (t == "date") return VKind::date;
      if (t == "time") return VKind::time;
      break;
    case 7:
      if (t == "boolean") return VKind::boolean;
      if (t == "integer") return VKind::integer;
      if (t == "decimal") return VKind::decimal;
      if (t == "instant") return VKind::datetime;
      break;
    case 8:
      if (t == "dateTime") return VKind::datetime;
      break;
    case 9:
      if (t == "integer64") return VKind::integer;
      break;
    case 11:
      if (t == "positiveInt" || t == "unsignedInt") return VKind::integer;
      break;
    default:
      break;
  }
  return VKind::string;
}

namespace {

bool is_quantity_type(const TypeDef* t) {
  return t != nullptr && t->kind == TypeDef::Kind::complex &&
         (t->name == "Quantity" || t->base == "Quantity");
}

int scale_of(std::string_view lexical) {
  const auto dot = lexical.find('.');
  if (dot == std::string_view::npos) return 0;
  std::size_t end = lexical.find_first_of("eE", dot);
  if (end == std::string_view::npos) end = lexical.size();
  return static_cast<int>(std::min<std::size_t>(end - dot - 1, 30));
}

}  // namespace

bool to_system(const Value& in, Value& out) {
  if (in.kind != VKind::node) {
    out = in;
    return true;
  }
  if (in.type == nullptr) {
    if (in.node == nullptr) return false;
    switch (in.node->kind()) {
      case Node::Kind::boolean:
        out = Value::boolean(in.node->as_bool());
        return true;
      case Node::Kind::string:
        out = Value::string_of(in.node->text());
        return true;
      case Node::Kind::number: {
        const std::string& t = in.node->text();
        out = Value::decimal_of(std::strtold(t.c_str(), nullptr), scale_of(t));
        return true;
      }
      default:
        return false;
    }
  }
  if (in.type->kind == TypeDef::Kind::primitive) {
    if (in.node == nullptr || in.node->is_null()) return false;
    const std::string& text = in.node->text();
    out = Value{};
    switch (primitive_kind(in.type->name)) {
      case VKind::boolean:
        out = Value::boolean(in.node->as_bool());
        return true;
      case VKind::integer: {
        std::int64_t v = 0;
        auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec != std::errc()) return false;
        out = Value::integer_of(v);
        return true;
      }
      case VKind::decimal:
        out = Value::decimal_of(std::strtold(text.c_str(), nullptr), scale_of(text));
        return true;
      case VKind::date:
        out.kind = VKind::date;
        break;
      case VKind::datetime:
        out.kind = VKind::datetime;
        break;
      case VKind::time:
        out.kind = VKind::time;
        break;
      default:
        out.kind = VKind::string;
        break;
    }
    out.text = text;
    return true;
  }
  if (is_quantity_type(in.type) && in.node != nullptr) {
    const Node* value = in.node->find("value");
    if (value == nullptr || !value->is_number()) return false;
    out = Value{};
    out.kind = VKind::quantity;
    out.decimal = std::strtold(value->text().c_str(), nullptr);
    out.scale = static_cast<std::int8_t>(scale_of(value->text()));
    std::string_view unit = in.node->string_at("code");
    if (unit.empty()) unit = in.node->string_at("unit");
    out.text = unit.empty() ? std::string_view("1") : unit;
    return true;
  }
  return false;
}

long double round_to(long double v, int scale) {
  const long double f = std::pow(10.0L, static_cast<long double>(std::min(scale, 30)));
  return std::round(v * f) / f;
}

std::string format_decimal(long double v, int scale) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%.*Lf", std::clamp(scale, 0, 30), v);
  std::string s(buf);
  if (s.starts_with("-") && s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);
  return s;
}

std::string to_text(const Value& v) {
  switch (v.kind) {
    case VKind::boolean:
      return v.flag ? "true" : "false";
    case VKind::integer:
      return std::to_string(v.integer);
    case VKind::decimal:
      return format_decimal(v.decimal, v.scale);
    case VKind::quantity: {
      std::string out = format_decimal(v.decimal, v.scale);
      if (v.flag) return out + " " + std::string(v.text);
      return out + " '" + std::string(v.text) + "'";
    }
    case VKind::node: {
      Value s;
      if (to_system(v, s)) return to_text(s);
      return {};
    }
    default:
      return std::string(v.text);
  }
}

bool unit_factor(std::string_view unit, bool calendar, long double& factor, std::string_view& dimension) {
  struct Unit {
    std::string_view code;
    std::string_view dimension;
    long double factor;
  };
  static constexpr Unit kUnits[] = {
      {"m", "L", 1.0L},
      {"cm", "L", 0.01L},
      {"mm", "L", 0.001L},
      {"km", "L", 1000.0L},
      {"um", "L", 1e-6L},
      {"[in_i]", "L", 0.0254L},
      {"[ft_i]", "L", 0.3048L},
      {"g", "M", 1.0L},
      {"kg", "M", 1000.0L},
      {"mg", "M", 0.001L},
      {"ug", "M", 1e-6L},
      {"[lb_av]", "M", 453.59237L},
      {"[oz_av]", "M", 28.349523125L},
      {"s", "T", 1.0L},
      {"ms", "T", 0.001L},
      {"min", "T", 60.0L},
      {"h", "T", 3600.0L},
      {"d", "T", 86400.0L},
      {"wk", "T", 604800.0L},
      {"mo", "T", 2629800.0L},
      {"a", "T", 31557600.0L},
      {"L", "V", 1.0L},
      {"mL", "V", 0.001L},
      {"dL", "V", 0.1L},
      {"1", "1", 1.0L},
      {"%", "1", 0.01L},
  };
  if (calendar) {
    if (unit.ends_with('s') && unit.size() > 3) unit.remove_suffix(1);
    static constexpr Unit kCalendar[] = {{"year", "T", 31557600.0L}, {"month", "T", 2629800.0L},
                                         {"week", "T", 604800.0L},   {"day", "T", 86400.0L},
                                         {"hour", "T", 3600.0L},     {"minute", "T", 60.0L},
                                         {"second", "T", 1.0L},      {"millisecond", "T", 0.001L}};
    for (const Unit& u : kCalendar) {
      if (u.code == unit) {
        factor = u.factor;
        dimension = u.dimension;
        return true;
      }
    }
    return false;
  }
  for (const Unit& u : kUnits) {
    if (u.code == unit) {
      factor = u.factor;
      dimension = u.dimension;
      return true;
    }
  }
  return false;
}

namespace {

bool is_number(const Value& v) {
  return v.kind == VKind::integer || v.kind == VKind::decimal;
}
long double number(const Value& v) {
  return v.kind == VKind::integer ? static_cast<long double>(v.integer) : v.decimal;
}
int scale(const Value& v) {
  return v.kind == VKind::integer ? 0 : v.scale;
}
bool is_dateish(const Value& v) {
  return v.kind == VKind::date || v.kind == VKind::datetime;
}

std::optional<int> compare_quantities(const Value& a, const Value& b, bool equivalence) {
  if (a.text == b.text && a.flag == b.flag) {
    if (equivalence) {
      const int s = std::min<int>(a.scale, b.scale);
      const long double x = round_to(a.decimal, s);
      const long double y = round_to(b.decimal, s);
      return x < y ? -1 : x > y ? 1 : 0;
    }
    const int s = std::max<int>(a.scale, b.scale);
    const long double x = round_to(a.decimal, s);
    const long double y = round_to(b.decimal, s);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  long double fa = 0;
  long double fb = 0;
  std::string_view da;
  std::string_view db;
  if (!unit_factor(a.text, a.flag, fa, da) || !unit_factor(b.text, b.flag, fb, db) || da != db) {
    return std::nullopt;
  }
  const long double x = a.decimal * fa;
  const long double y = b.decimal * fb;
  const long double tolerance = 1e-9L * std::max(std::fabs(x), std::fabs(y));
  if (std::fabs(x - y) <= tolerance) return 0;
  return x < y ? -1 : 1;
}

std::string normalize_ws_lower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool space = false;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

bool nodes_equal(const Value& a, const Value& b) {
  if (a.node == b.node && a.companion == b.companion) return true;
  if ((a.node == nullptr) != (b.node == nullptr)) return false;
  if (a.node != nullptr && !(*a.node == *b.node)) return false;
  if ((a.companion == nullptr) != (b.companion == nullptr)) return false;
  return a.companion == nullptr || *a.companion == *b.companion;
}

}  // namespace

std::optional<bool> equal_values(const Value& a_in, const Value& b_in) {
  Value a;
  Value b;
  const bool sa = to_system(a_in, a);
  const bool sb = to_system(b_in, b);
  if (!sa || !sb) {
    if (a_in.kind == VKind::node && b_in.kind == VKind::node && !sa && !sb) return nodes_equal(a_in, b_in);
    return false;
  }
  if (is_number(a) && is_number(b)) {
    if (a.kind == VKind::integer && b.kind == VKind::integer) return a.integer == b.integer;
    const int s = std::max(scale(a), scale(b));
    return round_to(number(a), s) == round_to(number(b), s);
  }
  if (a.kind == VKind::string && b.kind == VKind::string) return a.text == b.text;
  if (a.kind == VKind::boolean && b.kind == VKind::boolean) return a.flag == b.flag;
  if ((is_dateish(a) && is_dateish(b)) || (a.kind == VKind::time && b.kind == VKind::time)) {
    auto ma = parse_moment(a.text, a.kind);
    auto mb = parse_moment(b.text, b.kind);
    if (!ma || !mb) return false;
    auto c = compare_moments(*ma, *mb);
    if (!c) return std::nullopt;
    return *c == 0;
  }
  if (a.kind == VKind::quantity && b.kind == VKind::quantity) {
    auto c = compare_quantities(a, b, false);
    if (!c) return std::nullopt;
    return *c == 0;
  }
  return false;
}

bool equivalent_values(const Value& a_in, const Value& b_in) {
  Value a;
  Value b;
  const bool sa = to_system(a_in, a);
  const bool sb = to_system(b_in, b);
  if (!sa || !sb) {
    if (a_in.kind == VKind::node && b_in.kind == VKind::node && !sa && !sb) return nodes_equal(a_in, b_in);
    return false;
  }
  if (is_number(a) && is_number(b)) {
    const int s = std::min(scale(a), scale(b));
    return round_to(number(a), s) == round_to(number(b), s);
  }
  if (a.kind == VKind::string && b.kind == VKind::string) {
    return normalize_ws_lower(a.text) == normalize_ws_lower(b.text);
  }
  if (a.kind == VKind::boolean && b.kind == VKind::boolean) return a.flag == b.flag;
  if ((is_dateish(a) && is_dateish(b)) || (a.kind == VKind::time && b.kind == VKind::time)) {
    auto ma = parse_moment(a.text, a.kind);
    auto mb = parse_moment(b.text, b.kind);
    if (!ma || !mb) return false;
    auto c = compare_moments(*ma, *mb);
    return c && *c == 0;
  }
  if (a.kind == VKind::quantity && b.kind == VKind::quantity) {
    auto c = compare_quantities(a, b, true);
    return c && *c == 0;
  }
  return false;
}

}  // namespace fhirgate::fhir::fhirpath
