#pragma once
// Paging cursors as clients see them: sealed (AES-256-GCM, a random nonce per cursor), so that a `next`
// link says nothing of the store behind it. Unsealed, a cursor holds internal row numbers (a search's
// last rid, a history's last version row), and the gaps between the numbers a partner is shown count
// the records and versions written meanwhile that it may not see. Sealed, it is opaque, and one altered
// by a client is refused ("Invalid or expired paging cursor") rather than opened.
//
// The key is derived from the audit key (store::Store::derived_key), so gateways sharing a database and
// its key file page each other's cursors, and cursors outlive restarts.
#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace fhirgate::gateway {

class PagingCursors {
 public:
  explicit PagingCursors(const std::array<unsigned char, 32>& key) : key_(key) {}
  // The store's cursor text, sealed and base64url-encoded; empty stays empty (no page).
  std::string seal(std::string_view cursor) const;
  // The store's cursor text back; nullopt when `sealed` was not made by seal() with this key.
  std::optional<std::string> open(std::string_view sealed) const;

 private:
  std::array<unsigned char, 32> key_;
};

}  // namespace fhirgate::gateway
