#include "gateway/security/agreement.hpp"

#include <algorithm>

namespace fhirgate::gateway {

bool may(const PartnerConfig& who, std::string_view type, std::string_view interaction) {
  for (const std::string_view key : {type, std::string_view("*")}) {
    auto it = who.access.find(std::string(key));
    if (it != who.access.end() && it->second.count(std::string(interaction))) return true;
  }
  return false;
}

Result<std::string> purpose_of(const PartnerConfig& who, std::string_view header) {
  if (header.empty()) return who.purposes.empty() ? std::string("TREAT") : who.purposes.front();
  const std::string purpose(header);
  if (std::find(who.purposes.begin(), who.purposes.end(), purpose) == who.purposes.end())
    return Error::make(ErrorCode::forbidden, "The agreement does not allow purpose of use '" + purpose + "'");
  return purpose;
}

bool may_break_glass(const PartnerConfig& who) {
  return std::find(who.purposes.begin(), who.purposes.end(), "ETREAT") != who.purposes.end();
}

bool is_consent_registrar(const PartnerConfig& who) {
  return who.role == "privacy-officer" || (who.role == "partner" && who.consent_registrar);
}

std::string agent_reference(const PartnerConfig& who) {
  return who.role == "partner" ? organization_of(who) : who.id;
}

}  // namespace fhirgate::gateway
