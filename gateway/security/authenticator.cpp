#include "gateway/security/authenticator.hpp"

#include <optional>

#include "gateway/security/tokens.hpp"

namespace fhirgate::gateway {

Result<const PartnerConfig*> Authenticator::authenticate(std::string_view authorization) {
  const std::string_view token = bearer_token(authorization);
  if (token.empty())
    return Error::make(ErrorCode::unauthorized, "This request needs Authorization: Bearer <token>");
  const auto parts = split_token(token);
  if (!parts) return Error::make(ErrorCode::unauthorized, "The bearer token is not valid");
  std::optional<store::Credential> credential;
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mutex_);
    if (auto it = tokens_.find(parts->id); it != tokens_.end() && it->second.until > now)
      credential = it->second.credential;
  }
  if (!credential) {
    auto stored = store_.credential(parts->id);
    if (!stored) return stored.error();
    if (!*stored) return Error::make(ErrorCode::unauthorized, "The bearer token is not valid");
    credential = **stored;
    std::lock_guard lock(mutex_);
    if (tokens_.size() > 10000) tokens_.clear();
    tokens_[parts->id] = Cached{*credential, now + std::chrono::minutes(1)};
  }
  if (!token_matches(*credential, parts->secret))
    return Error::make(ErrorCode::unauthorized, "The bearer token is not valid");
  const PartnerConfig* who = find_partner(config_, credential->holder);
  if (!who) return Error::make(ErrorCode::unauthorized, "The bearer token's holder is no longer configured");
  return who;
}

}  // namespace fhirgate::gateway
