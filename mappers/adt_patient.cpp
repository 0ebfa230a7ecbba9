#include "mappers/adt_patient.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>
#include <utility>

#include "fhir/datetime.hpp"

namespace fhirgate::mappers {
namespace {

using fhir::Node;

constexpr std::string_view kV2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203";
constexpr std::string_view kMaritalSystem = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus";
constexpr std::string_view kNullFlavorSystem = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor";

struct CodePair {
  std::string_view v2;
  std::string_view fhir;
};

constexpr std::array kNameUse{
    CodePair{"L", "official"}, CodePair{"R", "official"}, CodePair{"D", "usual"},
    CodePair{"BAD", "old"},    CodePair{"M", "maiden"},   CodePair{"MSK", "anonymous"},
    CodePair{"N", "nickname"}, CodePair{"TEMP", "temp"},  CodePair{"NAV", "temp"}};
constexpr std::array kGender{CodePair{"M", "male"},    CodePair{"F", "female"}, CodePair{"O", "other"},
                             CodePair{"U", "unknown"}, CodePair{"A", "other"},  CodePair{"N", "other"}};
constexpr std::array kAddressUse{CodePair{"H", "home"}, CodePair{"O", "work"}, CodePair{"B", "work"},
                                 CodePair{"C", "temp"}, CodePair{"BA", "old"}, CodePair{"BI", "billing"}};
constexpr std::array kAddressType{CodePair{"M", "postal"}, CodePair{"SH", "postal"}};
constexpr std::array kTelecomUse{CodePair{"PRN", "home"}, CodePair{"WPN", "work"}, CodePair{"PRS", "mobile"}};
constexpr std::array kTelecomSystem{CodePair{"PH", "phone"},       CodePair{"FX", "fax"},
                                    CodePair{"MD", "other"},       CodePair{"CP", "phone"},
                                    CodePair{"SAT", "other"},      CodePair{"BP", "pager"},
                                    CodePair{"Internet", "email"}, CodePair{"X.400", "email"},
                                    CodePair{"TDD", "other"},      CodePair{"TTY", "other"}};

// The codes of http://terminology.hl7.org/CodeSystem/v2-0203 (R4 terminology, sorted): a CX.5 outside it
// is kept as Identifier.type.text, never as a coding the code system does not define.
constexpr std::array<std::string_view, 127> kIdentifierTypes{
    "AC",    "ACSN",  "AM",   "AMA", "AN",   "ANC", "AND",  "ANON",  "ANT",  "APRN",  "ASID", "BA",   "BC",
    "BCFN",  "BCT",   "BR",   "BRN", "BSNR", "CC",  "CONM", "CY",    "CZ",   "DC",    "DCFN", "DDS",  "DEA",
    "DFN",   "DI",    "DL",   "DN",  "DO",   "DP",  "DPM",  "DR",    "DS",   "EI",    "EN",   "ESN",  "FDR",
    "FDRFN", "FI",    "FILL", "GI",  "GL",   "GN",  "HC",   "IND",   "JHN",  "LACSN", "LANR", "LI",   "LN",
    "LR",    "MA",    "MB",   "MC",  "MCD",  "MCN", "MCR",  "MCT",   "MD",   "MI",    "MR",   "MRT",  "MS",
    "NBSNR", "NCT",   "NE",   "NH",  "NI",   "NII", "NIIP", "NNxxx", "NP",   "NPI",   "OBI",  "OD",   "PA",
    "PC",    "PCN",   "PE",   "PEN", "PHC",  "PHE", "PHO",  "PI",    "PLAC", "PN",    "PNT",  "PPIN", "PPN",
    "PRC",   "PRN",   "PT",   "QA",  "RI",   "RN",  "RPH",  "RR",    "RRI",  "RRP",   "SB",   "SID",  "SL",
    "SN",    "SNBSN", "SNO",  "SP",  "SR",   "SS",  "STN",  "TAX",   "TN",   "TPR",   "TRL",  "U",    "UDI",
    "UPIN",  "USID",  "VN",   "VP",  "VS",   "WC",  "WCN",  "WP",    "XV",   "XX"};
static_assert(std::is_sorted(kIdentifierTypes.begin(), kIdentifierTypes.end()));

struct Marital {
  std::string_view v2;
  std::string_view code;
  std::string_view display;
  std::string_view system;
};
constexpr std::array kMarital{Marital{"A", "L", "Legally Separated", kMaritalSystem},
                              Marital{"D", "D", "Divorced", kMaritalSystem},
                              Marital{"M", "M", "Married", kMaritalSystem},
                              Marital{"S", "S", "Never Married", kMaritalSystem},
                              Marital{"W", "W", "Widowed", kMaritalSystem},
                              Marital{"C", "C", "Common Law", kMaritalSystem},
                              Marital{"P", "T", "Domestic partner", kMaritalSystem},
                              Marital{"G", "T", "Domestic partner", kMaritalSystem},
                              Marital{"R", "T", "Domestic partner", kMaritalSystem},
                              Marital{"E", "L", "Legally Separated", kMaritalSystem},
                              Marital{"N", "A", "Annulled", kMaritalSystem},
                              Marital{"I", "I", "Interlocutory", kMaritalSystem},
                              Marital{"B", "U", "unmarried", kMaritalSystem},
                              Marital{"U", "UNK", "Unknown", kNullFlavorSystem},
                              Marital{"O", "OTH", "Other", kNullFlavorSystem},
                              Marital{"T", "NAVU", "Not available", kNullFlavorSystem}};

template <std::size_t N>
std::string_view to_fhir(const std::array<CodePair, N>& table, std::string_view v2) {
  for (const auto& p : table)
    if (p.v2 == v2) return p.fhir;
  return {};
}

template <std::size_t N>
std::string_view to_v2(const std::array<CodePair, N>& table, std::string_view fhir) {
  for (const auto& p : table)
    if (p.fhir == fhir) return p.v2;
  return {};
}

Error invalid(std::string diagnostics, std::string expression = {}) {
  return Error::make(ErrorCode::invalid_input, std::move(diagnostics), std::move(expression));
}

void set_if(Node& object, std::string_view key, std::string value) {
  if (!value.empty()) object.set(key, Node::string(std::move(value)));
}

void set_if(Node& object, std::string_view key, Node value) {
  bool empty = (value.is_object() && value.members().empty()) ||
               (value.is_array() && value.items().empty()) || (value.is_string() && value.text().empty()) ||
               value.is_null();
  if (!empty) object.set(key, std::move(value));
}

void push_if(Node& array, std::string value) {
  if (!value.empty()) array.push(Node::string(std::move(value)));
}

bool all_digits(std::string_view s, std::size_t from, std::size_t to) {
  if (to > s.size() || from > to) return false;
  for (std::size_t i = from; i < to; ++i)
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  return true;
}

std::string digits_only(std::string_view s) {
  std::string out;
  for (char c : s)
    if (std::isdigit(static_cast<unsigned char>(c))) out += c;
  return out;
}

// v2 DTM split into its digits and optional +/-ZZZZ offset.
struct Dtm {
  std::string digits;
  std::string fraction;
  std::string offset;
};

std::optional<Dtm> split_dtm(std::string_view dtm) {
  Dtm d;
  std::size_t tz = dtm.find_first_of("+-");
  std::string_view main = dtm.substr(0, tz);
  if (tz != std::string_view::npos) {
    std::string_view off = dtm.substr(tz);
    if (off.size() != 5 || !all_digits(off, 1, 5)) return std::nullopt;
    d.offset = std::string(off);
  }
  std::size_t dot = main.find('.');
  if (dot != std::string_view::npos) {
    d.fraction = std::string(main.substr(dot + 1));
    main = main.substr(0, dot);
    if (d.fraction.empty() || !all_digits(d.fraction, 0, d.fraction.size()) || main.size() != 14)
      return std::nullopt;
  }
  std::size_t n = main.size();
  if (!(n == 4 || n == 6 || n == 8 || n == 10 || n == 12 || n == 14) || !all_digits(main, 0, n))
    return std::nullopt;
  d.digits = std::string(main);
  return d;
}

std::string date_part(const std::string& digits) {
  std::string out = digits.substr(0, 4);
  if (digits.size() >= 6) out += "-" + digits.substr(4, 2);
  if (digits.size() >= 8) out += "-" + digits.substr(6, 2);
  return out;
}

// Two v2 DTM/DT values -> Period; a side that is empty or malformed is left out.
Node period(std::string_view start, std::string_view end) {
  Node p = Node::object();
  set_if(p, "start", v2_to_fhir_date_time(start));
  set_if(p, "end", v2_to_fhir_date_time(end));
  return p;
}

// XPN.10 / XAD.12 (DR, its two DTMs as subcomponents) unless the separate effective and expiration
// components (XPN.12/13, XAD.13/14) are valued, as the IG's XPN and XAD maps say.
Node validity(const Part& range, const Part& effective, const Part& expiration) {
  if (!effective.value().empty() || !expiration.value().empty())
    return period(effective.value(), expiration.value());
  return period(range.subcomponent(1).value(), range.subcomponent(2).value());
}

std::string gp_reference_display(const Part& xcn) {
  std::string out;
  for (std::size_t c : {6u, 3u, 4u, 2u}) {
    std::string v = xcn.component(c).value();
    if (v.empty()) continue;
    if (!out.empty()) out += ' ';
    out += v;
  }
  return out;
}

Node reference(std::string_view type, const std::string& id, std::string display) {
  Node ref = Node::object();
  if (fhir::is_valid_id(id)) {
    set_if(ref, "reference", std::string(type) + "/" + id);
  } else if (!id.empty()) {
    Node identifier = Node::object();
    identifier.set("value", Node::string(id));
    ref.set("identifier", std::move(identifier));
  }
  set_if(ref, "display", std::move(display));
  return ref;
}

// CX.5 -> Identifier.type: a v2-0203 coding when the code is in that table, otherwise the text.
Node identifier_type(const std::string& type) {
  Node codeable = Node::object();
  if (type.empty()) return codeable;
  if (!std::binary_search(kIdentifierTypes.begin(), kIdentifierTypes.end(), std::string_view(type))) {
    codeable.set("text", Node::string(type));
    return codeable;
  }
  Node coding = Node::object();
  coding.set("system", Node::string(std::string(kV2_0203)));
  coding.set("code", Node::string(type));
  Node codings = Node::array();
  codings.push(std::move(coding));
  codeable.set("coding", std::move(codings));
  return codeable;
}

Node identifier_from_cx(const Part& cx, const PartnerMapping& mapping) {
  Node id = Node::object();
  std::string value = cx.component(1).value();
  std::string authority = cx.component(4).value();
  std::string type = cx.component(5).value();
  bool nhs =
      (!mapping.nhs_number_authority.empty() && authority == mapping.nhs_number_authority) || type == "NH";
  set_if(id, "type", identifier_type(type));
  if (nhs) {
    id.set("system", Node::string(std::string(kNhsNumberSystem)));
    set_if(id, "value", digits_only(value));
  } else {
    set_if(id, "system", mapping.local_identifier_system);
    set_if(id, "value", value);
  }
  set_if(id, "period", period(cx.component(7).value(), cx.component(8).value()));
  return id;
}

Node identifiers(const Part& field, const PartnerMapping& mapping) {
  Node out = Node::array();
  for (std::size_t r = 1; r <= field.count(); ++r) {
    Node id = identifier_from_cx(field.repetition(r), mapping);
    if (id.find("value")) out.push(std::move(id));
  }
  return out;
}

// One XPN -> its HumanName, plus a nickname HumanName for XPN.15 (Called By), as the IG's XPN map says.
// Names with neither a family nor a given name are left out.
void push_names(Node& names, const Part& xpn) {
  Node name = Node::object();
  std::string use(to_fhir(kNameUse, xpn.component(7).value()));
  set_if(name, "use", use);
  set_if(name, "family", xpn.component(1).value());
  Node given = Node::array();
  push_if(given, xpn.component(2).value());
  push_if(given, xpn.component(3).value());
  set_if(name, "given", std::move(given));
  Node prefix = Node::array();
  push_if(prefix, xpn.component(5).value());
  set_if(name, "prefix", std::move(prefix));
  Node suffix = Node::array();
  push_if(suffix, xpn.component(4).value());
  push_if(suffix, xpn.component(6).value());
  push_if(suffix, xpn.component(14).value());
  set_if(name, "suffix", std::move(suffix));
  if (name.find("family") || name.find("given")) {
    set_if(name, "period", validity(xpn.component(10), xpn.component(12), xpn.component(13)));
    names.push(std::move(name));
  }
  std::string called_by = xpn.component(15).value();
  if (!called_by.empty()) {
    Node nickname = Node::object();
    nickname.set("use", Node::string("nickname"));
    Node given_names = Node::array();
    given_names.push(Node::string(std::move(called_by)));
    nickname.set("given", std::move(given_names));
    names.push(std::move(nickname));
  }
}

// XTN.18 (Preference Order, NM) -> ContactPoint.rank (positiveInt); empty unless a whole number >= 1.
std::string rank(std::string_view nm) {
  if (nm.empty() || nm.size() > 9 || !all_digits(nm, 0, nm.size())) return {};
  std::size_t first = nm.find_first_not_of('0');
  return first == std::string_view::npos ? std::string() : std::string(nm.substr(first));
}

// The IG's XTN map. The value is XTN.4 for an email address; otherwise XTN.12 (the unformatted number),
// else the number composed from XTN.5-8, else XTN.1. R4 requires a system with a value (cpt-2): with no
// XTN.3 it is email for XTN.4 and phone for the telephone-number components; an XTN.3 outside table
// 0202 gives other.
Node contact_point(const Part& xtn, std::string_view default_use) {
  Node cp = Node::object();
  std::string equipment = xtn.component(3).value();
  std::string email = xtn.component(4).value();
  std::string system(to_fhir(kTelecomSystem, equipment));
  if (equipment.empty()) system = email.empty() ? "phone" : "email";
  if (system.empty()) system = "other";
  std::string value;
  if (system == "email") {
    value = email.empty() ? xtn.component(1).value() : email;
  } else {
    std::string local = xtn.component(7).value();
    if (!xtn.component(12).value().empty()) {
      value = xtn.component(12).value();
    } else if (!local.empty()) {
      std::string country = xtn.component(5).value();
      std::string area = xtn.component(6).value();
      std::string extension = xtn.component(8).value();
      if (!country.empty()) value = "+" + country + " ";
      if (!area.empty()) value += area + " ";
      value += local;
      if (!extension.empty()) value += " X" + extension;
    } else {
      value = xtn.component(1).value();
    }
  }
  if (value.empty()) return cp;
  std::string use(to_fhir(kTelecomUse, xtn.component(2).value()));
  if (equipment == "CP") use = "mobile";
  if (use.empty()) use = default_use;
  cp.set("system", Node::string(system));
  cp.set("value", Node::string(value));
  set_if(cp, "use", use);
  if (std::string r = rank(xtn.component(18).value()); !r.empty()) cp.set("rank", Node::number(r));
  set_if(cp, "period", period(xtn.component(13).value(), xtn.component(14).value()));
  return cp;
}

// XAD.9 (IS before v2.7, CWE since): the CWE[string] map's original text (CWE.9) or text (CWE.2), else
// the code itself.
std::string county(const Part& xad9) {
  for (std::size_t s : {9u, 2u, 1u})
    if (std::string v = xad9.subcomponent(s).value(); !v.empty()) return v;
  return {};
}

// The IG's XAD map: XAD.1 (SAD.1-3), XAD.2 and XAD.19 (addressee) are the lines; XAD.7 gives use or type.
Node address(const Part& xad) {
  Node a = Node::object();
  std::string kind = xad.component(7).value();
  set_if(a, "use", std::string(to_fhir(kAddressUse, kind)));
  set_if(a, "type", std::string(to_fhir(kAddressType, kind)));
  Node lines = Node::array();
  Part street = xad.component(1);
  for (std::size_t s = 1; s <= 3; ++s) push_if(lines, street.subcomponent(s).value());
  push_if(lines, xad.component(2).value());
  push_if(lines, xad.component(19).value());
  set_if(a, "line", std::move(lines));
  set_if(a, "city", xad.component(3).value());
  set_if(a, "district", county(xad.component(9)));
  set_if(a, "state", xad.component(4).value());
  set_if(a, "postalCode", xad.component(5).value());
  set_if(a, "country", xad.component(6).value());
  if (!a.members().empty())
    set_if(a, "period", validity(xad.component(12), xad.component(13), xad.component(14)));
  return a;
}

Node marital_status(const std::string& code) {
  Node codeable = Node::object();
  if (code.empty()) return codeable;
  Node coding = Node::object();
  bool found = false;
  for (const auto& m : kMarital) {
    if (m.v2 != code) continue;
    coding.set("system", Node::string(std::string(m.system)));
    coding.set("code", Node::string(std::string(m.code)));
    coding.set("display", Node::string(std::string(m.display)));
    found = true;
    break;
  }
  if (!found) {
    codeable.set("text", Node::string(code));
    return codeable;
  }
  Node codings = Node::array();
  codings.push(std::move(coding));
  codeable.set("coding", std::move(codings));
  return codeable;
}

}  // namespace

bool is_patient_trigger(std::string_view t) {
  return t == "A01" || t == "A04" || t == "A05" || t == "A08" || t == "A28" || t == "A31";
}

std::string v2_to_fhir_date(std::string_view dtm) {
  auto d = split_dtm(dtm);
  if (!d) return {};
  std::string out = date_part(d->digits);
  if (!fhir::parse_time_range(out)) return {};
  return out;
}

std::string v2_to_fhir_date_time(std::string_view dtm) {
  auto d = split_dtm(dtm);
  if (!d) return {};
  std::string out = date_part(d->digits);
  if (!fhir::parse_time_range(out)) return {};
  if (d->digits.size() <= 8 || d->offset.empty()) return out;
  const std::string& s = d->digits;
  out += "T" + s.substr(8, 2) + ":" + (s.size() >= 12 ? s.substr(10, 2) : "00") + ":" +
         (s.size() >= 14 ? s.substr(12, 2) : "00");
  if (!d->fraction.empty()) out += "." + d->fraction;
  out += d->offset.substr(0, 3) + ":" + d->offset.substr(3, 2);
  if (!fhir::parse_time_range(out)) return {};
  return out;
}

std::string fhir_to_v2_date_time(std::string_view fhir) {
  std::string digits;
  std::string offset;
  std::size_t t = fhir.find('T');
  std::string_view date = fhir.substr(0, t);
  if (!(date.size() == 4 || date.size() == 7 || date.size() == 10)) return {};
  for (std::size_t i = 0; i < date.size(); ++i) {
    if (i == 4 || i == 7) {
      if (date[i] != '-') return {};
    } else if (!std::isdigit(static_cast<unsigned char>(date[i]))) {
      return {};
    }
  }
  digits = digits_only(date);
  if (t == std::string_view::npos) return digits;
  std::string_view time = fhir.substr(t + 1);
  std::size_t zone = time.find_first_of("+-Z");
  std::string_view clock = time.substr(0, zone);
  if (zone != std::string_view::npos) {
    std::string_view z = time.substr(zone);
    if (z == "Z") {
      offset = "+0000";
    } else if (z.size() == 6 && z[3] == ':') {
      offset = std::string(z.substr(0, 3)) + std::string(z.substr(4, 2));
    } else {
      return {};
    }
  }
  std::size_t dot = clock.find('.');
  std::string fraction = dot == std::string_view::npos ? "" : std::string(clock.substr(dot));
  std::string hms = digits_only(clock.substr(0, dot));
  if (hms.size() != 6 || date.size() != 10) return {};
  return digits + hms + fraction + offset;
}

Result<fhir::Node> adt_to_patient(const Message& adt, const PartnerMapping& mapping) {
  MessageType type = adt.message_type();
  if (type.code != "ADT" || !is_patient_trigger(type.trigger))
    return invalid("MSH-9 must be ADT^A01, A04, A05, A08, A28 or A31 for a Patient", "MSH-9");
  auto pid = adt.segment("PID");
  if (!pid) return invalid("the message has no PID segment", "PID");

  Node patient = Node::object();
  patient.set("resourceType", Node::string("Patient"));
  set_if(patient, "identifier", identifiers(pid->field(3), mapping));

  Node names = Node::array();
  Part pid5 = pid->field(5);
  for (std::size_t r = 1; r <= pid5.count(); ++r) push_names(names, pid5.repetition(r));
  set_if(patient, "name", std::move(names));

  Node telecom = Node::array();
  for (auto [field, use] : {std::pair<std::size_t, std::string_view>{13, "home"}, {14, "work"}}) {
    Part f = pid->field(field);
    for (std::size_t r = 1; r <= f.count(); ++r) {
      Node cp = contact_point(f.repetition(r), use);
      if (!cp.members().empty()) telecom.push(std::move(cp));
    }
  }
  set_if(patient, "telecom", std::move(telecom));

  set_if(patient, "gender", std::string(to_fhir(kGender, pid->field(8).value())));
  set_if(patient, "birthDate", v2_to_fhir_date(pid->field(7).value()));

  std::string death = v2_to_fhir_date_time(pid->field(29).value());
  std::string indicator = pid->field(30).value();
  if (!death.empty())
    patient.set("deceasedDateTime", Node::string(death));
  else if (indicator == "Y" || indicator == "N")
    patient.set("deceasedBoolean", Node::boolean(indicator == "Y"));

  Node addresses = Node::array();
  Part pid11 = pid->field(11);
  for (std::size_t r = 1; r <= pid11.count(); ++r) {
    Node a = address(pid11.repetition(r));
    if (!a.members().empty()) addresses.push(std::move(a));
  }
  set_if(patient, "address", std::move(addresses));
  set_if(patient, "maritalStatus", marital_status(pid->field(16).value()));

  if (auto pd1 = adt.segment("PD1")) {
    Node gps = Node::array();
    Part org = pd1->field(3);
    for (std::size_t r = 1; r <= org.count(); ++r) {
      Part xon = org.repetition(r);
      std::string id = xon.component(10).value();
      if (id.empty()) id = xon.component(3).value();
      Node ref = reference("Organization", id, xon.component(1).value());
      if (!ref.members().empty()) gps.push(std::move(ref));
    }
    Part doc = pd1->field(4);
    for (std::size_t r = 1; r <= doc.count(); ++r) {
      Part xcn = doc.repetition(r);
      Node ref = reference("Practitioner", xcn.component(1).value(), gp_reference_display(xcn));
      if (!ref.members().empty()) gps.push(std::move(ref));
    }
    set_if(patient, "generalPractitioner", std::move(gps));
  }
  return patient;
}

Result<MergeRequest> adt_merge(const Message& a40, const PartnerMapping& mapping) {
  MessageType type = a40.message_type();
  if (type.code != "ADT" || type.trigger != "A40")
    return invalid("MSH-9 must be ADT^A40 for a merge", "MSH-9");
  auto pid = a40.segment("PID");
  if (!pid) return invalid("the message has no PID segment", "PID");
  auto mrg = a40.segment("MRG");
  if (!mrg) return invalid("the message has no MRG segment", "MRG");
  MergeRequest out;
  out.surviving_identifiers = identifiers(pid->field(3), mapping).items();
  out.replaced_identifiers = identifiers(mrg->field(1), mapping).items();
  if (out.surviving_identifiers.empty()) return invalid("PID-3 has no identifier", "PID-3");
  if (out.replaced_identifiers.empty()) return invalid("MRG-1 has no identifier", "MRG-1");
  return out;
}

namespace {

class Writer {
 public:
  explicit Writer(Message message) : message_(std::move(message)) {}

  void set(const std::string& path, std::string_view value) {
    if (value.empty() || !status_.ok()) return;
    status_ = message_.set(path, value);
  }
  const Status& status() const { return status_; }
  const Message& message() const { return message_; }

 private:
  Message message_;
  Status status_ = Ok{};
};

std::string rep(std::string_view field, std::size_t r, std::string_view rest) {
  return std::string(field) + "[" + std::to_string(r) + "]" + std::string(rest);
}

std::string first_coding_code(const Node* codeable) {
  if (!codeable) return {};
  const Node* codings = codeable->find("coding");
  if (!codings || !codings->is_array() || codings->items().empty()) return {};
  return std::string(codings->items().front().string_at("code"));
}

// The first coding's code, else the text (where adt_to_patient keeps a v2 code outside its table).
std::string code_or_text(const Node* codeable) {
  std::string code = first_coding_code(codeable);
  if (code.empty() && codeable) code = std::string(codeable->string_at("text"));
  return code;
}

std::string string_item(const Node* array, std::size_t i) {
  if (!array || !array->is_array() || i >= array->items().size()) return {};
  return array->items()[i].text();
}

void write_identifier(Writer& w, std::string_view field, std::size_t r, const Node& id,
                      const PartnerMapping& mapping) {
  std::string value(id.string_at("value"));
  std::string type = code_or_text(id.find("type"));
  w.set(rep(field, r, ".1"), value);
  if (id.string_at("system") == kNhsNumberSystem) {
    w.set(rep(field, r, ".4"), mapping.nhs_number_authority);
    w.set(rep(field, r, ".5"), type.empty() ? "NH" : type);
  } else {
    w.set(rep(field, r, ".5"), type);
  }
}

}  // namespace

Result<std::string> patient_to_adt(const fhir::Node& patient, std::string_view trigger,
                                   const AdtHeader& header, const PartnerMapping& mapping) {
  if (trigger != "A31" && trigger != "A28") return invalid("trigger must be A28 or A31");
  if (!patient.is_object() || patient.string_at("resourceType") != "Patient")
    return invalid("resource is not a Patient", "resourceType");
  auto base = Message::parse("MSH|^~\\&|");
  if (!base) return std::move(base).error();
  Writer w(std::move(base).value());
  w.set("MSH-3", header.sending_application);
  w.set("MSH-4", header.sending_facility);
  w.set("MSH-5", header.receiving_application);
  w.set("MSH-6", header.receiving_facility);
  w.set("MSH-7", header.timestamp);
  w.set("MSH-9.1", "ADT");
  w.set("MSH-9.2", trigger);
  w.set("MSH-9.3", "ADT_A05");
  w.set("MSH-10", header.control_id);
  w.set("MSH-11", header.processing_id);
  w.set("MSH-12", header.version);
  w.set("MSH-18", "UNICODE UTF-8");
  w.set("EVN-1", trigger);
  w.set("EVN-2", header.timestamp);
  w.set("PID-1", "1");

  if (const Node* ids = patient.find("identifier"); ids && ids->is_array()) {
    std::size_t r = 0;
    for (const Node& id : ids->items())
      if (!id.string_at("value").empty()) write_identifier(w, "PID-3", ++r, id, mapping);
  }
  if (const Node* names = patient.find("name"); names && names->is_array()) {
    std::size_t r = 0;
    for (const Node& name : names->items()) {
      ++r;
      const Node* given = name.find("given");
      const Node* suffix = name.find("suffix");
      w.set(rep("PID-5", r, ".1"), name.string_at("family"));
      w.set(rep("PID-5", r, ".2"), string_item(given, 0));
      w.set(rep("PID-5", r, ".3"), string_item(given, 1));
      w.set(rep("PID-5", r, ".4"), string_item(suffix, 0));
      w.set(rep("PID-5", r, ".5"), string_item(name.find("prefix"), 0));
      w.set(rep("PID-5", r, ".6"), string_item(suffix, 1));
      w.set(rep("PID-5", r, ".7"), to_v2(kNameUse, name.string_at("use")));
    }
  }
  w.set("PID-7", fhir_to_v2_date_time(patient.string_at("birthDate")));
  w.set("PID-8", to_v2(kGender, patient.string_at("gender")));
  if (const Node* addresses = patient.find("address"); addresses && addresses->is_array()) {
    std::size_t r = 0;
    for (const Node& a : addresses->items()) {
      ++r;
      const Node* lines = a.find("line");
      w.set(rep("PID-11", r, ".1"), string_item(lines, 0));
      w.set(rep("PID-11", r, ".2"), string_item(lines, 1));
      w.set(rep("PID-11", r, ".3"), a.string_at("city"));
      w.set(rep("PID-11", r, ".4"), a.string_at("state"));
      w.set(rep("PID-11", r, ".5"), a.string_at("postalCode"));
      w.set(rep("PID-11", r, ".6"), a.string_at("country"));
      w.set(rep("PID-11", r, ".9"), a.string_at("district"));
      std::string_view kind = to_v2(kAddressUse, a.string_at("use"));
      if (kind.empty()) kind = to_v2(kAddressType, a.string_at("type"));
      w.set(rep("PID-11", r, ".7"), kind);
    }
  }
  if (const Node* telecom = patient.find("telecom"); telecom && telecom->is_array()) {
    std::size_t home = 0;
    std::size_t work = 0;
    for (const Node& cp : telecom->items()) {
      std::string_view value = cp.string_at("value");
      if (value.empty()) continue;
      std::string_view use = cp.string_at("use");
      std::string_view system = cp.string_at("system");
      std::string field = use == "work" ? "PID-14" : "PID-13";
      std::size_t r = use == "work" ? ++work : ++home;
      std::string_view use_code = use == "work" ? "WPN" : "PRN";
      if (system == "email") {
        w.set(rep(field, r, ".2"), "NET");
        w.set(rep(field, r, ".3"), "Internet");
        w.set(rep(field, r, ".4"), value);
        continue;
      }
      std::string_view equipment = "PH";
      if (system == "fax") equipment = "FX";
      if (system == "pager") equipment = "BP";
      if (system == "other") equipment = "MD";
      if (use == "mobile" && (system.empty() || system == "phone")) equipment = "CP";
      w.set(rep(field, r, ".1"), value);
      w.set(rep(field, r, ".2"), use_code);
      w.set(rep(field, r, ".3"), equipment);
    }
  }
  if (const Node* marital = patient.find("maritalStatus")) {
    std::string code = code_or_text(marital);
    std::string_view v2 = code;
    for (const auto& m : kMarital)
      if (m.code == code) {
        v2 = m.v2;
        break;
      }
    w.set("PID-16", v2);
  }
  if (const Node* when = patient.find("deceasedDateTime")) {
    w.set("PID-29", fhir_to_v2_date_time(when->text()));
    w.set("PID-30", "Y");
  } else if (const Node* dead = patient.find("deceasedBoolean")) {
    w.set("PID-30", dead->as_bool() ? "Y" : "N");
  }
  if (const Node* gps = patient.find("generalPractitioner"); gps && gps->is_array()) {
    std::size_t orgs = 0;
    std::size_t docs = 0;
    for (const Node& ref : gps->items()) {
      std::string_view target = ref.string_at("reference");
      std::string id;
      if (const Node* identifier = ref.find("identifier")) id = std::string(identifier->string_at("value"));
      bool org = target.starts_with("Organization/");
      bool doc = target.starts_with("Practitioner/");
      if (org || doc) id = std::string(target.substr(target.find('/') + 1));
      if (!org && !doc) continue;
      if (org) {
        ++orgs;
        w.set(rep("PD1-3", orgs, ".1"), ref.string_at("display"));
        w.set(rep("PD1-3", orgs, ".3"), id);
      } else {
        ++docs;
        w.set(rep("PD1-4", docs, ".1"), id);
        w.set(rep("PD1-4", docs, ".2"), ref.string_at("display"));
      }
    }
  }
  if (!w.status().ok()) return w.status().error();
  return w.message().serialize();
}

}  // namespace fhirgate::mappers
