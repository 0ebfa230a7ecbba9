#include "fhir/search_query.hpp"

#include <doctest/doctest.h>

#include "fhir/files.hpp"
#include "fhir/json.hpp"
#include "tests/support/paths.hpp"

namespace fhirgate::fhir {
namespace {

constexpr std::int64_t kDay = 86400000;
constexpr std::int64_t k2020 = 1577836800000;  // 2020-01-01T00:00:00Z

Result<SearchParamRegistry> load_registry() {
  auto text = read_file(testing::source_path("profiles/r4/search-parameters.json.gz"));
  if (!text) return std::move(text).error();
  auto bundle = parse_json(*text);
  if (!bundle) return std::move(bundle).error();
  return SearchParamRegistry::load(*bundle, {"Patient", "Consent", "AuditEvent"});
}

const SearchParamRegistry& registry() {
  static const Result<SearchParamRegistry> loaded = load_registry();
  REQUIRE(loaded.ok());
  return loaded.value();
}

Result<SearchQuery> search(std::string_view query, const SearchOptions& options = {},
                           std::string_view type = "Patient") {
  auto params = parse_query_string(query);
  REQUIRE(params.ok());
  return parse_search(registry(), type, *params, options);
}

SearchQuery parsed(std::string_view query, const SearchOptions& options = {},
                   std::string_view type = "Patient") {
  auto result = search(query, options, type);
  REQUIRE_MESSAGE(result.ok(), query, ": ", result.ok() ? "" : result.error().issues.at(0).diagnostics);
  return std::move(result).value();
}

// The client-facing error of a rejected search; it must be invalid_input.
Issue rejected(std::string_view query, const SearchOptions& options = {}, std::string_view type = "Patient") {
  auto result = search(query, options, type);
  REQUIRE_MESSAGE(!result.ok(), query);
  CHECK(result.error().code == ErrorCode::invalid_input);
  REQUIRE(result.error().issues.size() == 1);
  return result.error().issues[0];
}

const SearchValue& only_value(const SearchQuery& q) {
  REQUIRE(q.clauses.size() == 1);
  REQUIRE(q.clauses[0].any_of.size() == 1);
  return q.clauses[0].any_of[0];
}

SearchOptions strict() {
  SearchOptions o;
  o.strict = true;
  return o;
}

// ---- parse_query_string ---------------------------------------------------------------------------------

TEST_CASE("parse_query_string: pairs in order, split on the first '='") {
  auto p = parse_query_string("family=Smith&given=John&x=a=b");
  REQUIRE(p.ok());
  CHECK(*p == QueryParams{{"family", "Smith"}, {"given", "John"}, {"x", "a=b"}});
}

TEST_CASE("parse_query_string: '+' is a space and %XX is decoded in names and values") {
  auto p = parse_query_string("na%6De=Van+der%20Berg&identifier=http%3a%2F%2Fx%7C1&e=%C3%A9&plus=%2B");
  REQUIRE(p.ok());
  CHECK(*p == QueryParams{{"name", "Van der Berg"}, {"identifier", "http://x|1"}, {"e", "é"}, {"plus", "+"}});
}

TEST_CASE("parse_query_string: empty pieces skipped, a bare name gets an empty value") {
  auto p = parse_query_string("&&_summary&a=&b=1&");
  REQUIRE(p.ok());
  CHECK(*p == QueryParams{{"_summary", ""}, {"a", ""}, {"b", "1"}});
  auto empty = parse_query_string("");
  REQUIRE(empty.ok());
  CHECK(empty->empty());
}

TEST_CASE("parse_query_string: malformed percent-encoding is invalid_input") {
  for (const char* q : {"a=%", "a=%2", "a=%zz", "a=%G1", "a%=1", "a=1&b=x%2", "a=%%41"}) {
    auto p = parse_query_string(q);
    REQUIRE_MESSAGE(!p.ok(), q);
    CHECK(p.error().code == ErrorCode::invalid_input);
    CHECK(p.error().issues.at(0).diagnostics == "malformed percent-encoding in query");
  }
}

// ---- url_encode -----------------------------------------------------------------------------------------

TEST_CASE("url_encode: unreserved characters kept, everything else %XX upper-case") {
  CHECK(url_encode("AZaz09-._~") == "AZaz09-._~");
  CHECK(url_encode("http://x|1,2") == "http%3A%2F%2Fx%7C1%2C2");
  CHECK(url_encode("a b+c&d=e%") == "a%20b%2Bc%26d%3De%25");
  CHECK(url_encode("é") == "%C3%A9");
  CHECK(url_encode("") == "");
}

TEST_CASE("url_encode round-trips through parse_query_string") {
  const std::string value = "Ünïcode + |pipes|, commas & = signs%";
  auto p = parse_query_string("v=" + url_encode(value));
  REQUIRE(p.ok());
  CHECK(*p == QueryParams{{"v", value}});
}

// ---- defaults and result parameters ---------------------------------------------------------------------

TEST_CASE("parse_search: defaults") {
  SearchOptions o;
  o.default_count = 7;
  const auto q = parsed("", o);
  CHECK(q.resource_type == "Patient");
  CHECK(q.count == 7);
  CHECK(q.total_accurate);
  CHECK_FALSE(q.summary_count);
  CHECK(q.clauses.empty());
  CHECK(q.sort.empty());
  CHECK(q.elements.empty());
  CHECK(q.cursor.empty());
  CHECK(q.ignored.empty());
  CHECK(q.understood.empty());
}

TEST_CASE("_count: a non-negative integer capped at max_count") {
  SearchOptions o;
  o.max_count = 50;
  CHECK(parsed("_count=10", o).count == 10);
  CHECK(parsed("_count=0", o).count == 0);
  CHECK(parsed("_count=50", o).count == 50);
  CHECK(parsed("_count=51", o).count == 50);
  CHECK(parsed("_count=99999999999999999999", o).count == 50);
  CHECK(parsed("_count=007", o).count == 7);
}

TEST_CASE("_count: the self link shows the count in effect") {
  SearchOptions o;
  o.max_count = 50;
  CHECK(parsed("_count=500", o).understood == QueryParams{{"_count", "50"}});
  CHECK(parsed("_count=5", o).understood == QueryParams{{"_count", "5"}});
}

TEST_CASE("_count: anything but digits is rejected") {
  for (const char* q :
       {"_count=abc", "_count=-1", "_count=", "_count=1.5", "_count=+3", "_count=%203", "_count=1e3"}) {
    const Issue issue = rejected(q);
    CHECK(issue.expression == "_count");
    CHECK(issue.diagnostics.find("_count") != std::string::npos);
  }
}

TEST_CASE("_sort: known string/token/date/uri parameters, '-' for descending, in order") {
  const auto q = parsed("_sort=family,-birthdate,gender,-_lastUpdated,_profile");
  REQUIRE(q.sort.size() == 5);
  CHECK(q.sort[0].param == registry().find("Patient", "family"));
  CHECK_FALSE(q.sort[0].descending);
  CHECK(q.sort[1].param == registry().find("Patient", "birthdate"));
  CHECK(q.sort[1].descending);
  CHECK(q.sort[2].param == registry().find("Patient", "gender"));
  CHECK_FALSE(q.sort[2].descending);
  CHECK(q.sort[3].param == registry().find("Patient", "_lastUpdated"));
  CHECK(q.sort[3].descending);
  CHECK(q.sort[4].param == registry().find("Patient", "_profile"));
  CHECK(q.understood == QueryParams{{"_sort", "family,-birthdate,gender,-_lastUpdated,_profile"}});
  CHECK(q.clauses.empty());
}

TEST_CASE("_sort: unknown, reference or empty parameters are rejected, naming them") {
  const Issue unknown = rejected("_sort=family,shoe-size");
  CHECK(unknown.diagnostics == "Cannot sort by 'shoe-size' for resource type Patient");
  CHECK(unknown.expression == "_sort");
  CHECK(rejected("_sort=-organization").diagnostics ==
        "Cannot sort by 'organization' for resource type Patient");
  CHECK(rejected("_sort=period", {}, "Patient").diagnostics ==
        "Cannot sort by 'period' for resource type Patient");
  CHECK(parsed("_sort=period", {}, "Consent").sort.size() == 1);
  CHECK(rejected("_sort=").diagnostics == "Cannot sort by '' for resource type Patient");
  CHECK(rejected("_sort=family,").diagnostics == "Cannot sort by '' for resource type Patient");
  CHECK(rejected("_sort=-").diagnostics == "Cannot sort by '' for resource type Patient");
}

TEST_CASE("_total: none turns off the accurate total; estimate and accurate keep it") {
  CHECK_FALSE(parsed("_total=none").total_accurate);
  CHECK(parsed("_total=estimate").total_accurate);
  CHECK(parsed("_total=accurate").total_accurate);
  CHECK(parsed("_total=none").understood == QueryParams{{"_total", "none"}});
  CHECK(rejected("_total=exact").expression == "_total");
  rejected("_total=");
}

TEST_CASE("_summary: count is supported, false is accepted, the rest is rejected") {
  CHECK(parsed("_summary=count").summary_count);
  CHECK(parsed("_summary=count").understood == QueryParams{{"_summary", "count"}});
  CHECK_FALSE(parsed("_summary=false").summary_count);
  CHECK(rejected("_summary=text").diagnostics == "_summary=text is not supported");
  CHECK(rejected("_summary=true").diagnostics == "_summary=true is not supported");
  CHECK(rejected("_summary=data").expression == "_summary");
}

TEST_CASE("_elements: a list of top-level element names") {
  const auto q = parsed("_elements=name,birthDate,identifier");
  CHECK(q.elements == std::vector<std::string>{"name", "birthDate", "identifier"});
  CHECK(q.understood == QueryParams{{"_elements", "name,birthDate,identifier"}});
  for (const char* bad :
       {"_elements=", "_elements=name,", "_elements=name.family", "_elements=1name", "_elements=na%20me"}) {
    CHECK(rejected(bad).expression == "_elements");
  }
}

TEST_CASE("_cursor is kept verbatim and left out of the self link") {
  const auto q = parsed("_cursor=abc%2Cdef%7C1&family=x");
  CHECK(q.cursor == "abc,def|1");
  CHECK(q.understood == QueryParams{{"family", "x"}});
  CHECK(q.ignored.empty());
}

TEST_CASE("_format and _pretty are accepted, neither understood nor ignored") {
  const auto q = parsed("_format=json&_pretty=true&gender=male", strict());
  CHECK(q.understood == QueryParams{{"gender", "male"}});
  CHECK(q.ignored.empty());
  CHECK(q.clauses.size() == 1);
}

TEST_CASE("result parameters may be given once and take no modifier") {
  CHECK(rejected("_count=1&_count=2").diagnostics == "_count may be given only once");
  CHECK(rejected("_sort=family&_sort=given").expression == "_sort");
  CHECK(rejected("_count:exact=1").diagnostics == "_count takes no modifier");
}

// ---- unknown parameters ---------------------------------------------------------------------------------

TEST_CASE("unknown parameters: strict mode rejects them, naming the parameter") {
  const Issue issue = rejected("family=x&shoe-size=42", strict());
  CHECK(issue.diagnostics == "Unknown search parameter 'shoe-size' for resource type Patient");
  CHECK(issue.expression == "shoe-size");
  CHECK(rejected("_include=Patient:organization", strict()).expression == "_include");
  CHECK(rejected("shoe-size:exact=42", strict()).expression == "shoe-size");
  CHECK(rejected("status=active", strict(), "Patient").expression == "status");
  CHECK(parsed("status=active", strict(), "Consent").clauses.size() == 1);
}

TEST_CASE("unknown parameters: lenient mode ignores them and leaves them out of the self link") {
  const auto q =
      parsed("shoe-size:exact=43&family=x&_include=Patient:organization&shoe-size=42&phonetic=smyth");
  CHECK(q.ignored == std::vector<std::string>{"shoe-size", "_include", "phonetic"});
  CHECK(q.understood == QueryParams{{"family", "x"}});
  REQUIRE(q.clauses.size() == 1);
  CHECK(q.clauses[0].param == registry().find("Patient", "family"));
}

// ---- modifiers ------------------------------------------------------------------------------------------

TEST_CASE("modifiers: each type takes its own") {
  CHECK(parsed("family:exact=X").clauses.at(0).modifier == SearchModifier::exact);
  CHECK(parsed("family:contains=X").clauses.at(0).modifier == SearchModifier::contains);
  CHECK(parsed("family:missing=true").clauses.at(0).modifier == SearchModifier::missing);
  CHECK(parsed("family=X").clauses.at(0).modifier == SearchModifier::none);
  CHECK(parsed("gender:not=male").clauses.at(0).modifier == SearchModifier::not_);
  CHECK(parsed("gender:missing=false").clauses.at(0).modifier == SearchModifier::missing);
  CHECK(parsed("birthdate:missing=true").clauses.at(0).modifier == SearchModifier::missing);
  CHECK(parsed("organization:missing=true").clauses.at(0).modifier == SearchModifier::missing);
  CHECK(parsed("_profile:missing=true").clauses.at(0).modifier == SearchModifier::missing);
}

TEST_CASE("modifiers: unknown or unsupported ones are rejected, naming them") {
  const Issue issue = rejected("family:not=x");
  CHECK(issue.diagnostics == "Modifier 'not' is not supported for string parameter family");
  CHECK(issue.expression == "family");
  CHECK(rejected("gender:exact=male").diagnostics ==
        "Modifier 'exact' is not supported for token parameter gender");
  CHECK(rejected("birthdate:contains=1970").diagnostics ==
        "Modifier 'contains' is not supported for date parameter birthdate");
  CHECK(rejected("organization:Organization=1").diagnostics ==
        "Modifier 'Organization' is not supported for reference parameter organization");
  CHECK(rejected("_profile:below=http://x").diagnostics ==
        "Modifier 'below' is not supported for uri parameter _profile");
  CHECK(rejected("family:=x").diagnostics == "Modifier '' is not supported for string parameter family");
  CHECK(rejected("family:EXACT=x").expression == "family");
  CHECK(rejected("gender:text=male").expression == "gender");
}

TEST_CASE(":missing takes true or false") {
  const auto yes = parsed("family:missing=true");
  CHECK(only_value(yes).missing);
  const auto no = parsed("birthdate:missing=false");
  CHECK_FALSE(only_value(no).missing);
  CHECK(rejected("gender:missing=yes").diagnostics ==
        "Value of gender:missing must be true or false, got 'yes'");
  rejected("gender:missing=");
  rejected("gender:missing=true,false");
  rejected("gender:missing=TRUE");
}

// ---- values ---------------------------------------------------------------------------------------------

TEST_CASE("string values are normalized, except for :exact") {
  CHECK(only_value(parsed("family=M%C3%BCLLER")).text == "muller");
  CHECK(only_value(parsed("family:contains=%C3%9Fe")).text == "sse");
  CHECK(only_value(parsed("family:exact=M%C3%BCller")).text == "Müller");
  CHECK(only_value(parsed("name=Van+Der")).text == "van der");
}

TEST_CASE("values are ORed on commas; escaped commas, pipes and backslashes are literal") {
  const auto q = parsed("family=Smith,Jones");
  REQUIRE(q.clauses.size() == 1);
  REQUIRE(q.clauses[0].any_of.size() == 2);
  CHECK(q.clauses[0].any_of[0].text == "smith");
  CHECK(q.clauses[0].any_of[1].text == "jones");

  const auto escaped = parsed("family:exact=Smith\\,Jr,Jones");
  REQUIRE(escaped.clauses.at(0).any_of.size() == 2);
  CHECK(escaped.clauses[0].any_of[0].text == "Smith,Jr");
  CHECK(escaped.clauses[0].any_of[1].text == "Jones");

  CHECK(only_value(parsed("family:exact=a\\\\b")).text == "a\\b");
  CHECK(only_value(parsed("family:exact=a\\$b")).text == "a$b");
  CHECK(only_value(parsed("family:exact=a\\xb")).text == "a\\xb");

  const auto backslash_then_comma = parsed("family:exact=a\\\\,b");
  REQUIRE(backslash_then_comma.clauses.at(0).any_of.size() == 2);
  CHECK(backslash_then_comma.clauses[0].any_of[0].text == "a\\");
  CHECK(backslash_then_comma.clauses[0].any_of[1].text == "b");
}

TEST_CASE("empty values are skipped; a parameter with no value at all is ignored") {
  const auto q = parsed("family=,Smith,,");
  CHECK(only_value(q).text == "smith");
  const auto empty = parsed("family=&given=", strict());
  CHECK(empty.clauses.empty());
  CHECK(empty.understood.empty());
  CHECK(empty.ignored.empty());
}

TEST_CASE("token values: system|code, |code, system|, code") {
  const auto both = only_value(parsed("identifier=http://hospital.example/mrn|12345"));
  CHECK(both.has_system);
  CHECK(both.system == "http://hospital.example/mrn");
  CHECK(both.code == "12345");

  const auto no_system = only_value(parsed("identifier=|12345"));
  CHECK(no_system.has_system);
  CHECK(no_system.system.empty());
  CHECK(no_system.code == "12345");

  const auto any_code = only_value(parsed("identifier=http://hospital.example/mrn|"));
  CHECK(any_code.has_system);
  CHECK(any_code.system == "http://hospital.example/mrn");
  CHECK(any_code.code.empty());

  const auto code_only = only_value(parsed("gender=female"));
  CHECK_FALSE(code_only.has_system);
  CHECK(code_only.system.empty());
  CHECK(code_only.code == "female");
}

TEST_CASE("token values: escapes, later pipes belong to the code, codes are not normalized") {
  const auto v = only_value(parsed("identifier=urn:a\\|b|C\\,1\\|2"));
  CHECK(v.system == "urn:a|b");
  CHECK(v.code == "C,1|2");
  CHECK(only_value(parsed("identifier=s|a|b")).code == "a|b");
  CHECK(only_value(parsed("identifier=AbC")).code == "AbC");
  const auto q = parsed("gender=male,female");
  REQUIRE(q.clauses.at(0).any_of.size() == 2);
  CHECK(q.clauses[0].any_of[1].code == "female");
}

TEST_CASE("date values: every precision is a range, eq by default") {
  const auto year = only_value(parsed("birthdate=1970"));
  CHECK(year.prefix == DatePrefix::eq);
  CHECK(year.range == TimeRange{0, 31535999999});
  CHECK(only_value(parsed("birthdate=2020-01-01")).range == TimeRange{k2020, k2020 + kDay - 1});
  CHECK(only_value(parsed("_lastUpdated=2020-01-01T10:00:00.5Z")).range ==
        TimeRange{k2020 + 36000500, k2020 + 36000599});
}

TEST_CASE("date values: prefixes") {
  const std::pair<const char*, DatePrefix> cases[] = {
      {"eq", DatePrefix::eq}, {"ne", DatePrefix::ne}, {"gt", DatePrefix::gt}, {"lt", DatePrefix::lt},
      {"ge", DatePrefix::ge}, {"le", DatePrefix::le}, {"sa", DatePrefix::sa}, {"eb", DatePrefix::eb}};
  for (const auto& c : cases) {  // not a structured binding: clang 14 cannot capture one (CHECK_MESSAGE)
    const char* text = c.first;
    const DatePrefix prefix = c.second;
    const auto v = only_value(parsed(std::string("birthdate=") + text + "2020-01-01"));
    CHECK_MESSAGE(v.prefix == prefix, text);
    CHECK_MESSAGE((v.range == TimeRange{k2020, k2020 + kDay - 1}), text);
  }
  const auto q = parsed("birthdate=ge2020-01-01&birthdate=lt2021");
  REQUIRE(q.clauses.size() == 2);
  CHECK(q.clauses[0].any_of.at(0).prefix == DatePrefix::ge);
  CHECK(q.clauses[1].any_of.at(0).prefix == DatePrefix::lt);
}

TEST_CASE("date values: ap widens by 10% of the gap to now, at least the value itself") {
  SearchOptions o;
  o.now_ms = k2020 + 11 * kDay - 1;  // ten days after the value ends
  const auto after = only_value(parsed("birthdate=ap2020-01-01", o));
  CHECK(after.prefix == DatePrefix::ap);
  CHECK(after.range == TimeRange{k2020 - kDay, k2020 + 2 * kDay - 1});

  o.now_ms = k2020 - 20 * kDay;  // twenty days before the value starts
  CHECK(only_value(parsed("birthdate=ap2020-01-01", o)).range ==
        TimeRange{k2020 - 2 * kDay, k2020 + 3 * kDay - 1});

  o.now_ms = k2020 + kDay / 2;  // within the value
  CHECK(only_value(parsed("birthdate=ap2020-01-01", o)).range == TimeRange{k2020, k2020 + kDay - 1});
}

TEST_CASE("date values: an unencoded '+' in a zone offset is read as '+'") {
  const TimeRange expected{k2020 + 8 * 3600000, k2020 + 8 * 3600000 + 999};
  CHECK(only_value(parsed("_lastUpdated=2020-01-01T10:00:00+02:00")).range == expected);
  CHECK(only_value(parsed("_lastUpdated=gt2020-01-01T10:00:00%2B02:00")).range == expected);
}

TEST_CASE("date values: invalid dates are rejected, naming value and parameter") {
  const Issue issue = rejected("birthdate=1970-13");
  CHECK(issue.diagnostics == "Invalid date '1970-13' for parameter birthdate");
  CHECK(issue.expression == "birthdate");
  CHECK(rejected("birthdate=2023-02-29").diagnostics == "Invalid date '2023-02-29' for parameter birthdate");
  CHECK(rejected("birthdate=xx2020").diagnostics == "Invalid date 'xx2020' for parameter birthdate");
  CHECK(rejected("birthdate=2020,gt2021-02-30").diagnostics ==
        "Invalid date 'gt2021-02-30' for parameter birthdate");
  CHECK(rejected("birthdate=GT2020").diagnostics == "Invalid date 'GT2020' for parameter birthdate");
  CHECK(rejected("birthdate=today").expression == "birthdate");
}

TEST_CASE("reference values: Type/id, id, absolute URL") {
  const auto typed = only_value(parsed("organization=Organization/org-1"));
  CHECK(typed.system == "Organization");
  CHECK(typed.code == "org-1");

  const auto plain = only_value(parsed("general-practitioner=prac-7"));
  CHECK(plain.system.empty());
  CHECK(plain.code == "prac-7");

  const auto absolute =
      only_value(parsed("patient=https://fhir.example.org/base/r4/Patient/p1", {}, "Consent"));
  CHECK(absolute.system == "Patient");
  CHECK(absolute.code == "p1");

  const auto short_url = only_value(parsed("patient=http://host/Patient/p2", {}, "Consent"));
  CHECK(short_url.system == "Patient");
  CHECK(short_url.code == "p2");

  const auto q = parsed("actor=Patient/1,Practitioner/2", {}, "Consent");
  REQUIRE(q.clauses.at(0).any_of.size() == 2);
  CHECK(q.clauses[0].any_of[1].system == "Practitioner");
  CHECK(q.clauses[0].any_of[1].code == "2");
}

TEST_CASE("reference values: malformed references are rejected") {
  const Issue issue = rejected("organization=Organization/");
  CHECK(issue.diagnostics == "Invalid reference 'Organization/' for parameter organization");
  CHECK(issue.expression == "organization");
  for (const char* q : {"organization=/1", "organization=a/b/c", "organization=http://host",
                        "organization=http://host/1", "organization=http://host/Organization/"}) {
    CHECK_MESSAGE(rejected(q).expression == "organization", q);
  }
}

TEST_CASE("uri values are exact") {
  const auto v = only_value(parsed("_profile=http://Example.org/StructureDefinition/My-Patient"));
  CHECK(v.text == "http://Example.org/StructureDefinition/My-Patient");
  const auto q = parsed("_profile=http://a/x,http://a/y");
  REQUIRE(q.clauses.at(0).any_of.size() == 2);
  CHECK(q.clauses[0].any_of[1].text == "http://a/y");
}

// ---- the query as a whole -------------------------------------------------------------------------------

TEST_CASE("clauses and the self link follow request order; repeats are separate ANDed clauses") {
  const auto q =
      parsed("given=Ann&_count=5&family:exact=Smith,Jones&given=Marie&shoe=1&_cursor=c1&gender=female");
  REQUIRE(q.clauses.size() == 4);
  CHECK(q.clauses[0].param == registry().find("Patient", "given"));
  CHECK(q.clauses[0].any_of.at(0).text == "ann");
  CHECK(q.clauses[1].param == registry().find("Patient", "family"));
  CHECK(q.clauses[1].modifier == SearchModifier::exact);
  CHECK(q.clauses[2].param == registry().find("Patient", "given"));
  CHECK(q.clauses[2].any_of.at(0).text == "marie");
  CHECK(q.clauses[3].param == registry().find("Patient", "gender"));
  CHECK(q.understood == QueryParams{{"given", "Ann"},
                                    {"_count", "5"},
                                    {"family:exact", "Smith,Jones"},
                                    {"given", "Marie"},
                                    {"gender", "female"}});
  CHECK(q.ignored == std::vector<std::string>{"shoe"});
  CHECK(q.cursor == "c1");
}

TEST_CASE("the self link keeps the raw value, escapes included") {
  const auto q = parsed("identifier=urn%3Aa%5C%7Cb%7C1");
  CHECK(q.understood == QueryParams{{"identifier", "urn:a\\|b|1"}});
}

TEST_CASE("parameters are looked up for the requested resource type") {
  const auto q = parsed("date=ge2020&status=active", {}, "AuditEvent");
  CHECK(q.resource_type == "AuditEvent");
  CHECK(q.ignored == std::vector<std::string>{"status"});
  REQUIRE(q.clauses.size() == 1);
  CHECK(q.clauses[0].param == registry().find("AuditEvent", "date"));
}

}  // namespace
}  // namespace fhirgate::fhir
