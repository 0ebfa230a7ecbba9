#include "fhir/base64.hpp"

#include <doctest/doctest.h>

#include <string>

namespace fhirgate::fhir {
namespace {

TEST_CASE("base64: both alphabets round-trip every remainder length; foreign characters are refused") {
  std::string bytes;
  for (int i = 0; i < 7; ++i) {
    CHECK(base64_decode(base64_encode(bytes)) == bytes);
    CHECK(base64url_decode(base64url_encode(bytes)) == bytes);
    bytes += static_cast<char>(0xfb + i);  // bytes whose encodings use + / - _
  }
  CHECK(base64_encode("ab") == "YWI=");
  CHECK(base64_decode("YWI") == "ab");  // padding optional
  CHECK_FALSE(base64_decode("YW=I"));   // '=' only at the end
  CHECK_FALSE(base64_decode("-_-_"));   // the URL-safe alphabet is another one
  CHECK_FALSE(base64url_decode("+/+/"));
  CHECK_FALSE(base64url_decode("YWI="));
}

}  // namespace
}  // namespace fhirgate::fhir
