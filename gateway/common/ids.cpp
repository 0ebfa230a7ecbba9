#include "gateway/common/ids.hpp"

#include <chrono>
#include <cstdint>
#include <random>

namespace fhirgate::gateway {

std::string new_resource_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const auto ms = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                 std::chrono::system_clock::now().time_since_epoch())
                                                 .count());
  const std::uint64_t r1 = rng();
  const std::uint64_t r2 = rng();
  unsigned char b[16];
  for (int i = 0; i < 6; ++i) b[i] = static_cast<unsigned char>(ms >> (40 - 8 * i));
  for (int i = 0; i < 8; ++i) b[6 + i] = static_cast<unsigned char>(r1 >> (8 * i));
  for (int i = 0; i < 2; ++i) b[14 + i] = static_cast<unsigned char>(r2 >> (8 * i));
  b[6] = static_cast<unsigned char>(0x70 | (b[6] & 0x0f));  // version 7
  b[8] = static_cast<unsigned char>(0x80 | (b[8] & 0x3f));  // RFC 4122 variant
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[b[i] >> 4];
    out += kHex[b[i] & 0x0f];
  }
  return out;
}

}  // namespace fhirgate::gateway
