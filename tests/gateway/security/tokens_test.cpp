#include "gateway/security/tokens.hpp"

#include <doctest/doctest.h>

namespace fhirgate::gateway {
namespace {

TEST_CASE("tokens: shape, salted hash, constant-time match, Authorization parsing") {
  const NewToken t = make_token("acute-trust");
  CHECK(t.token.rfind("fg_", 0) == 0);
  CHECK(t.token.size() == 63);
  CHECK(t.credential.holder == "acute-trust");
  CHECK(t.credential.salt.size() == 16);
  CHECK(t.credential.hash.size() == 32);
  const auto parts = split_token(t.token);
  REQUIRE(parts);
  CHECK(parts->id == t.credential.token_id);
  CHECK(t.token.find(parts->secret) != std::string::npos);
  CHECK(t.credential.hash.find(parts->secret) == std::string::npos);  // the secret itself is not stored
  CHECK(token_matches(t.credential, parts->secret));
  std::string wrong = parts->secret;
  wrong[0] = wrong[0] == 'A' ? 'B' : 'A';
  CHECK_FALSE(token_matches(t.credential, wrong));
  // Same secret, another salt: another hash.
  CHECK(make_token("acute-trust").credential.hash != t.credential.hash);

  CHECK_FALSE(split_token("fg_short"));
  CHECK_FALSE(split_token("xx" + t.token.substr(2)));
  CHECK_FALSE(split_token(t.token + "x"));
  CHECK(bearer_token("Bearer " + t.token) == t.token);
  CHECK(bearer_token("bearer   " + t.token + " ") == t.token);
  CHECK(bearer_token("Basic abc").empty());
  CHECK(bearer_token("").empty());
}

}  // namespace
}  // namespace fhirgate::gateway
