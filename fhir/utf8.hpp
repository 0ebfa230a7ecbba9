#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

namespace fhirgate::fhir {

// Length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlong forms, no surrogates, nothing
// above U+10FFFF), or 0 when it is malformed. Meant for bytes from 0x80; ASCII is the caller's fast path.
inline std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const auto cont = [&](std::size_t k) { return (byte(k) & 0xC0) == 0x80; };
  const unsigned char b0 = byte(0);
  const std::size_t left = s.size() - i;
  if (b0 >= 0xC2 && b0 <= 0xDF) return left >= 2 && cont(1) ? 2 : 0;
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (left < 3 || !cont(1) || !cont(2)) return 0;
    if (b0 == 0xE0 && byte(1) < 0xA0) return 0;
    if (b0 == 0xED && byte(1) >= 0xA0) return 0;
    return 3;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (left < 4 || !cont(1) || !cont(2) || !cont(3)) return 0;
    if (b0 == 0xF0 && byte(1) < 0x90) return 0;
    if (b0 == 0xF4 && byte(1) >= 0x90) return 0;
    return 4;
  }
  return 0;
}

// Length of the UTF-8 sequence at s[i] when it is well-formed and a character XML 1.0 allows (no
// surrogates, U+FFFE or U+FFFF), else 0. Meant for bytes from 0x80.
inline std::size_t xml_utf8_length(std::string_view s, std::size_t i) {
  const std::size_t n = utf8_sequence_length(s, i);
  const bool non_character = n == 3 && static_cast<unsigned char>(s[i]) == 0xEF &&
                             static_cast<unsigned char>(s[i + 1]) == 0xBF &&
                             static_cast<unsigned char>(s[i + 2]) >= 0xBE;
  return non_character ? 0 : n;
}

// True when every byte of text is printable ASCII (0x20 to 0x7F), the common case of what
// first_unrepresentable looks for, decided eight bytes at a time with no branch per byte. Subtracting
// 0x20 from each byte sets the top bit of a byte below 0x20 (a borrow into the next byte only ever starts
// at such a byte) and `| word` keeps the top bit of a byte from 0x80, so the text is printable exactly
// when no top bit is left. Texts shorter than eight bytes are read as two overlapping halves.
inline bool printable_ascii(std::string_view text) {
  constexpr std::uint64_t kLow = 0x2020202020202020u;
  constexpr std::uint64_t kHigh = 0x8080808080808080u;
  const char* p = text.data();
  const std::size_t n = text.size();
  if (n >= 8) {
    std::uint64_t word = 0;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i + 8 <= n; i += 8) {
      std::memcpy(&word, p + i, 8);
      seen |= (word - kLow) | word;
    }
    std::memcpy(&word, p + n - 8, 8);
    seen |= (word - kLow) | word;
    return (seen & kHigh) == 0;
  }
  if (n >= 4) {
    std::uint32_t head = 0;
    std::uint32_t tail = 0;
    std::memcpy(&head, p, 4);
    std::memcpy(&tail, p + n - 4, 4);
    const auto low = static_cast<std::uint32_t>(kLow);
    return ((((head - low) | head) | ((tail - low) | tail)) & static_cast<std::uint32_t>(kHigh)) == 0;
  }
  unsigned seen = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned c = static_cast<unsigned char>(p[i]);
    seen |= (c - 0x20u) | c;
  }
  return (seen & 0x80u) == 0;
}

// Where text holds, from `from` on, the first character that JSON and XML strings cannot carry as they
// are (a control character other than tab, LF and CR; malformed UTF-8; U+FFFE or U+FFFF), else npos.
inline std::size_t first_unrepresentable(std::string_view text, std::size_t from = 0) {
  for (std::size_t i = from; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      const std::size_t len = xml_utf8_length(text, i);
      if (len == 0) return i;
      i += len;
    } else {
      if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') return i;
      ++i;
    }
  }
  return std::string_view::npos;
}

inline bool has_unrepresentable(std::string_view text) {
  return first_unrepresentable(text) != std::string_view::npos;
}

// text with each such character written as a visible escape, \u0008 or \xFF (one per byte): for
// diagnostics and records that quote what a client sent, so that they can always be serialized.
inline std::string with_visible_escapes(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  char escape[8];
  std::size_t done = 0;
  for (std::size_t bad = first_unrepresentable(text); bad != std::string_view::npos;
       bad = first_unrepresentable(text, done)) {
    out.append(text.substr(done, bad - done));
    const auto c = static_cast<unsigned char>(text[bad]);
    std::snprintf(escape, sizeof escape, c >= 0x80 ? "\\x%02X" : "\\u%04X", c);
    out += escape;
    done = bad + 1;
  }
  out.append(text.substr(done));
  return out;
}

}  // namespace fhirgate::fhir
