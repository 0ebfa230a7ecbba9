#pragma once
// The gateway assembled from its configuration: the definitions, the store, the gate, the router, the
// observers, and the pipelines' entry points (the REST handler, the HL7 v2 handler, the feeds) — all
// but the network listeners and the background workers, which `serve` (app.hpp) adds around it. Tests and
// the fuzz harnesses build it without a network. Start-up failures throw std::runtime_error with a message
// for the operator.
#include <map>
#include <memory>
#include <string>

#include "fhir/model.hpp"
#include "fhir/search_params.hpp"
#include "fhir/validator.hpp"
#include "gateway/config/config.hpp"
#include "gateway/inbound/feed_ingest.hpp"
#include "gateway/inbound/v2_job.hpp"
#include "gateway/ops/observability.hpp"
#include "gateway/rest/rest_job.hpp"
#include "gateway/routing/router.hpp"
#include "gateway/security/authenticator.hpp"
#include "gateway/security/gate.hpp"
#include "gateway/store/store.hpp"

namespace fhirgate::gateway {

class Gateway {
 public:
  // `config` must outlive it. Opens (creating and seeding on first start) the database.
  explicit Gateway(const Config& config);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  const Config& config() const { return config_; }
  const fhir::Model& model() const { return *model_; }
  store::Store& store() { return *store_; }
  const Gate& gate() const { return gate_; }
  GatewayObservers& observers() { return observers_; }
  FeedService& feeds() { return *feeds_; }
  rest::RestHandler& rest() { return *rest_handler_; }
  inbound::V2Handler& v2() { return *v2_handler_; }
  const inbound::V2Service& v2_service() const { return *v2_service_; }
  // The operators' dashboard files and the metrics renderer are set by serve.
  rest::RestServices& rest_services() { return *rest_services_; }

 private:
  const Config& config_;
  std::shared_ptr<const fhir::Model> model_;
  fhir::SearchParamRegistry registry_;
  std::unique_ptr<fhir::Validator> validator_;
  JsonLog log_;
  GatewayObservers observers_;
  // After the observers: the store's writer calls into them, so it must stop before they go, also when
  // the constructor throws (the destructor does not run then; members are destroyed in reverse order).
  std::unique_ptr<store::Store> store_;
  Gate gate_;
  std::unique_ptr<Authenticator> authenticator_;
  Router router_;
  std::unique_ptr<inbound::V2Service> v2_service_;
  std::unique_ptr<FeedService> feeds_;
  std::unique_ptr<PagingCursors> paging_cursors_;  // sealing the `next` links of searches and histories
  std::unique_ptr<rest::RestServices> rest_services_;
  std::unique_ptr<rest::RestHandler> rest_handler_;
  std::unique_ptr<inbound::V2Handler> v2_handler_;
};

}  // namespace fhirgate::gateway
