// The HL7 v2 corpus (../shared/corpus, provenance in its README):
// 1. every message parses and serializes back to its own text (malformed ones give errors);
// 2. the ADT messages that carry a Patient (A01 A04 A05 A08 A28 A31) map to a Patient, and so does the PID
//    of the CDC ORU/ORM/OML messages (presented as ADT^A31: the trigger does not change the PID mapping).
//    Each Patient is compared with the reference converter's Patient field by field (identifier, name,
//    birthDate, gender, address, telecom); the report (`-s`) prints agree/differ with both sides, and
//    docs/hl7v2-corpus.md explains every difference. Assertions are on what must hold for our own
//    mapping (valid R4, values taken from the message, no invented identifier systems), never on agreeing
//    with a converter whose choices we deliberately do not follow.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "fhir/json.hpp"
#include "fhir/validator.hpp"
#include "mappers/adt_patient.hpp"
#include "mappers/hl7v2.hpp"
#include "tests/support/paths.hpp"
#include "tests/support/r4.hpp"

namespace fhirgate::mappers {
namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The input as serialize() must give it back: no byte order mark, no blank lines, each segment ended by CR.
std::string normalised(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  std::string out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find_first_of("\r\n", pos);
    if (end == std::string_view::npos) end = text.size();
    if (end > pos) {
      out.append(text.substr(pos, end - pos));
      out += '\r';
    }
    pos = end + 1;
  }
  return out;
}

struct Counts {
  int files = 0;
  int round_tripped = 0;
  int rejected = 0;
};

Counts run_corpus(const std::string& dir) {
  Counts c;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".hl7") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& path : files) {
    ++c.files;
    std::string text = read_file(path);
    auto m = Message::parse(text);
    std::string name = std::filesystem::relative(path, dir).string();
    if (!m.ok()) {
      ++c.rejected;
      REQUIRE(!m.error().issues.empty());
      MESSAGE(name << ": rejected: " << m.error().issues[0].diagnostics);
      continue;
    }
    CHECK_MESSAGE(m->serialize() == normalised(text), name);
    if (m->serialize() == normalised(text)) ++c.round_tripped;
    CHECK_MESSAGE(!m->control_id().empty(), name);
    for (std::size_t s = 0; s < m->segment_count(); ++s) {
      Segment seg = m->segment_at(s);
      for (std::size_t f = 1; f <= seg.field_count(); ++f) {
        Part field = seg.field(f);
        if (field.level() != Part::Level::field) continue;
        for (std::size_t r = 1; r <= field.count(); ++r)
          for (std::size_t k = 1; k <= field.repetition(r).count(); ++k)
            (void)field.repetition(r).component(k).value();
      }
    }
  }
  return c;
}

TEST_CASE("hl7v2 corpus: microsoft FHIR-Converter samples round trip") {
  std::string dir = fhirgate::testing::shared_path("corpus/hl7v2-microsoft-fhir-converter");
  if (dir.empty()) return;
  Counts c = run_corpus(dir);
  MESSAGE("microsoft-fhir-converter: " << c.files << " files, " << c.round_tripped << " round tripped, "
                                       << c.rejected << " rejected");
  CHECK(c.files > 0);
  CHECK(c.rejected == 0);
  CHECK(c.round_tripped == c.files);
}

TEST_CASE("hl7v2 corpus: CDC trusted-intermediary samples round trip; malformed ones give errors") {
  std::string dir = fhirgate::testing::shared_path("corpus/hl7v2-cdc-trusted-intermediary");
  if (dir.empty()) return;
  Counts c = run_corpus(dir);
  MESSAGE("cdc-trusted-intermediary: " << c.files << " files, " << c.round_tripped << " round tripped, "
                                       << c.rejected << " rejected");
  CHECK(c.files > 0);
  CHECK(c.rejected == 1);
  CHECK(c.round_tripped + c.rejected == c.files);
  auto empty = Message::parse(read_file(dir + "/Test/Message/empty.hl7"));
  REQUIRE(!empty.ok());
  CHECK(empty.error().issues[0].diagnostics == "HL7 v2 message is empty");
}

TEST_CASE("hl7v2 corpus: linuxforhealth samples") {
  std::string dir = fhirgate::testing::shared_path("corpus/hl7v2-linuxforhealth");
  if (dir.empty()) return;
  Counts c = run_corpus(dir);
  MESSAGE("linuxforhealth: " << c.files << " files, " << c.round_tripped << " round tripped, " << c.rejected
                             << " rejected");
  CHECK(c.round_tripped + c.rejected == c.files);
}

// ---- Patient mapping compared with other converters ----

using fhir::Node;

// The corpus comes from no configured partner: the NHS number authority stays the default and there is no
// local identifier system, so every identifier system in our output must be the NHS number's or absent.
const PartnerMapping& corpus_partner() {
  static const PartnerMapping mapping;
  return mapping;
}

const fhir::Validator& r4_validator() {
  static const std::shared_ptr<const fhir::Model> model = testing::r4_model();
  static const std::shared_ptr<const fhir::Terminology> terminology = [] {
    auto t = fhir::Terminology::load_from(fhirgate::testing::source_path("profiles"));
    REQUIRE(t.ok());
    return std::shared_ptr<const fhir::Terminology>(*t);
  }();
  static const fhir::Validator validator(model, terminology);
  return validator;
}

constexpr std::array<std::string_view, 6> kFields{"identifier", "name",    "birthDate",
                                                  "gender",     "address", "telecom"};

// The element as compared: members sorted, without what cannot or need not match between converters
// (extensions, ids, references to resources each converter generates, coding displays).
Node comparable(const Node& n) {
  if (n.is_array()) {
    Node out = Node::array();
    for (const Node& item : n.items()) out.push(comparable(item));
    return out;
  }
  if (!n.is_object()) return n;
  std::vector<Node::Member> members;
  for (const auto& [key, value] : n.members()) {
    if (key == "extension" || key == "id" || key == "assigner" || key == "display" || key.starts_with("_"))
      continue;
    members.emplace_back(key, comparable(value));
  }
  std::sort(members.begin(), members.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  Node out = Node::object();
  for (auto& [key, value] : members) out.set(key, std::move(value));
  return out;
}

// A field of a Patient as a sorted list of its items, each one compact JSON. birthDate carries the
// patient-birthTime extension when there is one, so that a converter keeping the time shows as a difference.
std::vector<std::string> field_items(const Node& patient, std::string_view field) {
  std::vector<std::string> out;
  const Node* value = patient.find(field);
  if (value && value->is_array()) {
    for (const Node& item : value->items()) out.push_back(fhir::write_json(comparable(item)));
  } else if (value) {
    out.push_back(value->text());
  }
  if (field == "birthDate")
    if (const Node* ext = patient.find("_birthDate"); ext && ext->find("extension"))
      for (const Node& e : ext->find("extension")->items())
        if (e.string_at("url") == "http://hl7.org/fhir/StructureDefinition/patient-birthTime")
          out.push_back("birthTime " + std::string(e.string_at("valueDateTime")));
  std::sort(out.begin(), out.end());
  return out;
}

struct FieldTally {
  int messages = 0;
  int agree = 0;
  int ours = 0;       // items in our Patient
  int reference = 0;  // items in the reference Patient
  int identical = 0;  // items in both
};

struct CorpusReport {
  int messages = 0;
  int mapped = 0;
  std::map<std::string, FieldTally, std::less<>> fields;

  void summary(std::string_view corpus) const {
    std::ostringstream s;
    s << corpus << ": " << mapped << "/" << messages << " messages mapped";
    int agree = 0;
    int compared = 0;
    for (std::string_view f : kFields) {
      const FieldTally& t = fields.find(f)->second;
      s << "\n  " << f << ": " << t.agree << "/" << t.messages << " agree; items ours " << t.ours
        << ", reference " << t.reference << ", identical " << t.identical;
      agree += t.agree;
      compared += t.messages;
    }
    s << "\n  all fields: " << agree << "/" << compared << " agree";
    MESSAGE(s.str());
  }
};

void compare_fields(const std::string& name, const Node& ours, const Node& reference, CorpusReport& report) {
  std::ostringstream s;
  s << name << ":";
  for (std::string_view field : kFields) {
    std::vector<std::string> a = field_items(ours, field);
    std::vector<std::string> b = field_items(reference, field);
    std::vector<std::string> both, ours_only, reference_only;
    std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(both));
    std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(ours_only));
    std::set_difference(b.begin(), b.end(), a.begin(), a.end(), std::back_inserter(reference_only));
    FieldTally& t = report.fields[std::string(field)];
    ++t.messages;
    t.ours += static_cast<int>(a.size());
    t.reference += static_cast<int>(b.size());
    t.identical += static_cast<int>(both.size());
    if (a == b) {
      ++t.agree;
      s << "\n  " << field << ": agree" << (a.empty() ? " (absent in both)" : "");
      for (const auto& item : a) s << "\n      " << item;
      continue;
    }
    s << "\n  " << field << ": DIFFER";
    for (const auto& item : both) s << "\n      both:      " << item;
    for (const auto& item : ours_only) s << "\n      ours:      " << item;
    for (const auto& item : reference_only) s << "\n      reference: " << item;
  }
  MESSAGE(s.str());
}

std::string v2_date(std::string_view dtm) {
  std::string digits(dtm.substr(0, dtm.find_first_of(".+-")));
  if (digits.size() < 4) return {};
  std::string out = digits.substr(0, 4);
  if (digits.size() >= 6) out += "-" + digits.substr(4, 2);
  if (digits.size() >= 8) out += "-" + digits.substr(6, 2);
  return out;
}

// What must hold for any Patient we map, whatever another converter does.
void check_patient(const std::string& name, const Message& message, const Node& patient) {
  CAPTURE(name);
  CHECK(fhir::check_resource_json(patient).ok());
  fhir::ValidationResult validation = r4_validator().validate(patient);
  for (const auto& issue : validation.issues)
    if (issue.severity == "error" || issue.severity == "fatal")
      FAIL_CHECK(issue.expression << ": " << issue.diagnostics);

  auto pid = message.segment("PID");
  REQUIRE(pid.has_value());
  std::vector<std::string> cx_values;
  Part pid3 = pid->field(3);
  for (std::size_t r = 1; r <= pid3.count(); ++r)
    if (std::string v = pid3.repetition(r).component(1).value(); !v.empty()) cx_values.push_back(v);
  const Node* ids = patient.find("identifier");
  CHECK((ids ? ids->items().size() : 0) == cx_values.size());
  if (ids)
    for (const Node& id : ids->items()) {
      std::string_view system = id.string_at("system");
      CHECK_MESSAGE((system.empty() || system == kNhsNumberSystem), "invented identifier system " << system);
      if (system.empty())
        CHECK(std::find(cx_values.begin(), cx_values.end(), id.string_at("value")) != cx_values.end());
    }

  CHECK(std::string(patient.string_at("birthDate")) == v2_date(pid->field(7).value()));
  static const std::map<std::string, std::string, std::less<>> kSex{
      {"M", "male"}, {"F", "female"}, {"O", "other"}, {"U", "unknown"}, {"A", "other"}, {"N", "other"}};
  auto sex = kSex.find(pid->field(8).value());
  CHECK(patient.string_at("gender") == (sex == kSex.end() ? "" : sex->second));

  if (const Node* names = patient.find("name"))
    for (const Node& n : names->items()) CHECK((n.find("family") || n.find("given")));
  if (const Node* telecom = patient.find("telecom"))
    for (const Node& cp : telecom->items()) {
      CHECK(!cp.string_at("system").empty());
      CHECK(!cp.string_at("value").empty());
    }
}

const Node* bundle_patient(const Node& bundle) {
  if (const Node* entries = bundle.find("entry"))
    for (const Node& e : entries->items())
      if (const Node* r = e.find("resource"); r && r->string_at("resourceType") == "Patient") return r;
  return nullptr;
}

// Maps `message` (of a Patient trigger), checks the Patient, and compares it with the Patient in the
// reference converter's bundle `expected`.
void map_and_compare(const std::string& name, const Message& message, const std::filesystem::path& expected,
                     CorpusReport& report) {
  ++report.messages;
  auto ours = adt_to_patient(message, corpus_partner());
  CHECK_MESSAGE(ours.ok(), name);
  if (!ours.ok()) return;
  ++report.mapped;
  check_patient(name, message, *ours);
  auto bundle = fhir::parse_json(read_file(expected));
  REQUIRE_MESSAGE(bundle.ok(), expected.string());
  const Node* reference = bundle_patient(*bundle);
  REQUIRE_MESSAGE(reference != nullptr, expected.string());
  compare_fields(name, *ours, *reference, report);
}

bool is_patient_trigger(const MessageType& type) {
  static constexpr std::array<std::string_view, 6> kTriggers{"A01", "A04", "A05", "A08", "A28", "A31"};
  return type.code == "ADT" && std::find(kTriggers.begin(), kTriggers.end(), type.trigger) != kTriggers.end();
}

TEST_CASE("hl7v2 corpus: microsoft FHIR-Converter ADT messages -> Patient, compared with its output") {
  std::string dir = fhirgate::testing::shared_path("corpus/hl7v2-microsoft-fhir-converter");
  if (dir.empty()) return;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().extension() == ".hl7") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  CorpusReport report;
  for (const auto& path : files) {
    auto message = Message::parse(read_file(path));
    REQUIRE(message.ok());
    if (!is_patient_trigger(message->message_type())) continue;
    std::filesystem::path expected = path;
    expected.replace_filename(path.stem().string() + "-expected.json");
    REQUIRE(std::filesystem::exists(expected));
    map_and_compare(path.filename().string(), *message, expected, report);
  }
  report.summary("microsoft-fhir-converter ADT");
  CHECK(report.messages == 7);
  CHECK(report.mapped == report.messages);
}

TEST_CASE("hl7v2 corpus: CDC ReportStream PID segments -> Patient, compared with its output") {
  std::string dir = fhirgate::testing::shared_path("corpus/hl7v2-cdc-trusted-intermediary");
  if (dir.empty()) return;
  constexpr std::string_view kSuffix = "_1_hl7_translation.fhir";
  std::vector<std::filesystem::path> translations;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.path().filename().string().ends_with(kSuffix)) translations.push_back(e.path());
  std::sort(translations.begin(), translations.end());
  CorpusReport report;
  for (const auto& expected : translations) {
    std::string stem = expected.filename().string();
    stem.resize(stem.size() - kSuffix.size());
    std::filesystem::path source = expected.parent_path() / (stem + "_0_initial_message.hl7");
    auto message = Message::parse(read_file(source));
    REQUIRE_MESSAGE(message.ok(), source.string());
    for (auto [path, value] : {std::pair{"MSH-9.1", "ADT"}, {"MSH-9.2", "A31"}, {"MSH-9.3", "ADT_A05"}})
      REQUIRE(message->set(path, value).ok());
    map_and_compare(std::filesystem::relative(source, dir).string(), *message, expected, report);
  }
  report.summary("cdc-trusted-intermediary PID");
  CHECK(report.messages == 12);
  CHECK(report.mapped == report.messages);
}

}  // namespace
}  // namespace fhirgate::mappers
