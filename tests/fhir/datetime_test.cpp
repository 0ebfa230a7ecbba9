#include "fhir/datetime.hpp"

#include <doctest/doctest.h>

namespace fhirgate::fhir {
namespace {

TimeRange range_of(std::string_view text) {
  const auto r = parse_time_range(text);
  REQUIRE_MESSAGE(r.has_value(), text);
  return *r;
}

constexpr std::int64_t k20261124 = 1795478400000;  // 2026-11-24T00:00:00Z
constexpr std::int64_t kDay = 86400000;

TEST_CASE("parse_time_range: a year covers the whole year") {
  CHECK(range_of("1970") == TimeRange{0, 31535999999});
  CHECK(range_of("2024") == TimeRange{1704067200000, 1735689599999});
}

TEST_CASE("parse_time_range: a month covers its days, leap years included") {
  CHECK(range_of("2024-02") == TimeRange{1706745600000, 1709251199999});
  CHECK(range_of("2023-02") == TimeRange{1675209600000, 1677628799999});
}

TEST_CASE("parse_time_range: a day covers 24 hours") {
  CHECK(range_of("2026-11-24") == TimeRange{k20261124, k20261124 + kDay - 1});
  CHECK(range_of("2000-02-29").low == 951782400000);
  CHECK(range_of("1900-03-01").low == -2203891200000);
  CHECK(range_of("0001-01-01").low == -62135596800000);
  CHECK(range_of("9999-12-31") == TimeRange{253402214400000, 253402214400000 + kDay - 1});
}

TEST_CASE("parse_time_range: minutes and seconds") {
  CHECK(range_of("2026-11-24T20:29") == TimeRange{1795552140000, 1795552199999});
  CHECK(range_of("2026-11-24T20:29:08") == TimeRange{1795552148000, 1795552148999});
  CHECK(range_of("2026-11-24T20:29:08Z") == TimeRange{1795552148000, 1795552148999});
  CHECK(range_of("2026-11-24T00:00:00") == TimeRange{k20261124, k20261124 + 999});
  CHECK(range_of("2026-11-24T23:59:59").high == k20261124 + kDay - 1);
}

TEST_CASE("parse_time_range: fractional seconds of any length, truncated to milliseconds") {
  CHECK(range_of("2026-11-24T20:29:08.5") == TimeRange{1795552148500, 1795552148599});
  CHECK(range_of("2026-11-24T20:29:08.12") == TimeRange{1795552148120, 1795552148129});
  CHECK(range_of("2026-11-24T20:29:08.123") == TimeRange{1795552148123, 1795552148123});
  CHECK(range_of("2026-11-24T20:29:08.123456") == TimeRange{1795552148123, 1795552148123});
  CHECK(range_of("2026-11-24T20:29:08.000") == TimeRange{1795552148000, 1795552148000});
  CHECK(range_of("1969-12-31T23:59:59.999Z") == TimeRange{-1, -1});
}

TEST_CASE("parse_time_range: zone offsets shift to UTC") {
  CHECK(range_of("2026-11-24T20:29:08+02:00") == TimeRange{1795544948000, 1795544948999});
  CHECK(range_of("2026-11-24T20:29:08-05:30") == TimeRange{1795571948000, 1795571948999});
  CHECK(range_of("2026-11-24T20:29+02:00") == TimeRange{1795544940000, 1795544999999});
  CHECK(range_of("2026-11-24T20:29:08.5+00:00") == TimeRange{1795552148500, 1795552148599});
  CHECK(range_of("2026-11-24T00:00:00+14:00").low == k20261124 - 14 * 3600000);
  CHECK(range_of("2026-11-24T00:00:00-12:00").low == k20261124 + 12 * 3600000);
}

TEST_CASE("parse_time_range: a leap second runs into the next minute") {
  CHECK(range_of("2016-12-31T23:59:60Z") == range_of("2017-01-01T00:00:00Z"));
}

TEST_CASE("parse_time_range: days that do not exist are rejected") {
  for (const char* text :
       {"2023-02-29", "2024-02-30", "2026-04-31", "2026-06-31", "2026-01-32", "2026-01-00", "1900-02-29"}) {
    CHECK_MESSAGE(!parse_time_range(text), text);
  }
  CHECK(parse_time_range("2024-02-29"));
  CHECK(parse_time_range("2026-01-31"));
}

TEST_CASE("parse_time_range: malformed text is rejected") {
  for (const char* text : {"",
                           "0000",
                           "197",
                           "19700",
                           "1970-",
                           "1970-1",
                           "1970-13",
                           "1970-00",
                           "1970-01-1",
                           "1970-01-01T",
                           "1970-01-01T10",
                           "1970-01-01T24:00",
                           "1970-01-01T10:60",
                           "1970-01-01T10:00:61",
                           "1970-01-01T10:00:0",
                           "1970-01-01T10:00:00.",
                           "1970-01-01T10:00:00.5x",
                           "1970-01-01 10:00",
                           "1970-01-01t10:00",
                           "1970-01-01Z",
                           "1970Z",
                           "1970-01-01T10:00:00z",
                           "1970-01-01T10:00:00+1:00",
                           "1970-01-01T10:00:00+01",
                           "1970-01-01T10:00:00+0100",
                           "1970-01-01T10:00:00+14:30",
                           "1970-01-01T10:00:00+15:00",
                           "1970-01-01T10:00:00+01:60",
                           "1970-01-01T10:00:00Z ",
                           " 1970",
                           "abcd",
                           "-1970",
                           "+1970"}) {
    CHECK_MESSAGE(!parse_time_range(text), text);
  }
}

TEST_CASE("format_instant: UTC with milliseconds") {
  CHECK(format_instant(1795552148123) == "2026-11-24T20:29:08.123+00:00");
  CHECK(format_instant(0) == "1970-01-01T00:00:00.000+00:00");
  CHECK(format_instant(-1) == "1969-12-31T23:59:59.999+00:00");
  CHECK(format_instant(951782400000) == "2000-02-29T00:00:00.000+00:00");
  CHECK(format_instant(253402214400000 + kDay - 1) == "9999-12-31T23:59:59.999+00:00");
}

TEST_CASE("format_instant round-trips through parse_time_range") {
  for (std::int64_t ms : {std::int64_t{0}, std::int64_t{-1}, std::int64_t{1795552148123},
                          std::int64_t{-2203891200001}, std::int64_t{951868799999}}) {
    CHECK(range_of(format_instant(ms)) == TimeRange{ms, ms});
  }
}

TEST_CASE("format_http_date: IMF-fixdate") {
  CHECK(format_http_date(1795552148123) == "Tue, 24 Nov 2026 20:29:08 GMT");
  CHECK(format_http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT");
  CHECK(format_http_date(-1) == "Wed, 31 Dec 1969 23:59:59 GMT");
  CHECK(format_http_date(range_of("2030-01-01T10:00:00Z").low) == "Tue, 01 Jan 2030 10:00:00 GMT");
  CHECK(format_http_date(951782400000) == "Tue, 29 Feb 2000 00:00:00 GMT");
}

}  // namespace
}  // namespace fhirgate::fhir
