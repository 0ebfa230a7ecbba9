#pragma once
// The information sharing agreement (the configuration's partners and roles): what each holder may do, for
// which purposes, and who may record patients' decisions. Pure functions of the configuration.
#include <string>
#include <string_view>

#include "fhir/result.hpp"
#include "gateway/config/config.hpp"

namespace fhirgate::gateway {

inline constexpr std::string_view kOdsSystem = "https://fhir.nhs.uk/Id/ods-organization-code";

// The agreement lets `who` perform `interaction` (read, vread, history-instance, history-type, search-type,
// create, update, delete) on `type` (or on "*").
bool may(const PartnerConfig& who, std::string_view type, std::string_view interaction);

// The purpose of use of a request: the header's value, or the holder's default (its first purpose, else
// TREAT). Errors: forbidden when the holder may not claim it.
Result<std::string> purpose_of(const PartnerConfig& who, std::string_view header);

// May `who` claim break-glass (ETREAT)?
bool may_break_glass(const PartnerConfig& who);

// Consent registrars and the privacy officer may record patients' sharing decisions (patient-privacy
// Consents); nobody else may, whatever its agreement's interactions (docs/security.md).
bool is_consent_registrar(const PartnerConfig& who);

// Who holds a credential as an AuditEvent names it: a partner's Organization reference, a role's id.
std::string agent_reference(const PartnerConfig& who);
inline std::string organization_of(const PartnerConfig& who) {
  return "Organization/" + who.id;
}

}  // namespace fhirgate::gateway
