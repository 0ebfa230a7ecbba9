#pragma once
// The REST routes: which interaction a method and a path name. One table: a path pattern, the methods it
// answers and the interaction each makes; an unknown path is 404, a known path with another method 405
// with the path's own Allow, an unknown operation ($name) 404 naming it.
#include <memory>
#include <string>
#include <vector>

#include "fhir/result.hpp"
#include "gateway/rest/rest_job.hpp"

namespace fhirgate::gateway::rest {

struct Routed {
  std::unique_ptr<Interaction> handler;
  std::string interaction;  // for metrics (read, search-type, create, operation, ops, ...)
  std::string type;         // the resource type addressed, or ""
};

// Errors: not_found (unknown path, type not served, unknown operation), method_not_allowed (`allow` then
// holds the path's methods, "GET, POST"), invalid_input (a malformed id).
Result<Routed> route_request(const RestJob& job, std::string& allow);

// Interactions, made by the router (their files).
std::unique_ptr<Interaction> make_read(std::string type, std::string id, std::string version);
std::unique_ptr<Interaction> make_search(std::string type);
std::unique_ptr<Interaction> make_history(std::string type, std::string id);
std::unique_ptr<Interaction> make_create(std::string type);
std::unique_ptr<Interaction> make_update(std::string type, std::string id);
std::unique_ptr<Interaction> make_delete(std::string type, std::string id);
std::unique_ptr<Interaction> make_validate(std::string type, std::string id);
std::unique_ptr<Interaction> make_bundle();
std::unique_ptr<Interaction> make_process_message();
std::unique_ptr<Interaction> make_ingest(const RestJob& job);
std::unique_ptr<Interaction> make_audit_read(std::string id, std::string version);
std::unique_ptr<Interaction> make_audit_search();
std::unique_ptr<Interaction> make_audit_history(std::string id);
std::unique_ptr<Interaction> make_audit_create();
std::unique_ptr<Interaction> make_capabilities();
std::unique_ptr<Interaction> make_health(bool ready);
std::unique_ptr<Interaction> make_dashboard(std::string file);
std::unique_ptr<Interaction> make_metrics();
std::unique_ptr<Interaction> make_stats();
std::unique_ptr<Interaction> make_journal();
std::unique_ptr<Interaction> make_journal_entry(std::string id);
std::unique_ptr<Interaction> make_journal_action(std::string id, bool retry);
std::unique_ptr<Interaction> make_deliveries();
std::unique_ptr<Interaction> make_delivery_action(std::string id, bool retry);
std::unique_ptr<Interaction> make_held_list();
std::unique_ptr<Interaction> make_held_entry(std::string id);
std::unique_ptr<Interaction> make_held_decision(std::string id, bool release);
std::unique_ptr<Interaction> make_redirect(std::string location);

}  // namespace fhirgate::gateway::rest
