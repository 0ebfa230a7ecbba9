#include "gateway/server/gateway.hpp"

#include <malloc.h>

#include <filesystem>
#include <iostream>
#include <stdexcept>

#include "fhir/files.hpp"
#include "fhir/json.hpp"
#include "gateway/common/ids.hpp"
#include "gateway/rest/capability.hpp"
#include "gateway/security/agreement.hpp"
#include "gateway/server/app.hpp"

namespace fhirgate::gateway {
namespace {

// Loads the seed files into a new database: Bundles (their entries' resources) or single resources.
// Resources keep their ids. Every resource is checked before any is stored, so a bad seed file leaves
// the new database empty. Failures are start-up errors.
void seed(store::Store& store, const fhir::Validator& validator, const Config& config) {
  std::vector<std::pair<std::string, fhir::Node>> checked;  // type, resource
  for (const auto& file : config.seed_files) {
    auto doc = fhir::read_json_file(file);
    if (!doc) throw std::runtime_error(file + ": " + doc.error().issues.front().diagnostics);
    std::vector<fhir::Node> resources;
    if (doc->string_at("resourceType") == "Bundle") {
      if (const auto* entries = doc->find("entry"))
        for (const auto& entry : entries->items())
          if (const auto* r = entry.find("resource")) resources.push_back(*r);
    } else {
      resources.push_back(std::move(*doc));
    }
    for (auto& resource : resources) {
      if (auto ok = fhir::check_resource_json(resource); !ok)
        throw std::runtime_error(file + ": " + ok.error().issues.front().diagnostics);
      std::string type(resource.string_at("resourceType"));
      if (std::find(config.cached_types.begin(), config.cached_types.end(), type) ==
          config.cached_types.end())
        throw std::runtime_error(file + ": resource type " + type + " is not in cachedTypes");
      fhir::ValidationOptions options;
      if (const auto it = config.profiles.find(type); it != config.profiles.end())
        options.profiles = it->second;
      for (const auto& issue : validator.validate(resource, options).issues)
        if (issue.severity == "error" || issue.severity == "fatal")
          throw std::runtime_error(file + ": " + issue.expression + ": " + issue.diagnostics);
      checked.emplace_back(std::move(type), std::move(resource));
    }
  }
  // All of them and the mark that they were loaded, in one transaction.
  Status stored = store.writer().run([&](store::WriteTxn& txn) -> Status {
    for (auto& [type, resource] : checked) {
      std::string id(resource.string_at("id"));
      if (id.empty()) id = new_resource_id();
      txn.put(type, id, std::move(resource), "PUT");
    }
    txn.set_meta("seeded", "1");
    return Ok{};
  });
  if (!stored)
    throw std::runtime_error("storing the seed resources: " + stored.error().issues.front().diagnostics);
  if (!checked.empty())
    std::cerr << "fhirgate: loaded " << checked.size() << " sample resources into the new database\n";
}

// Each partner's Organization, as the gateway serves it (when Organization is a cached type): kept equal
// to the configuration on every start.
void sync_organizations(store::Store& store, const Config& config) {
  if (std::find(config.cached_types.begin(), config.cached_types.end(), "Organization") ==
      config.cached_types.end())
    return;
  for (const auto& p : config.partners) {
    if (p.role != "partner") continue;
    fhir::Node org = fhir::Node::object();
    org.set("resourceType", fhir::Node::string("Organization"));
    org.set("id", fhir::Node::string(p.id));
    if (!p.ods_code.empty()) {
      fhir::Node id = fhir::Node::object();
      id.set("system", fhir::Node::string(std::string(kOdsSystem)));
      id.set("value", fhir::Node::string(p.ods_code));
      org.set("identifier", fhir::Node::array()).push(std::move(id));
    }
    org.set("active", fhir::Node::boolean(true));
    org.set("name", fhir::Node::string(p.name.empty() ? p.id : p.name));
    const Status synced = store.writer().run([org, id = p.id](store::WriteTxn& txn) -> Status {
      if (auto held = txn.read("Organization", id); held && !held->deleted) {
        auto parsed = fhir::parse_json(held->body);
        if (parsed) {
          parsed->erase("meta");
          if (*parsed == org) return Ok{};
        }
      }
      txn.put("Organization", id, org, "PUT");
      return Ok{};
    });
    if (!synced) throw std::runtime_error("cannot store the Organization of partner " + p.id);
  }
}

}  // namespace

Gateway::Gateway(const Config& config)
    : config_(config),
      model_(load_model(config)),
      registry_(load_search_params(config)),
      log_(config.log_level),
      observers_(log_),
      gate_(config),
      router_(config.routes) {
  if (config.security.enabled)
    if (Status attributable = check_attributable(*model_, config.cached_types); !attributable)
      throw std::runtime_error(attributable.error().issues.front().diagnostics);
  validator_ = std::make_unique<fhir::Validator>(model_, load_terminology(config));
  load_project_profiles(*validator_, *model_, config);
  if (const auto dir = std::filesystem::path(config.database_path).parent_path(); !dir.empty())
    std::filesystem::create_directories(dir);
  store_ = std::make_unique<store::Store>(config.database_path, registry_, config.security.audit_key_file,
                                          store::WriterOptions{}, /*must_own=*/true);
  if (!store_->owns_audit_log())
    throw std::runtime_error("the database " + config.database_path +
                             " is in use by another fhirgate process (it holds the database's lock, through "
                             "this path or another)");
  store_->writer().set_commit_observer(
      [this](std::size_t plans, double seconds) { observers_.on_commit(plans, seconds); });
  // First start: the database has never been seeded (a token may have been added to it already).
  if (auto seeded = store_->meta("seeded"); seeded && !*seeded) seed(*store_, *validator_, config);
  sync_organizations(*store_, config);
  // Loading the definitions parsed ~40 MB of JSON that is freed now; give those pages back to the OS.
  malloc_trim(0);

  const bool secure = config.security.enabled;
  if (secure) authenticator_ = std::make_unique<Authenticator>(config, *store_);
  gate_.set_decision_observer([this](const ConsentDecision& d) {
    observers_.on_consent(d.break_glass ? "break-glass" : d.permit ? "permit" : "deny");
  });
  observers_.watch_queues(*store_);
  const stages::WriteServices write{gate_, registry_, config.routes.empty() ? nullptr : &router_};

  std::vector<std::string> patient_profiles;
  if (const auto it = config.profiles.find("Patient"); it != config.profiles.end())
    patient_profiles = it->second;
  v2_service_ = std::make_unique<inbound::V2Service>(inbound::V2Service{*model_,
                                                                        *validator_,
                                                                        registry_,
                                                                        write,
                                                                        {},
                                                                        std::move(patient_profiles),
                                                                        secure,
                                                                        config.server.validation_budget_ms,
                                                                        &observers_});
  for (const auto& p : config.partners) {
    if (p.role != "partner") continue;
    v2_service_->partners.push_back(
        inbound::V2Partner{&p, p.sending_facilities, {p.nhs_number_authority, p.local_identifier_system}});
  }

  auto feeds = load_partner_feeds(config, *model_);
  if (!feeds) throw std::runtime_error("feed mapping: " + feeds.error().issues.front().diagnostics);
  feeds_ = std::make_unique<FeedService>(
      FeedService{FeedContext{*model_, *validator_, registry_, store_->writer(), write, config,
                              config.profiles, secure, 1000, &observers_},
                  std::move(*feeds)});

  rest::RestOptions options;
  options.cached_types = config.cached_types;
  options.base_url = config.base_url;
  options.profiles = config.profiles;
  options.default_count = config.default_page_size;
  options.max_count = config.max_page_size;
  options.software_version = FHIRGATE_VERSION;
  options.security = secure;
  options.purpose_header = config.security.purpose_header;
  options.validation_budget_ms = config.server.validation_budget_ms;
  options.metrics = [this] { return observers_.metrics().render(); };
  for (const auto& route : config.routes)
    for (const auto& to : route.to)
      if (std::find(options.destinations.begin(), options.destinations.end(), to) ==
          options.destinations.end())
        options.destinations.push_back(to);
  rest_services_ = std::make_unique<rest::RestServices>(rest::RestServices{std::move(options),
                                                                           *model_,
                                                                           *validator_,
                                                                           registry_,
                                                                           *store_,
                                                                           authenticator_.get(),
                                                                           gate_,
                                                                           write,
                                                                           &observers_,
                                                                           v2_service_.get(),
                                                                           feeds_.get(),
                                                                           {}});
  rest_services_->config = &config_;
  paging_cursors_ = std::make_unique<PagingCursors>(store_->derived_key("paging cursors"));
  rest_services_->cursors = paging_cursors_.get();
  rest_services_->capability_json = fhir::write_json(
      rest::capability_statement(rest_services_->options, registry_, pipeline::wall_clock_ms()));
  rest_handler_ = std::make_unique<rest::RestHandler>(*rest_services_);
  v2_handler_ = std::make_unique<inbound::V2Handler>(*v2_service_);
}

Gateway::~Gateway() {
  // The writer calls into the observers: it stops before they are gone.
  if (store_) store_->writer().stop();
}

}  // namespace fhirgate::gateway
