#pragma once
// Who is asking: the holder of a bearer token (security/tokens.hpp), a partner or a role of the
// configuration. Verified tokens are cached for a minute to spare the hash and the lookup. Thread-safe.
#include <chrono>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "fhir/result.hpp"
#include "gateway/config/config.hpp"
#include "gateway/store/store.hpp"

namespace fhirgate::gateway {

class Authenticator {
 public:
  // `config` and `store` must outlive it.
  Authenticator(const Config& config, store::Store& store) : config_(config), store_(store) {}

  // The holder of the bearer token in an Authorization header. Errors: unauthorized (no token, malformed,
  // unknown, or a holder no longer configured), busy (store unavailable).
  Result<const PartnerConfig*> authenticate(std::string_view authorization);

 private:
  const Config& config_;
  store::Store& store_;
  std::mutex mutex_;
  struct Cached {
    store::Credential credential;
    std::chrono::steady_clock::time_point until;
  };
  std::unordered_map<std::string, Cached> tokens_;
};

}  // namespace fhirgate::gateway
