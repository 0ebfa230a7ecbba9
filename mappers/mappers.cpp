// The mappers layer (HL7 v2, CSV and XML partner feeds) arrives with the HL7 v2 and feeds issues.
namespace fhirgate::mappers {}
