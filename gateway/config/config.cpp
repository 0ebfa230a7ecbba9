#include "gateway/config/config.hpp"

#include <filesystem>
#include <set>
#include <stdexcept>

#include "fhir/files.hpp"
#include "fhir/json.hpp"

namespace fhirgate::gateway {
namespace {

using fhir::Node;

class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const std::string& where, const std::string& what) const {
    throw std::runtime_error(file_ + ": " + where + ": " + what);
  }

  const Node& object(const Node& n, const std::string& where) const {
    if (!n.is_object()) fail(where, "expected an object");
    return n;
  }
  std::string string(const Node& n, const std::string& where) const {
    if (!n.is_string()) fail(where, "expected a string");
    return n.text();
  }
  std::int64_t integer(const Node& n, const std::string& where, std::int64_t min, std::int64_t max) const {
    if (!n.is_number()) fail(where, "expected a number");
    std::size_t used = 0;
    std::int64_t v = 0;
    try {
      v = std::stoll(n.text(), &used);
    } catch (const std::exception&) {
      fail(where, "expected an integer");
    }
    if (used != n.text().size()) fail(where, "expected an integer");
    if (v < min || v > max)
      fail(where, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    return v;
  }
  std::vector<std::string> strings(const Node& n, const std::string& where) const {
    if (!n.is_array()) fail(where, "expected an array of strings");
    std::vector<std::string> out;
    for (const auto& item : n.items()) out.push_back(string(item, where));
    return out;
  }

 private:
  std::string file_;
};

std::string resolve(const std::filesystem::path& dir, const std::string& p) {
  if (p.empty() || std::filesystem::path(p).is_absolute()) return p;
  return (dir / p).lexically_normal().string();
}

const std::set<std::string>& known_interactions() {
  static const std::set<std::string> names = {"read",        "vread",  "history-instance", "history-type",
                                              "search-type", "create", "update",           "delete"};
  return names;
}

PartnerConfig read_partner(const Reader& r, const Node& value, const std::string& at, bool is_role,
                           const std::filesystem::path& dir) {
  PartnerConfig p;
  if (is_role) p.role.clear();
  for (const auto& [k, v] : r.object(value, at).members()) {
    const std::string where = at + "." + k;
    if (k == "id") {
      p.id = r.string(v, where);
    } else if (k == "name") {
      p.name = r.string(v, where);
    } else if (k == "role" && is_role) {
      p.role = r.string(v, where);
      if (p.role != "operator" && p.role != "privacy-officer")
        r.fail(where, "must be operator or privacy-officer");
    } else if (k == "consentRegistrar" && !is_role) {
      if (!v.is_bool()) r.fail(where, "expected true or false");
      p.consent_registrar = v.text() == "true";
    } else if (k == "odsCode" && !is_role) {
      p.ods_code = r.string(v, where);
    } else if (k == "access") {
      for (const auto& [type, list] : r.object(v, where).members()) {
        for (const auto& interaction : r.strings(list, where + "." + type)) {
          if (!known_interactions().count(interaction))
            r.fail(where + "." + type, "unknown interaction '" + interaction + "'");
          p.access[type].insert(interaction);
        }
      }
    } else if (k == "purposes") {
      p.purposes = r.strings(v, where);
    } else if (k == "inbound" && !is_role) {
      p.inbound = r.strings(v, where);
    } else if (k == "mappingVariant" && !is_role) {
      p.mapping_variant = r.string(v, where);
    } else if (k == "endpoint" && !is_role) {
      for (const auto& [ek, ev] : r.object(v, where).members()) {
        if (ek == "fhirBaseUrl") {
          p.endpoint.fhir_base_url = r.string(ev, where + "." + ek);
          while (p.endpoint.fhir_base_url.ends_with("/")) p.endpoint.fhir_base_url.pop_back();
          if (!p.endpoint.fhir_base_url.starts_with("http://"))
            r.fail(where + "." + ek, "must be an http:// URL");
        } else if (ek == "mllp") {
          const std::string mat = where + ".mllp";
          for (const auto& [mk, mv] : r.object(ev, mat).members()) {
            if (mk == "host")
              p.endpoint.mllp_host = r.string(mv, mat + ".host");
            else if (mk == "port")
              p.endpoint.mllp_port = static_cast<std::uint16_t>(r.integer(mv, mat + ".port", 1, 65535));
            else if (mk == "receivingApplication")
              p.endpoint.receiving_application = r.string(mv, mat + "." + mk);
            else if (mk == "receivingFacility")
              p.endpoint.receiving_facility = r.string(mv, mat + "." + mk);
            else
              r.fail(mat + "." + mk, "unknown setting");
          }
          if (p.endpoint.mllp_host.empty() || p.endpoint.mllp_port == 0)
            r.fail(mat, "needs a host and a port");
        } else if (ek == "dropFolder") {
          p.endpoint.drop_folder = resolve(dir, r.string(ev, where + "." + ek));
        } else if (ek == "timeoutMs") {
          p.endpoint.timeout_ms = static_cast<unsigned>(r.integer(ev, where + "." + ek, 1, 600000));
        } else {
          r.fail(where + "." + ek, "unknown setting");
        }
      }
    } else if (k == "hl7v2" && !is_role) {
      for (const auto& [hk, hv] : r.object(v, where).members()) {
        if (hk == "sendingFacilities")
          p.sending_facilities = r.strings(hv, where + "." + hk);
        else if (hk == "nhsNumberAuthority")
          p.nhs_number_authority = r.string(hv, where + "." + hk);
        else if (hk == "localIdentifierSystem")
          p.local_identifier_system = r.string(hv, where + "." + hk);
        else
          r.fail(where + "." + hk, "unknown setting");
      }
    } else if (k == "feeds" && !is_role) {
      if (!v.is_array()) r.fail(where, "expected an array");
      for (std::size_t i = 0; i < v.items().size(); ++i) {
        const std::string fat = where + "[" + std::to_string(i) + "]";
        FeedConfig feed;
        for (const auto& [fk, fv] : r.object(v.items()[i], fat).members()) {
          if (fk == "id")
            feed.id = r.string(fv, fat + ".id");
          else if (fk == "mapping")
            feed.mapping = resolve(dir, r.string(fv, fat + ".mapping"));
          else if (fk == "folder")
            feed.folder = resolve(dir, r.string(fv, fat + ".folder"));
          else
            r.fail(fat + "." + fk, "unknown setting");
        }
        if (feed.id.empty() || feed.mapping.empty()) r.fail(fat, "a feed needs an id and a mapping");
        p.feeds.push_back(std::move(feed));
      }
    } else if (k == "$comment" || k == "_comment") {
      continue;
    } else {
      r.fail(where, "unknown setting");
    }
  }
  if (p.id.empty()) r.fail(at, "needs an id");
  if (is_role && p.role.empty()) r.fail(at, "needs a role (operator or privacy-officer)");
  if (p.purposes.empty()) p.purposes.push_back("TREAT");
  return p;
}

RouteConfig read_route(const Reader& r, const Node& value, const std::string& at) {
  RouteConfig route;
  for (const auto& [k, v] : r.object(value, at).members()) {
    const std::string where = at + "." + k;
    if (k == "id")
      route.id = r.string(v, where);
    else if (k == "from")
      route.from = r.string(v, where);
    else if (k == "types")
      route.types = r.strings(v, where);
    else if (k == "events")
      route.events = r.strings(v, where);
    else if (k == "to")
      route.to = r.strings(v, where);
    else if (k == "$comment" || k == "_comment")
      continue;
    else if (k == "format")
      route.format = r.string(v, where);
    else
      r.fail(where, "unknown setting");
  }
  if (route.id.empty()) r.fail(at, "a route needs an id");
  if (route.to.empty()) r.fail(at + ".to", "a route needs at least one receiving partner");
  static const std::set<std::string> formats = {"fhir-rest", "fhir-message", "hl7v2-mllp", "file"};
  if (!formats.contains(route.format))
    r.fail(at + ".format",
           "unknown format '" + route.format + "' (fhir-rest, fhir-message, hl7v2-mllp or file)");
  if (!route.events.empty() && !route.types.empty())
    r.fail(at, "a route has either events (FHIR messages) or types (resources), not both");
  if (!route.events.empty() && route.format != "fhir-message" && route.format != "file")
    r.fail(at + ".format", "a route by event passes messages on: format fhir-message or file");
  if (route.format == "hl7v2-mllp" && (route.types.size() != 1 || route.types.front() != "Patient"))
    r.fail(at + ".types", "hl7v2-mllp sends ADT^A31 for Patients only: types must be [\"Patient\"]");
  return route;
}

// Routes name partners that exist, and each receiver has an endpoint for the route's format.
void check_routes(const Reader& r, const Config& c) {
  for (std::size_t i = 0; i < c.routes.size(); ++i) {
    const auto& route = c.routes[i];
    const std::string at = "routes[" + std::to_string(i) + "]";
    if (route.from != "*" && !find_partner(c, route.from))
      r.fail(at + ".from", "no partner '" + route.from + "'");
    for (const auto& to : route.to) {
      const PartnerConfig* receiver = find_partner(c, to);
      if (!receiver) r.fail(at + ".to", "no partner '" + to + "'");
      const auto& e = receiver->endpoint;
      const bool reachable = route.format == "hl7v2-mllp" ? !e.mllp_host.empty()
                             : route.format == "file"     ? !e.drop_folder.empty()
                                                          : !e.fhir_base_url.empty();
      if (!reachable)
        r.fail(at + ".to", "partner '" + to + "' has no endpoint." +
                               (route.format == "hl7v2-mllp" ? "mllp"
                                : route.format == "file"     ? "dropFolder"
                                                             : "fhirBaseUrl") +
                               " to deliver " + route.format + " to");
    }
  }
}

// Partner ids and sending facilities are unique; every listener's partner exists.
void check_partners(const Reader& r, const Config& c) {
  std::set<std::string> ids, facilities;
  for (std::size_t i = 0; i < c.partners.size(); ++i) {
    const auto& p = c.partners[i];
    const std::string at = "partners[" + std::to_string(i) + "]";
    if (!ids.insert(p.id).second) r.fail(at + ".id", "id '" + p.id + "' is used twice");
    for (const auto& f : p.sending_facilities)
      if (!facilities.insert(f).second)
        r.fail(at + ".hl7v2.sendingFacilities", "sending facility '" + f + "' belongs to two partners");
  }
  for (std::size_t i = 0; i < c.mllp.listeners.size(); ++i) {
    const auto& l = c.mllp.listeners[i];
    if (!l.partner.empty() && !ids.count(l.partner))
      r.fail("mllp.listeners[" + std::to_string(i) + "].partner", "no partner '" + l.partner + "'");
  }
}

}  // namespace

Config default_config() {
  Config c;
  c.profiles_dir = FHIRGATE_DEFAULT_PROFILES_DIR;
  c.dashboard_dir = FHIRGATE_DEFAULT_DASHBOARD_DIR;
  c.security.enabled = false;  // no file, no partners: nobody to authenticate
  return c;
}

Config load_config(const std::string& path) {
  auto text = fhir::read_file(path);
  if (!text) throw std::runtime_error("cannot read configuration " + path);
  auto doc = fhir::parse_json(*text);
  if (!doc) {
    const auto& issue = doc.error().issues.front();
    throw std::runtime_error(path + ":" + std::to_string(issue.line) + ":" + std::to_string(issue.column) +
                             ": " + issue.diagnostics);
  }
  const Reader r(path);
  const auto dir = std::filesystem::path(path).parent_path();
  Config c = default_config();
  c.security.enabled = true;
  c.source_path = path;
  for (const auto& [key, value] : r.object(*doc, "top level").members()) {
    if (key == "server") {
      for (const auto& [k, v] : r.object(value, "server").members()) {
        const std::string where = "server." + k;
        if (k == "bind")
          c.server.bind = r.string(v, where);
        else if (k == "port")
          c.server.port = static_cast<std::uint16_t>(r.integer(v, where, 0, 65535));
        else if (k == "threads")
          c.server.threads = static_cast<unsigned>(r.integer(v, where, 1, 256));
        else if (k == "bodyLimitBytes")
          c.server.body_limit_bytes = r.integer(v, where, 1024, std::int64_t{1} << 32);
        else if (k == "headerLimitBytes")
          c.server.header_limit_bytes = r.integer(v, where, 1024, 1 << 20);
        else if (k == "headerTimeoutMs")
          c.server.header_timeout_ms = r.integer(v, where, 10, 3600000);
        else if (k == "bodyTimeoutMs")
          c.server.body_timeout_ms = r.integer(v, where, 10, 3600000);
        else if (k == "shutdownGraceMs")
          c.server.shutdown_grace_ms = r.integer(v, where, 0, 3600000);
        else if (k == "validationBudgetMs")
          c.server.validation_budget_ms = static_cast<unsigned>(r.integer(v, where, 1, 3600000));
        else
          r.fail(where, "unknown setting");
      }
    } else if (key == "mllp") {
      for (const auto& [k, v] : r.object(value, "mllp").members()) {
        const std::string where = "mllp." + k;
        if (k == "listeners") {
          if (!v.is_array()) r.fail(where, "expected an array of listeners");
          for (std::size_t i = 0; i < v.items().size(); ++i) {
            const std::string at = where + "[" + std::to_string(i) + "]";
            MllpListenerConfig l;
            for (const auto& [lk, lv] : r.object(v.items()[i], at).members()) {
              if (lk == "bind")
                l.bind = r.string(lv, at + ".bind");
              else if (lk == "port")
                l.port = static_cast<std::uint16_t>(r.integer(lv, at + ".port", 0, 65535));
              else if (lk == "partner")
                l.partner = r.string(lv, at + ".partner");
              else
                r.fail(at + "." + lk, "unknown setting");
            }
            c.mllp.listeners.push_back(std::move(l));
          }
        } else if (k == "idleTimeoutMs") {
          c.mllp.idle_timeout_ms = static_cast<unsigned>(r.integer(v, where, 10, 86400000));
        } else if (k == "maxMessageBytes") {
          c.mllp.max_message_bytes =
              static_cast<std::size_t>(r.integer(v, where, 1024, std::int64_t{1} << 30));
        } else {
          r.fail(where, "unknown setting");
        }
      }
    } else if (key == "partners" || key == "roles") {
      if (!value.is_array()) r.fail(key, "expected an array");
      for (std::size_t i = 0; i < value.items().size(); ++i)
        c.partners.push_back(
            read_partner(r, value.items()[i], key + "[" + std::to_string(i) + "]", key == "roles", dir));
    } else if (key == "security") {
      for (const auto& [k, v] : r.object(value, "security").members()) {
        const std::string where = "security." + k;
        if (k == "enabled") {
          if (!v.is_bool()) r.fail(where, "expected true or false");
          c.security.enabled = v.text() == "true";
        } else if (k == "consentPolicy") {
          c.security.consent_policy = r.string(v, where);
          if (c.security.consent_policy != "opt-in" && c.security.consent_policy != "opt-out")
            r.fail(where, "must be opt-in or opt-out");
        } else if (k == "purposeHeader") {
          c.security.purpose_header = r.string(v, where);
        } else if (k == "auditKeyFile") {
          c.security.audit_key_file = resolve(dir, r.string(v, where));
        } else {
          r.fail(where, "unknown setting");
        }
      }
    } else if (key == "database") {
      for (const auto& [k, v] : r.object(value, "database").members()) {
        if (k == "path")
          c.database_path = resolve(dir, r.string(v, "database.path"));
        else
          r.fail("database." + k, "unknown setting");
      }
    } else if (key == "baseUrl") {
      c.base_url = r.string(value, key);
      while (!c.base_url.empty() && c.base_url.back() == '/') c.base_url.pop_back();
    } else if (key == "cachedTypes") {
      c.cached_types = r.strings(value, key);
      if (c.cached_types.empty()) r.fail(key, "at least one resource type is needed");
    } else if (key == "profiles") {
      for (const auto& [type, urls] : r.object(value, "profiles").members()) {
        c.profiles[type] = r.strings(urls, "profiles." + type);
      }
    } else if (key == "profilesDir") {
      c.profiles_dir = resolve(dir, r.string(value, key));
    } else if (key == "routes") {
      if (!value.is_array()) r.fail(key, "expected an array");
      for (std::size_t i = 0; i < value.items().size(); ++i)
        c.routes.push_back(read_route(r, value.items()[i], "routes[" + std::to_string(i) + "]"));
    } else if (key == "journal") {
      for (const auto& [k, v] : r.object(value, key).members()) {
        if (k == "payloadRetentionDays")
          c.journal.payload_retention_days = static_cast<unsigned>(r.integer(v, key + "." + k, 0, 36500));
        else if (k == "retentionDays")
          c.journal.retention_days = static_cast<unsigned>(r.integer(v, key + "." + k, 1, 36500));
        else
          r.fail(key + "." + k, "unknown setting");
      }
    } else if (key == "logging") {
      for (const auto& [k, v] : r.object(value, key).members()) {
        if (k != "level") r.fail(key + "." + k, "unknown setting");
        c.log_level = r.string(v, key + ".level");
        if (c.log_level != "debug" && c.log_level != "info" && c.log_level != "warn" &&
            c.log_level != "error")
          r.fail(key + ".level", "debug, info, warn or error");
      }
    } else if (key == "dashboardDir") {
      c.dashboard_dir = resolve(dir, r.string(value, key));
    } else if (key == "delivery") {
      for (const auto& [k, v] : r.object(value, key).members()) {
        if (k == "maxAttempts")
          c.delivery.max_attempts = static_cast<unsigned>(r.integer(v, key + "." + k, 1, 1000));
        else if (k == "baseDelayMs")
          c.delivery.base_delay_ms = static_cast<unsigned>(r.integer(v, key + "." + k, 1, 3600000));
        else if (k == "maxDelayMs")
          c.delivery.max_delay_ms = static_cast<unsigned>(r.integer(v, key + "." + k, 1, 86400000));
        else
          r.fail(key + "." + k, "unknown setting");
      }
    } else if (key == "feedPollMs") {
      c.feed_poll_ms = static_cast<unsigned>(r.integer(value, key, 10, 3600000));
    } else if (key == "seedOnFirstStart") {
      for (const auto& f : r.strings(value, key)) c.seed_files.push_back(resolve(dir, f));
    } else if (key == "search") {
      for (const auto& [k, v] : r.object(value, "search").members()) {
        if (k == "defaultPageSize")
          c.default_page_size = static_cast<int>(r.integer(v, "search." + k, 1, 10000));
        else if (k == "maxPageSize")
          c.max_page_size = static_cast<int>(r.integer(v, "search." + k, 1, 10000));
        else
          r.fail("search." + k, "unknown setting");
      }
    } else if (key == "$comment" || key == "_comment") {
      continue;
    } else {
      r.fail(key, "unknown setting");
    }
  }
  check_partners(r, c);
  check_routes(r, c);
  return c;
}

const PartnerConfig* find_partner(const Config& config, std::string_view id) {
  for (const auto& p : config.partners)
    if (p.id == id) return &p;
  return nullptr;
}

}  // namespace fhirgate::gateway
