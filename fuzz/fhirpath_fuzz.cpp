// FHIRPath: compile the input and, when it compiles, evaluate it (as a collection and as a boolean) on a
// Patient and an Observation with the R4 model.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fhir/fhirpath.hpp"
#include "fhir/json.hpp"
#include "fuzz/common.hpp"

using namespace fhirgate;

namespace {

constexpr std::string_view kPatient = R"({"resourceType":"Patient","id":"example",
  "meta":{"profile":["http://example.org/p"]},
  "text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},
  "contained":[{"resourceType":"Organization","id":"org1","name":"Acme"}],
  "extension":[{"url":"http://example.org/ext","valueString":"hello"},
    {"url":"http://example.org/age","valueAge":{"value":42,"unit":"a","system":"http://unitsofmeasure.org","code":"a"}}],
  "identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9434765919"}],
  "active":true,
  "name":[{"use":"official","family":"Chalmers","given":["Peter","James"]},{"use":"usual","given":["Jim"]},
    {"given":["Pete",null,"P"],"_given":[null,{"extension":[{"url":"http://example.org/absent","valueCode":"unknown"}]},{"id":"g3"}]}],
  "telecom":[{"system":"phone","value":"(03) 5555 6473","use":"work","rank":1}],
  "gender":"male","birthDate":"1974-12-25",
  "_birthDate":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-birthTime","valueDateTime":"1974-12-25T14:35:45-05:00"}]},
  "deceasedBoolean":false,"multipleBirthInteger":2,
  "managingOrganization":{"reference":"#org1"},"generalPractitioner":[{"reference":"Practitioner/123"}],
  "contact":[{"relationship":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0131","code":"N"}]}],
    "name":{"family":"du Marché"},"gender":"female","period":{"start":"2012"}}]})";

constexpr std::string_view kObservation = R"({"resourceType":"Observation","id":"o1","status":"final",
  "code":{"coding":[{"system":"http://loinc.org","code":"29463-7"}]},
  "subject":{"reference":"Patient/example"},
  "effectiveDateTime":"2016-03-28T09:30:10+01:00",
  "valueQuantity":{"value":185.50,"unit":"lbs","system":"http://unitsofmeasure.org","code":"[lb_av]"},
  "component":[{"code":{"text":"a"},"valueString":"x"},{"code":{"text":"b"},"_valueString":{"id":"v"}}]})";

const fhir::Node& resource(std::string_view json) {
  static const fhir::Node patient = *fhir::parse_json(kPatient);
  static const fhir::Node observation = *fhir::parse_json(kObservation);
  return json == kPatient ? patient : observation;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)fuzz::model();
  FUZZ_CHECK(fhir::parse_json(kPatient).ok() && fhir::parse_json(kObservation).ok());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view expression(reinterpret_cast<const char*>(data), size);
  auto compiled = fhir::fhirpath::compile(expression);
  if (!compiled) return 0;
  for (const std::string_view json : {kPatient, kObservation}) {
    const fhir::Node& focus = resource(json);
    const std::string_view type = focus.string_at("resourceType");
    const fhir::fhirpath::EvalContext context{fuzz::model(), &focus, type, &focus, type};
    (void)fhir::fhirpath::evaluate(**compiled, focus, type, context);
    (void)fhir::fhirpath::evaluate_boolean(**compiled, focus, type, context);
  }
  return 0;
}
