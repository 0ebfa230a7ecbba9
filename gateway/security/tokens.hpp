#pragma once
// Bearer tokens: `fg_<id>_<secret>`. The id (16 hex digits) is public and finds the stored credential;
// only a salted SHA-256 of the secret (32 random bytes, base64url) is stored, and it is compared in
// constant time. Tokens are random, so a fast hash is enough: there is nothing to guess from.
#include <optional>
#include <string>
#include <string_view>

#include "gateway/store/store.hpp"

namespace fhirgate::gateway {

struct NewToken {
  std::string token;             // shown once to the holder
  store::Credential credential;  // what is stored
};
NewToken make_token(const std::string& holder);

struct TokenParts {
  std::string id;
  std::string secret;
};
// nullopt when the text is not shaped like a token.
std::optional<TokenParts> split_token(std::string_view token);
// The token's secret matches the stored credential (constant time).
bool token_matches(const store::Credential& credential, std::string_view secret);

// The token in an Authorization header ("Bearer <token>", scheme case-insensitive); empty when none.
std::string_view bearer_token(std::string_view authorization);

}  // namespace fhirgate::gateway
