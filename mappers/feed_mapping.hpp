#pragma once
// Declarative feed mappings: a partner's CSV export or XML document -> FHIR Patient or Consent, without
// a code change per partner. A mapping is a JSON file named in the partner's configuration:
//
//   { "resourceType": "Patient", "format": "csv",            (or "xml")
//     "csv": { "delimiter": ",", "encoding": "windows-1252", "columns": ["NHS Number", "Surname", ...] },
//     "xml": { "namespaces": { "cda": "urn:hl7-org:v3" }, "record": "/cda:ClinicalDocument/..." },
//     "skipWhen": [ { "column": "Status", "equals": "Deceased" }, { "column": "NHS Number", "empty": true }
//     ], "fields": [
//       { "path": "identifier[0].system", "constant": "https://fhir.nhs.uk/Id/nhs-number" },
//       { "path": "identifier[0].value", "column": "NHS Number", "transforms": ["nhs-number"], "required":
//       true }, { "path": "birthDate", "column": "DOB", "transforms": [ { "date": ["dd/mm/yyyy", "yyyymmdd"]
//       } ] }, { "path": "name[0].given[*]", "xpath": "cda:patient/cda:name/cda:given" } ] }
//
// Sources: a CSV column (declared in csv.columns, the header the file must carry, in any order), an
// XPath relative to each record node (the string value of the first node it selects, or of each with
// `[*]`; a string expression such as concat() always gives a value), or a constant.
// Paths: FHIR element names from the resource down to a primitive, checked against the R4 model when
// the mapping loads; `[n]` picks an array item (absent = 0), `[*]` (XPath sources, last array only)
// makes one item per selected node. Transforms, in order: trim, upper, lower, title (Smith-Jones,
// O'Brien), nhs-number (spaces and hyphens removed, ten digits, Modulus 11 check), {"date": formats}
// (dd, d, mm, m, yyyy, yy; to FHIR yyyy-mm-dd, or yyyy-mm / yyyy for formats without a day / month),
// {"map": {...}, "otherwise": v} (exact match; "otherwise": "" drops unlisted values),
// {"default": v} (for an empty value), {"patientByIdentifier": system} (a reference to the Patient
// holding that identifier, resolved when the row is written).
//
// Rows: an empty value sets nothing; a required field left empty rejects the row. An array item that
// the mapping fills from data (identifier[0] with a column) is dropped when no data reached it, so a
// constant system alone never makes an identifier. A value a transform cannot handle rejects the row
// with the column and the reason; skipWhen conditions skip it (reported, not lost).
//
// Loading reports the first mistake as "file:line: reason" (unknown element, column or setting at any
// level, a path that does not end at a primitive, an XPath that does not compile or uses an undeclared
// prefix, an unknown transform or date token).
// Pure apart from libxml2; a loaded mapping is immutable and shared by threads.
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/json.hpp"
#include "fhir/model.hpp"
#include "fhir/result.hpp"
#include "mappers/csv.hpp"

namespace fhirgate::mappers {

// One step of a mapping path: element name and array index (kAll = `[*]`, kNone = not an array).
struct PathStep {
  static constexpr int kNone = -1;
  static constexpr int kAll = -2;
  std::string name;
  int index = kNone;
};

struct FeedTransform {
  enum class Kind { trim, upper, lower, title, nhs_number, date, map, default_value, patient_by_identifier };
  Kind kind = Kind::trim;
  std::vector<std::string> date_formats;
  std::map<std::string, std::string, std::less<>> table;
  std::optional<std::string> otherwise;
  std::string text;  // default value, or the identifier system to look the Patient up by
};

struct FeedSource {
  enum class Kind { column, xpath, constant };
  Kind kind = Kind::constant;
  std::string text;                // column name or XPath text
  std::size_t column = 0;          // index in csv.columns
  fhir::Node constant;             // string, boolean or number
  std::shared_ptr<void> compiled;  // xmlXPathCompExpr for xpath sources
};

struct FeedField {
  std::string path;  // as written, "name[0].given[0]"
  std::vector<PathStep> steps;
  fhir::JsonPrimitive json = fhir::JsonPrimitive::string;
  std::string primitive_type;  // "date", "code", "boolean", ...
  FeedSource source;
  std::vector<FeedTransform> transforms;
  bool required = false;
};

struct FeedCondition {
  FeedSource source;
  bool when_empty = false;  // otherwise: equals `value`
  std::string value;
};

struct FeedMapping {
  std::string file;           // where it was loaded from, for messages
  std::string resource_type;  // Patient or Consent
  enum class Format { csv, xml } format = Format::csv;
  CsvOptions csv;
  std::vector<std::string> columns;               // CSV header the file must carry
  std::map<std::string, std::string> namespaces;  // XML prefix -> namespace URI
  std::string record_xpath;                       // XML: each node selected is one record
  std::shared_ptr<void> record_compiled;
  std::vector<FeedCondition> skip_when;
  std::vector<FeedField> fields;
  std::vector<std::string> data_items;  // array items ("identifier[0]") that data fields fill
};

// Loads a mapping. Errors: invalid_input with "file:line: reason".
Result<std::shared_ptr<const FeedMapping>> load_feed_mapping(const fhir::Model& model,
                                                             std::string_view json_text,
                                                             const std::string& file);
Result<std::shared_ptr<const FeedMapping>> load_feed_mapping_file(const fhir::Model& model,
                                                                  const std::string& path);

// A reference to resolve when the row is written: the Patient holding identifier system|value.
struct FeedLookup {
  std::vector<PathStep> steps;
  std::string path;
  std::string system;
  std::string value;
};

struct MappedRecord {
  enum class Kind { mapped, skipped, rejected };
  Kind kind = Kind::mapped;
  fhir::Node resource;
  std::vector<FeedLookup> lookups;  // their paths hold a placeholder reference until resolved
  std::string reason;               // skipped/rejected: why, naming the column or XPath
};

// A record's values for a source: CSV fields by column, or the XPath's results on an XML record.
class FeedRecord {
 public:
  virtual ~FeedRecord() = default;
  virtual std::vector<std::string> values(const FeedSource& source) const = 0;
};

// CSV: the file's header mapped onto the mapping's columns (any order, extra columns ignored).
class CsvHeader {
 public:
  // Errors: invalid_input naming the declared columns the header lacks.
  static Result<CsvHeader> bind(const FeedMapping& mapping, const std::vector<std::string>& header);
  std::size_t width() const { return width_; }
  std::size_t position(std::size_t column) const { return positions_[column]; }

 private:
  std::vector<std::size_t> positions_;
  std::size_t width_ = 0;
};

class CsvFeedRecord : public FeedRecord {
 public:
  CsvFeedRecord(const CsvHeader& header, const std::vector<std::string>& fields)
      : header_(header), fields_(fields) {}
  std::vector<std::string> values(const FeedSource& source) const override;

 private:
  const CsvHeader& header_;
  const std::vector<std::string>& fields_;
};

// Maps one record. Never fails: problems are a rejected record with its reason.
MappedRecord map_record(const FeedMapping& mapping, const FeedRecord& record);

// An XML feed document, parsed hardened (no DTD, no network, bounded size); its records are the nodes
// the mapping's record XPath selects. Not thread-safe; one per document.
class XmlFeedDocument {
 public:
  // Errors: invalid_input with line/column for malformed XML, a DOCTYPE or a document over max_bytes.
  static Result<std::unique_ptr<XmlFeedDocument>> parse(const FeedMapping& mapping, std::string_view xml,
                                                        std::size_t max_bytes = 64 * 1024 * 1024);
  ~XmlFeedDocument();
  std::size_t size() const;
  // The record's line in the document.
  long line(std::size_t i) const;
  MappedRecord map(std::size_t i) const;  // i < size()

 private:
  XmlFeedDocument() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Sets a primitive at `steps` (creating objects and arrays on the way). For lookups and tests.
void set_at(fhir::Node& root, const std::vector<PathStep>& steps, fhir::Node value);

// Ten digits whose last is the Modulus 11 check digit of the first nine.
bool valid_nhs_number(std::string_view digits);

}  // namespace fhirgate::mappers
