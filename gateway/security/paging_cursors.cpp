#include "gateway/security/paging_cursors.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <memory>
#include <stdexcept>

#include "fhir/base64.hpp"

namespace fhirgate::gateway {
namespace {

constexpr int kNonce = 12;
constexpr int kTag = 16;
// Bound to its use: a sealed text made for another purpose with the same key does not open here.
constexpr std::string_view kAssociated = "fhirgate paging cursor v1";

using CipherContext = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

CipherContext new_context() {
  return CipherContext(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
}

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

std::string PagingCursors::seal(std::string_view cursor) const {
  if (cursor.empty()) return {};
  std::string out(kNonce + cursor.size() + kTag, '\0');
  auto* nonce = reinterpret_cast<unsigned char*>(out.data());
  auto* body = nonce + kNonce;
  int len = 0;
  auto ctx = new_context();
  const bool ok =
      ctx && RAND_bytes(nonce, kNonce) == 1 &&
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), nonce) == 1 &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytes(kAssociated), static_cast<int>(kAssociated.size())) ==
          1 &&
      EVP_EncryptUpdate(ctx.get(), body, &len, bytes(cursor), static_cast<int>(cursor.size())) == 1 &&
      EVP_EncryptFinal_ex(ctx.get(), body + len, &len) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTag, body + cursor.size()) == 1;
  if (!ok) throw std::runtime_error("cannot seal a paging cursor (AES-256-GCM)");
  return fhir::base64url_encode(out);
}

std::optional<std::string> PagingCursors::open(std::string_view sealed) const {
  auto raw = fhir::base64url_decode(sealed);
  if (!raw || raw->size() <= static_cast<std::size_t>(kNonce + kTag)) return std::nullopt;
  const std::string_view all(*raw);
  const auto nonce = all.substr(0, kNonce);
  const auto body = all.substr(kNonce, all.size() - kNonce - kTag);
  std::string tag(all.substr(all.size() - kTag));
  std::string out(body.size(), '\0');
  int len = 0;
  auto ctx = new_context();
  const bool ok =
      ctx && EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), bytes(nonce)) == 1 &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes(kAssociated), static_cast<int>(kAssociated.size())) ==
          1 &&
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len, bytes(body),
                        static_cast<int>(body.size())) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag, tag.data()) == 1 &&
      EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + len, &len) == 1;
  if (!ok) return std::nullopt;
  return out;
}

}  // namespace fhirgate::gateway
