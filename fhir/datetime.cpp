#include "fhir/datetime.hpp"

#include <array>
#include <cstdio>

namespace fhirgate::fhir {
namespace {

constexpr std::int64_t kMsPerSecond = 1000;
constexpr std::int64_t kMsPerMinute = 60 * kMsPerSecond;
constexpr std::int64_t kMsPerHour = 60 * kMsPerMinute;
constexpr std::int64_t kMsPerDay = 24 * kMsPerHour;

// Reads the text left to right; every read consumes only on success.
class Cursor {
 public:
  explicit Cursor(std::string_view text) : text_(text) {}

  bool at_end() const { return pos_ == text_.size(); }
  bool peek(char c) const { return pos_ < text_.size() && text_[pos_] == c; }
  bool take(char c) {
    if (!peek(c)) return false;
    ++pos_;
    return true;
  }
  // Exactly `width` decimal digits.
  std::optional<int> digits(std::size_t width) {
    if (text_.size() - pos_ < width) return std::nullopt;
    int value = 0;
    for (std::size_t i = 0; i < width; ++i) {
      const char c = text_[pos_ + i];
      if (c < '0' || c > '9') return std::nullopt;
      value = value * 10 + (c - '0');
    }
    pos_ += width;
    return value;
  }
  // One or more decimal digits; returns the text.
  std::string_view digit_run() {
    const std::size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
    return text_.substr(start, pos_ - start);
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

// A two-digit field in [low, high], preceded by `separator`.
std::optional<int> field(Cursor& in, char separator, int low, int high) {
  if (!in.take(separator)) return std::nullopt;
  const auto value = in.digits(2);
  if (!value || *value < low || *value > high) return std::nullopt;
  return value;
}

// Z, +hh:mm or -hh:mm as milliseconds east of UTC; 0 when absent. Offsets run from -14:00 to +14:00.
std::optional<std::int64_t> zone_offset(Cursor& in) {
  if (in.at_end()) return 0;
  if (in.take('Z')) return 0;
  const bool east = in.take('+');
  if (!east && !in.take('-')) return std::nullopt;
  const auto hours = in.digits(2);
  const auto minutes = field(in, ':', 0, 59);
  if (!hours || !minutes || *hours > 14 || (*hours == 14 && *minutes != 0)) return std::nullopt;
  return (east ? 1 : -1) * (*hours * kMsPerHour + *minutes * kMsPerMinute);
}

// Fractional seconds: k digits denote a span of 10^(3-k) ms, never finer than 1 ms.
struct Fraction {
  std::int64_t ms = 0;
  std::int64_t span = kMsPerSecond;
};

std::optional<Fraction> fraction(Cursor& in) {
  if (!in.take('.')) return Fraction{};
  const std::string_view text = in.digit_run();
  if (text.empty()) return std::nullopt;
  Fraction f{0, kMsPerSecond};
  for (std::size_t i = 0; i < text.size() && i < 3; ++i) {
    f.span /= 10;
    f.ms += (text[i] - '0') * f.span;
  }
  return f;
}

struct Civil {
  CivilDate date;
  int hour;
  int minute;
  int second;
  int millisecond;
  int weekday;  // 0 = Sunday
};

Civil to_civil(std::int64_t epoch_ms) {
  std::int64_t days = epoch_ms / kMsPerDay;
  std::int64_t rest = epoch_ms % kMsPerDay;
  if (rest < 0) {
    rest += kMsPerDay;
    --days;
  }
  const std::int64_t weekday = (days % 7 + 11) % 7;  // 1970-01-01 was a Thursday
  return {civil_from_days(days),
          static_cast<int>(rest / kMsPerHour),
          static_cast<int>(rest % kMsPerHour / kMsPerMinute),
          static_cast<int>(rest % kMsPerMinute / kMsPerSecond),
          static_cast<int>(rest % kMsPerSecond),
          static_cast<int>(weekday)};
}

}  // namespace

std::optional<TimeRange> parse_time_range(std::string_view text) {
  Cursor in(text);
  const auto year = in.digits(4);
  if (!year || *year == 0) return std::nullopt;
  if (in.at_end()) {
    const std::int64_t start = days_from_civil(*year, 1, 1) * kMsPerDay;
    return TimeRange{start, days_from_civil(*year + 1, 1, 1) * kMsPerDay - 1};
  }
  const auto month = field(in, '-', 1, 12);
  if (!month) return std::nullopt;
  if (in.at_end()) {
    const std::int64_t start = days_from_civil(*year, *month, 1) * kMsPerDay;
    return TimeRange{start, start + days_in_month(*year, *month) * kMsPerDay - 1};
  }
  const auto day = field(in, '-', 1, days_in_month(*year, *month));
  if (!day) return std::nullopt;
  const std::int64_t midnight = days_from_civil(*year, *month, *day) * kMsPerDay;
  if (in.at_end()) return TimeRange{midnight, midnight + kMsPerDay - 1};

  const auto hour = field(in, 'T', 0, 23);
  const auto minute = hour ? field(in, ':', 0, 59) : std::nullopt;
  if (!minute) return std::nullopt;
  std::int64_t start = midnight + *hour * kMsPerHour + *minute * kMsPerMinute;
  std::int64_t span = kMsPerMinute;
  if (in.peek(':')) {
    const auto second = field(in, ':', 0, 60);
    const auto frac = second ? fraction(in) : std::nullopt;
    if (!frac) return std::nullopt;
    start += *second * kMsPerSecond + frac->ms;
    span = frac->span;
  }
  const auto offset = zone_offset(in);
  if (!offset || !in.at_end()) return std::nullopt;
  start -= *offset;
  return TimeRange{start, start + span - 1};
}

std::string format_instant(std::int64_t epoch_ms) {
  const Civil c = to_civil(epoch_ms);
  char buf[48];
  const int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03d+00:00", c.date.year,
                              c.date.month, c.date.day, c.hour, c.minute, c.second, c.millisecond);
  return std::string(buf, static_cast<std::size_t>(n));
}

std::string format_http_date(std::int64_t epoch_ms) {
  static constexpr std::array<const char*, 7> kWeekdays{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr std::array<const char*, 12> kMonths{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const Civil c = to_civil(epoch_ms);
  char buf[48];
  const int n = std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT",
                              kWeekdays[static_cast<std::size_t>(c.weekday)], c.date.day,
                              kMonths[static_cast<std::size_t>(c.date.month - 1)], c.date.year, c.hour,
                              c.minute, c.second);
  return std::string(buf, static_cast<std::size_t>(n));
}

bool is_leap_year(int year) {
  return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

int days_in_month(int year, int month) {
  static constexpr std::array<int, 12> kDays{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && is_leap_year(year) ? 29 : kDays[static_cast<std::size_t>(month - 1)];
}

// Howard Hinnant's days_from_civil: days since 1970-01-01 of a proleptic Gregorian date.
std::int64_t days_from_civil(int year, int month, int day) {
  const std::int64_t y = month <= 2 ? year - 1 : year;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const std::int64_t yoe = y - era * 400;
  const std::int64_t doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

// The inverse of days_from_civil.
CivilDate civil_from_days(std::int64_t days) {
  const std::int64_t z = days + 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const std::int64_t doe = z - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const std::int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const std::int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  return {static_cast<int>(year), static_cast<int>(month), static_cast<int>(day)};
}

}  // namespace fhirgate::fhir
