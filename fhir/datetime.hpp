#pragma once
// FHIR date, dateTime and instant values as time ranges, for search.
//
// A value of any precision denotes the range of instants it covers: `1970` is
// [1970-01-01T00:00:00.000Z, 1970-12-31T23:59:59.999Z]. Values without a time zone are taken as UTC.
// Ranges are milliseconds since the Unix epoch, both ends inclusive.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fhirgate::fhir {

struct TimeRange {
  std::int64_t low = 0;   // first millisecond covered
  std::int64_t high = 0;  // last millisecond covered
  bool operator==(const TimeRange&) const = default;
};

// Parses YYYY, YYYY-MM, YYYY-MM-DD, YYYY-MM-DDThh:mm(:ss(.fff...)?)?(Z|+hh:mm|-hh:mm)?.
// Returns nullopt when the text is not such a value (or names a day that does not exist).
std::optional<TimeRange> parse_time_range(std::string_view text);

// Proleptic Gregorian calendar arithmetic (Howard Hinnant's algorithms), shared by search ranges and
// FHIRPath date values.
bool is_leap_year(int year);
int days_in_month(int year, int month);  // month 1..12
// Days since 1970-01-01.
std::int64_t days_from_civil(int year, int month, int day);
struct CivilDate {
  int year;
  int month;
  int day;
};
CivilDate civil_from_days(std::int64_t days);

// Milliseconds since the epoch -> `YYYY-MM-DDThh:mm:ss.sss+00:00` (a FHIR instant, UTC).
std::string format_instant(std::int64_t epoch_ms);
// Milliseconds since the epoch -> `Tue, 01 Jan 2030 10:00:00 GMT` (HTTP-date, for Last-Modified).
std::string format_http_date(std::int64_t epoch_ms);

}  // namespace fhirgate::fhir
