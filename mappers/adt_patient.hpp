#pragma once
// HL7 v2 ADT patient administration <-> FHIR R4 Patient.
//
// The element mappings follow the HL7 V2-to-FHIR IG (datatypes CX, XPN, XAD, XTN; concept maps 0001
// AdministrativeSex, 0002 MaritalStatus, 0190 AddressType, 0200 NameType, 0201/0202 telecommunication
// use and equipment type), narrowed to what a UK partner feed carries:
//   PID-3  -> identifier (NHS number by assigning authority or type NH, else the partner's local system)
//   PID-5  -> name, PID-7 -> birthDate, PID-8 -> gender, PID-11 -> address, PID-13/14 -> telecom,
//   PID-16 -> maritalStatus, PID-29/30 -> deceased[x],
//   PD1-3  -> generalPractitioner (Organization), PD1-4 -> generalPractitioner (Practitioner).
// Within each element the IG's datatype maps apply: CX.7/8, XPN.10/12/13, XAD.12-14 and XTN.13/14 give
// period; XPN.14 is a suffix and XPN.15 a nickname; XAD.19 a line and XAD.9 the district; XTN.12 (the
// unformatted number) is preferred to XTN.5-8; XTN.18 gives rank. A ContactPoint always has a system
// (R4 cpt-2), phone when XTN.3 is empty. A CX.5 or PID-16 code outside its v2 table becomes the text of
// the CodeableConcept, never a coding the code system does not define.
// managingOrganization is not populated: the registered GP practice is not the record's custodian.
// A reference is written only when the v2 id is a valid FHIR id; otherwise the id goes in
// Reference.identifier. Date/times with a time but no offset keep only their date (FHIR dateTime
// requires an offset once a time is given).
//
// Everything here is pure and thread-compatible. Errors are invalid_input and name the v2 field or the
// FHIR element at fault, never the content.
#include <string>
#include <string_view>
#include <vector>

#include "fhir/json.hpp"
#include "fhir/result.hpp"
#include "mappers/hl7v2.hpp"

namespace fhirgate::mappers {

inline constexpr std::string_view kNhsNumberSystem = "https://fhir.nhs.uk/Id/nhs-number";

struct PartnerMapping {
  // PID-3.4 (assigning authority namespace id) that marks the NHS number; type code NH in PID-3.5 also does.
  std::string nhs_number_authority = "NHS";
  // System for the partner's other PID-3 identifiers; omitted from the Identifier when empty.
  std::string local_identifier_system;
};

struct AdtHeader {
  std::string sending_application;
  std::string sending_facility;
  std::string receiving_application;
  std::string receiving_facility;
  std::string control_id;
  std::string timestamp;  // MSH-7 and EVN-2, v2 DTM, e.g. 20240514092133
  std::string processing_id = "P";
  std::string version = "2.5.1";
};

// The identifiers of an A40 merge, as FHIR Identifier objects.
struct MergeRequest {
  std::vector<fhir::Node> surviving_identifiers;  // PID-3
  std::vector<fhir::Node> replaced_identifiers;   // MRG-1
};

// The ADT triggers that carry a Patient's demographics: A01 A04 A05 A08 A28 A31.
bool is_patient_trigger(std::string_view trigger);

// ADT A01 A04 A05 A08 A28 A31 -> Patient (JSON tree, members in R4 element order, no empty elements).
// Errors: invalid_input for another message type (naming MSH-9) or a missing PID.
Result<fhir::Node> adt_to_patient(const Message& adt, const PartnerMapping& mapping);

// Patient -> ADT^<trigger> (A28 or A31) with MSH, EVN, PID and, when there is a generalPractitioner, PD1;
// UTF-8 (MSH-18 UNICODE UTF-8), segments ended by CR. Errors: invalid_input for another trigger or a
// resource that is not a Patient.
Result<std::string> patient_to_adt(const fhir::Node& patient, std::string_view trigger,
                                   const AdtHeader& header, const PartnerMapping& mapping);

// ADT A40 -> the surviving (PID-3) and replaced (MRG-1) identifiers. Errors: invalid_input for another
// message type, a missing PID or MRG, or no identifier on either side.
Result<MergeRequest> adt_merge(const Message& a40, const PartnerMapping& mapping);

// v2 DTM -> FHIR date (YYYY, YYYY-MM, YYYY-MM-DD) / dateTime; empty when malformed.
std::string v2_to_fhir_date(std::string_view dtm);
std::string v2_to_fhir_date_time(std::string_view dtm);
// FHIR date or dateTime -> v2 DTM; empty when malformed.
std::string fhir_to_v2_date_time(std::string_view fhir);

}  // namespace fhirgate::mappers
