#include "gateway/security/tokens.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <stdexcept>

#include "fhir/base64.hpp"

namespace fhirgate::gateway {
namespace {

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1)
    throw std::runtime_error("cannot generate random bytes");
  return out;
}

std::string hex(std::string_view bytes) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::string hash_secret(std::string_view salt, std::string_view secret) {
  std::string input(salt);
  input += secret;
  std::string digest(SHA256_DIGEST_LENGTH, '\0');
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(),
         reinterpret_cast<unsigned char*>(digest.data()));
  return digest;
}

bool is_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace

NewToken make_token(const std::string& holder) {
  NewToken t;
  const std::string id = hex(random_bytes(8));
  const std::string secret = fhir::base64url_encode(random_bytes(32));
  t.token = "fg_" + id + "_" + secret;
  t.credential.token_id = id;
  t.credential.holder = holder;
  t.credential.salt = random_bytes(16);
  t.credential.hash = hash_secret(t.credential.salt, secret);
  return t;
}

std::optional<TokenParts> split_token(std::string_view token) {
  if (token.size() != 3 + 16 + 1 + 43 || token.substr(0, 3) != "fg_" || token[19] != '_') return std::nullopt;
  TokenParts parts{std::string(token.substr(3, 16)), std::string(token.substr(20))};
  if (!is_hex(parts.id)) return std::nullopt;
  return parts;
}

bool token_matches(const store::Credential& credential, std::string_view secret) {
  const std::string computed = hash_secret(credential.salt, secret);
  return computed.size() == credential.hash.size() &&
         CRYPTO_memcmp(computed.data(), credential.hash.data(), computed.size()) == 0;
}

std::string_view bearer_token(std::string_view authorization) {
  if (authorization.size() < 7) return {};
  std::string scheme(authorization.substr(0, 7));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "bearer ") return {};
  std::string_view token = authorization.substr(7);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  return token;
}

}  // namespace fhirgate::gateway
