// FHIR XML: xml_to_json on the input, then json_to_xml and back, which must give the same tree. An input
// that starts with '{' is FHIR JSON instead: its XML must read back, and that tree must then be stable.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fhir/json.hpp"
#include "fhir/xml.hpp"
#include "fuzz/common.hpp"

using namespace fhirgate;

namespace {

// XML written from `resource` must read back as `resource`.
void round_trip(const fhir::Node& resource) {
  for (const bool pretty : {false, true}) {
    Result<std::string> xml = fhir::json_to_xml(fuzz::model(), resource, pretty);
    if (!xml) return;
    Result<fhir::Node> back = fhir::xml_to_json(fuzz::model(), *xml);
    FUZZ_CHECK(back.ok());
    FUZZ_CHECK(*back == resource);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)fuzz::model();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  fhir::XmlLimits limits;
  limits.max_depth = 64;
  if (text.starts_with('{')) {
    Result<fhir::Node> json = fhir::parse_json(text, fhir::JsonLimits{.max_depth = 64});
    if (!json || !fhir::check_resource_json(*json)) return 0;
    // XML puts members in model order: the tree read back from it is the one that must be stable.
    Result<std::string> xml = fhir::json_to_xml(fuzz::model(), *json);
    if (!xml) return 0;
    Result<fhir::Node> back = fhir::xml_to_json(fuzz::model(), *xml);
    FUZZ_CHECK(back.ok());
    round_trip(*back);
    return 0;
  }
  Result<fhir::Node> json = fhir::xml_to_json(fuzz::model(), text, limits);
  if (json) round_trip(*json);
  return 0;
}
