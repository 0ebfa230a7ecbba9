#include "gateway/rest/negotiation.hpp"

#include <optional>
#include <string>

namespace fhirgate::gateway::rest {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool is_json_media_type(std::string_view t) {
  return t == "application/fhir+json" || t == "application/json" || t == "application/json+fhir" ||
         t == "text/json";
}

bool is_xml_media_type(std::string_view t) {
  return t == "application/fhir+xml" || t == "application/xml" || t == "application/xml+fhir" ||
         t == "text/xml";
}

template <class F>
void for_each_item(std::string_view list, char sep, F&& f) {
  while (!list.empty()) {
    const auto pos = list.find(sep);
    f(trim(list.substr(0, pos)));
    if (pos == std::string_view::npos) break;
    list.remove_prefix(pos + 1);
  }
}

}  // namespace

Result<fhir::Format> negotiate_response_format(std::string_view format_param, std::string_view accept) {
  if (!format_param.empty()) {
    const std::string f = lower(trim(format_param));
    if (f == "json" || is_json_media_type(f)) return fhir::Format::json;
    if (f == "xml" || is_xml_media_type(f)) return fhir::Format::xml;
    return Error::make(ErrorCode::not_acceptable,
                       "Unknown _format '" + std::string(format_param) + "'; use json or xml", "_format");
  }
  if (trim(accept).empty()) return fhir::Format::json;
  std::optional<fhir::Format> best;
  double best_q = 0;
  for_each_item(accept, ',', [&](std::string_view range) {
    const auto semi = range.find(';');
    const std::string type = lower(trim(range.substr(0, semi)));
    double q = 1.0;
    bool other_version = false;
    if (semi != std::string_view::npos) {
      for_each_item(range.substr(semi + 1), ';', [&](std::string_view param) {
        if (param.size() > 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
          try {
            q = std::stod(std::string(param.substr(2)));
          } catch (const std::exception&) {
            q = 0;
          }
        }
        // R4 http.html#version: fhirVersion names the FHIR version wanted; this server speaks 4.0 only.
        const std::string p = lower(param);
        if (p.rfind("fhirversion=", 0) == 0) {
          std::string version = p.substr(12);
          std::erase(version, '"');
          other_version = version != "4.0" && version.rfind("4.0.", 0) != 0;
        }
      });
    }
    if (other_version) return;
    std::optional<fhir::Format> format;
    if (is_json_media_type(type) || type == "*/*" || type == "application/*")
      format = fhir::Format::json;
    else if (is_xml_media_type(type))
      format = fhir::Format::xml;
    else if (type == "text/*")
      format = fhir::Format::xml;
    if (format && q > best_q) {
      best = format;
      best_q = q;
    }
  });
  if (best) return *best;
  return Error::make(
      ErrorCode::not_acceptable,
      "None of the accepted media types (" + std::string(accept) +
          ") can be produced; this server answers application/fhir+json or application/fhir+xml, FHIR "
          "version 4.0");
}

Result<BodyKind> classify_request_body(std::string_view content_type) {
  const auto semi = content_type.find(';');
  const std::string type = lower(trim(content_type.substr(0, semi)));
  if (semi != std::string_view::npos) {
    bool bad_charset = false;
    for_each_item(content_type.substr(semi + 1), ';', [&](std::string_view param) {
      const std::string p = lower(param);
      if (p.rfind("charset=", 0) == 0) {
        std::string cs = p.substr(8);
        if (!cs.empty() && cs.front() == '"') cs = cs.substr(1, cs.size() - 2);
        if (cs != "utf-8" && cs != "utf8") bad_charset = true;
      }
    });
    if (bad_charset) {
      return Error::make(ErrorCode::unsupported_media_type, "Only the UTF-8 charset is accepted");
    }
  }
  if (is_json_media_type(type)) return BodyKind::fhir_json;
  if (type == "application/x-www-form-urlencoded") return BodyKind::form;
  if (type.empty()) {
    return Error::make(ErrorCode::unsupported_media_type,
                       "Content-Type is required; send application/fhir+json or application/fhir+xml");
  }
  if (is_xml_media_type(type)) return BodyKind::fhir_xml;
  return Error::make(
      ErrorCode::unsupported_media_type,
      "Content-Type '" + type + "' is not supported; send application/fhir+json or application/fhir+xml");
}

Prefer parse_prefer(std::string_view header) {
  Prefer p;
  for_each_item(header, ',', [&](std::string_view item) {
    for_each_item(item, ';', [&](std::string_view token) {
      const std::string t = lower(token);
      if (t == "return=minimal")
        p.return_kind = Prefer::Return::minimal;
      else if (t == "return=representation")
        p.return_kind = Prefer::Return::representation;
      else if (t == "return=operationoutcome")
        p.return_kind = Prefer::Return::operation_outcome;
      else if (t == "handling=strict")
        p.strict = true;
      else if (t == "handling=lenient")
        p.strict = false;
    });
  });
  return p;
}

}  // namespace fhirgate::gateway::rest
