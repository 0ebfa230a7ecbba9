#include "gateway/security/paging_cursors.hpp"

#include <doctest/doctest.h>

#include "fhir/base64.hpp"

namespace fhirgate::gateway {
namespace {

std::array<unsigned char, 32> key(unsigned char fill) {
  std::array<unsigned char, 32> k{};
  k.fill(fill);
  return k;
}

TEST_CASE("paging cursors: sealed, opaque, opened only unaltered and with their key") {
  const PagingCursors cursors(key(7));
  const std::string inner = R"(["n","Smith",1042])";
  const std::string sealed = cursors.seal(inner);
  CHECK(sealed.find("Smith") == std::string::npos);
  const auto raw = fhir::base64url_decode(sealed);
  REQUIRE(raw);
  CHECK(raw->find("1042") == std::string::npos);  // the row number does not show through
  CHECK(cursors.open(sealed) == inner);
  CHECK(cursors.seal(inner) != sealed);  // a fresh nonce each time: equal cursors do not look equal

  CHECK(cursors.seal("").empty());
  CHECK_FALSE(cursors.open(""));
  CHECK_FALSE(cursors.open("not base64 !"));
  CHECK_FALSE(cursors.open(fhir::base64url_encode(inner)));  // the store's own cursor text is refused
  CHECK_FALSE(PagingCursors(key(8)).open(sealed));           // another key
  for (std::size_t i = 0; i < raw->size(); ++i) {            // any one byte altered
    std::string altered = *raw;
    altered[i] = static_cast<char>(altered[i] ^ 0x01);
    CHECK_FALSE(cursors.open(fhir::base64url_encode(altered)));
  }
  CHECK_FALSE(cursors.open(fhir::base64url_encode(raw->substr(0, raw->size() - 1))));
}

}  // namespace
}  // namespace fhirgate::gateway
