#include "gateway/rest/router.hpp"

#include <algorithm>

#include "fhir/json.hpp"
#include "gateway/rest/capability.hpp"

namespace fhirgate::gateway::rest {
namespace {

// A path the router knows: the methods it answers, by what.
struct Route {
  std::vector<std::pair<std::string, std::function<Routed()>>> methods;
};

std::string allow_of(const Route& route) {
  std::string allow;
  for (const auto& [method, make] : route.methods) allow += (allow.empty() ? "" : ", ") + method;
  return allow;
}

Routed routed(std::unique_ptr<Interaction> handler, std::string interaction, std::string type = {}) {
  return Routed{std::move(handler), std::move(interaction), std::move(type)};
}

bool served(const RestJob& job, const std::string& type) {
  const auto& types = job.services.options.cached_types;
  return std::find(types.begin(), types.end(), type) != types.end();
}

Error unknown_operation(const std::string& name, const std::string& where) {
  return Error::make(ErrorCode::not_found,
                     "Unknown operation '" + name + "'" + where +
                         ": this server supports $validate, $process-message and $ingest");
}

// The route for a path, or the error for a path that names nothing.
Result<Route> find_route(const RestJob& job) {
  const auto& p = job.parts;
  const auto& services = job.services;
  Route r;
  auto on = [&r](const char* method, std::function<Routed()> make) {
    r.methods.emplace_back(method, std::move(make));
  };
  if (p.empty()) {
    on("POST", [] { return routed(make_bundle(), "bundle"); });
    return r;
  }
  const std::string& first = p[0];
  // The server's own endpoints.
  if (p.size() == 1 && first == "metadata") {
    on("GET", [] { return routed(make_capabilities(), "capabilities"); });
    return r;
  }
  if (p.size() == 1 && (first == "healthz" || first == "readyz")) {
    on("GET", [ready = first == "readyz"] { return routed(make_health(ready), "other"); });
    return r;
  }
  if (p.size() == 1 && first == "metrics" && services.options.metrics) {
    on("GET", [] { return routed(make_metrics(), "ops"); });
    return r;
  }
  if (first == "_ops") {
    const auto& dashboard = services.options.dashboard;
    if (p.size() == 1 && !dashboard.empty()) {
      const bool slash = job.path.ends_with("/");
      on("GET",
         [slash] { return routed(slash ? make_dashboard("index.html") : make_redirect("/_ops/"), "ops"); });
      return r;
    }
    if (p.size() == 2 && dashboard.contains(p[1])) {
      on("GET", [file = p[1]] { return routed(make_dashboard(file), "ops"); });
      return r;
    }
    if (p.size() == 2 && p[1] == "stats") {
      on("GET", [] { return routed(make_stats(), "ops"); });
      return r;
    }
    if (p.size() >= 2 && p[1] == "journal") {
      if (p.size() == 2) on("GET", [] { return routed(make_journal(), "ops"); });
      if (p.size() == 3) {
        on("GET", [id = p[2]] { return routed(make_journal_entry(id), "ops"); });
        on("DELETE", [id = p[2]] { return routed(make_journal_action(id, false), "ops"); });
      }
      if (p.size() == 4 && p[3] == "$retry")
        on("POST", [id = p[2]] { return routed(make_journal_action(id, true), "ops"); });
      if (!r.methods.empty()) return r;
    }
    if (p.size() >= 2 && p[1] == "deliveries") {
      if (p.size() == 2) on("GET", [] { return routed(make_deliveries(), "ops"); });
      if (p.size() == 3) on("DELETE", [id = p[2]] { return routed(make_delivery_action(id, false), "ops"); });
      if (p.size() == 4 && p[3] == "$retry")
        on("POST", [id = p[2]] { return routed(make_delivery_action(id, true), "ops"); });
      if (!r.methods.empty()) return r;
    }
    if (p.size() >= 2 && p[1] == "held") {
      if (p.size() == 2) on("GET", [] { return routed(make_held_list(), "ops"); });
      if (p.size() == 3) on("GET", [id = p[2]] { return routed(make_held_entry(id), "ops"); });
      if (p.size() == 4 && (p[3] == "$release" || p[3] == "$reject"))
        on("POST", [id = p[2], release = p[3] == "$release"] {
          return routed(make_held_decision(id, release), "ops");
        });
      if (!r.methods.empty()) return r;
    }
    return Error::make(ErrorCode::not_found, "Unknown path " + job.path);
  }
  // System-level operations.
  if (p.size() == 1 && first.starts_with("$")) {
    if (first == "$validate") {
      on("POST", [] { return routed(make_validate({}, {}), "operation"); });
    } else if (first == "$process-message") {
      on("POST", [] { return routed(make_process_message(), "operation"); });
    } else if (first == "$ingest" && (services.v2 || services.feeds)) {
      on("POST", [&job] { return routed(make_ingest(job), "operation"); });
    } else {
      return unknown_operation(first, "");
    }
    return r;
  }
  // $validate takes any resource type the model knows, served or not.
  if (p.size() == 2 && p[1] == "$validate" && job.services.model.is_resource(first)) {
    on("POST", [type = first] { return routed(make_validate(type, {}), "operation", type); });
    return r;
  }
  // A resource type.
  if (!job.services.model.is_resource(first) || !served(job, first)) {
    return Error::make(ErrorCode::not_found, "Resource type '" + first + "' is not supported by this server");
  }
  const std::string type = first;
  const bool trail = type == "AuditEvent";  // served from the chained audit trail, append-only
  if (p.size() == 1) {
    on("GET", [type, trail] {
      return routed(trail ? make_audit_search() : make_search(type), "search-type", type);
    });
    on("POST",
       [type, trail] { return routed(trail ? make_audit_create() : make_create(type), "create", type); });
    if (!is_append_only(type))  // a conditional update: PUT Type?criteria
      on("PUT", [type] { return routed(make_update(type, {}), "update", type); });
    return r;
  }
  if (p.size() == 2 && p[1] == "_search") {
    on("GET", [type, trail] {
      return routed(trail ? make_audit_search() : make_search(type), "search-type", type);
    });
    on("POST", [type, trail] {
      return routed(trail ? make_audit_search() : make_search(type), "search-type", type);
    });
    return r;
  }
  if (p.size() == 2 && p[1] == "_history") {
    on("GET", [type, trail] {
      return routed(trail ? make_audit_history({}) : make_history(type, {}), "history-type", type);
    });
    return r;
  }
  if (p.size() == 2 && p[1].starts_with("$")) {
    if (p[1] != "$validate") return unknown_operation(p[1], " on " + type);
    on("POST", [type] { return routed(make_validate(type, {}), "operation", type); });
    return r;
  }
  const std::string id = p[1];
  if (!fhir::is_valid_id(id))
    return Error::make(ErrorCode::invalid_input,
                       "'" + id + "' is not a valid resource id ([A-Za-z0-9-.]{1,64})");
  if (p.size() == 2) {
    on("GET", [type, id, trail] {
      return routed(trail ? make_audit_read(id, {}) : make_read(type, id, {}), "read", type);
    });
    if (!is_append_only(type)) {
      on("PUT", [type, id] { return routed(make_update(type, id), "update", type); });
      on("DELETE", [type, id] { return routed(make_delete(type, id), "delete", type); });
    }
    return r;
  }
  if (p.size() == 3 && p[2].starts_with("$")) {
    if (p[2] != "$validate") return unknown_operation(p[2], " on " + type + "/" + id);
    if (!trail) on("GET", [type, id] { return routed(make_validate(type, id), "operation", type); });
    return r;
  }
  if (p.size() == 3 && p[2] == "_history") {
    on("GET", [type, id, trail] {
      return routed(trail ? make_audit_history(id) : make_history(type, id), "history-instance", type);
    });
    return r;
  }
  if (p.size() == 4 && p[2] == "_history") {
    on("GET", [type, id, version = p[3], trail] {
      return routed(trail ? make_audit_read(id, version) : make_read(type, id, version), "vread", type);
    });
    return r;
  }
  return Error::make(ErrorCode::not_found, "Unknown path " + job.path);
}

}  // namespace

Result<Routed> route_request(const RestJob& job, std::string& allow) {
  auto route = find_route(job);
  if (!route) return route.error();
  const std::string& method = job.request.method;
  for (const auto& [m, make] : route->methods)
    if (m == method) return make();
  allow = allow_of(*route);
  if (allow.empty()) return Error::make(ErrorCode::not_found, "Unknown path " + job.path);
  return Error::make(ErrorCode::method_not_allowed,
                     method + " is not allowed on " + job.path + " (allowed: " + allow + ")");
}

}  // namespace fhirgate::gateway::rest
