#include "fhir/utf8.hpp"

#include <doctest/doctest.h>

#include <random>
#include <string>

namespace fhirgate::fhir {
namespace {

bool printable_reference(std::string_view text) {
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x80) return false;
  }
  return true;
}

TEST_CASE("utf8: printable_ascii finds a byte outside 0x20..0x7F at every position and length") {
  for (const char bad : {'\x00', '\x01', '\x09', '\x1F', '\x80', '\xC3', '\xFF'}) {
    for (std::size_t length = 1; length <= 40; ++length) {
      for (std::size_t at = 0; at < length; ++at) {
        std::string text(length, 'a');
        text[at] = bad;
        CAPTURE(length);
        CAPTURE(at);
        CHECK_FALSE(printable_ascii(text));
      }
    }
  }
  for (std::size_t length = 0; length <= 40; ++length) {
    std::string text;
    for (std::size_t k = 0; k < length; ++k) text += static_cast<char>(0x20 + (k * 7) % 0x60);
    CHECK(printable_ascii(text));
  }
  CHECK(printable_ascii(" ~\x7F"));
}

TEST_CASE("utf8: printable_ascii agrees with a byte-by-byte test on random text") {
  std::mt19937 random(20240514);
  for (int round = 0; round < 20000; ++round) {
    std::string text(random() % 40, ' ');
    for (char& c : text) c = static_cast<char>(random() % 100 < 97 ? 0x20 + random() % 0x60 : random() % 256);
    CAPTURE(text);
    CHECK(printable_ascii(text) == printable_reference(text));
  }
}

}  // namespace
}  // namespace fhirgate::fhir
