#pragma once
// The rules on a resource's narrative (Narrative.div) in FHIR R4: https://hl7.org/fhir/R4/narrative.html
// and the invariants txt-1 (only basic HTML formatting) and txt-2 (some non-whitespace content).
#include <string>
#include <string_view>
#include <vector>

namespace fhirgate::fhir {

// Why `div` (the value of a Narrative.div, as in JSON) is not FHIR narrative: one sentence per distinct
// problem, at most a handful, naming markup (elements, attributes, namespaces) but never quoting text or
// attribute values, which may be patient data. Empty when it is valid.
//
// The div must be well-formed XML as the hardened parser of fhir/xml.hpp reads it (no DTD, so an HTML
// entity such as &nbsp; is undeclared and an error; position given as the line and column in the div);
// its root a <div> in the XHTML namespace; every element an XHTML element that R4 allows in narrative,
// with only the attributes HTML 4 gives it (see the table in narrative.cpp); no event attribute (on*),
// no attribute in a namespace but xml:lang, no javascript: or vbscript: URL; and it must hold some
// non-whitespace text or an <img>. Pure and thread-safe.
std::vector<std::string> narrative_problems(std::string_view div);

// One part directly inside the root <div> of a narrative: an element, or a run of non-blank text.
struct NarrativePart {
  bool element = false;
  std::string excerpt;    // its text, blanks collapsed, at most 60 characters
  std::string css_class;  // the element's class attribute
  std::string lang;       // the element's lang (or xml:lang) attribute
};

// The parts directly inside the root <div> of `div`, in order, for the narrative controls a profile may
// set (narrative-source-control, narrative-language-control). Reads markup that narrative_problems()
// accepts; on anything else it returns what it read up to there. Pure and thread-safe.
std::vector<NarrativePart> narrative_parts(std::string_view div);

}  // namespace fhirgate::fhir
