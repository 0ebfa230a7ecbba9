#pragma once
// Base64 (RFC 4648): the standard alphabet with padding (FHIR base64Binary), and the URL-safe alphabet
// without padding (tokens, paging cursors).
#include <optional>
#include <string>
#include <string_view>

namespace fhirgate::fhir {

std::string base64_encode(std::string_view bytes);
std::string base64url_encode(std::string_view bytes);
// Standard alphabet, padding optional; nullopt on any other character (or '=' before the end).
std::optional<std::string> base64_decode(std::string_view text);
// nullopt on a character outside the URL-safe alphabet.
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace fhirgate::fhir
