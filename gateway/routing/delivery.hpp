#pragma once
// Delivery workers. One thread per receiving partner takes its due deliveries from the outbox
// (store/outbox.hpp; at most the oldest pending one per destination and patient, so order holds across
// retries) and, for each:
//  - reads the version it is about (or takes its payload: a message, a resource not stored) and asks the
//    gate (security/gate.hpp) whether the receiving partner may have it, as a read by that partner for
//    its default purpose; a message only if it may have every resource in it. If not, the delivery is
//    `withheld` and nothing leaves; when the patient's Consents cannot be read it waits (fail closed);
//  - sends it in the route's format (delivery_formats.hpp) within the partner's timeout: fhir-rest and
//    fhir-message over a kept-open HTTP connection, hl7v2-mllp over a kept-open MLLP connection, file
//    by writing it whole into the partner's drop folder;
//  - records the outcome and an AuditEvent whose requesting agent is the receiving partner — the one who
//    now holds the patient's data — against the patient (one commit for the pass's deliveries): `delivered`
//    when the receiver took it; otherwise the attempt is counted and retried after base * 2^(attempts-1) ms
//    (at most max, with jitter: half to all of it), and after maxAttempts -- or at once when the receiver
//    refused it for good (fatal-error, AR) -- the delivery is `dead` with its last error.
// Deliveries survive restarts: they are rows in the database. A partner that hangs holds up only its own
// deliveries.
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gateway/audit/audit_event.hpp"
#include "gateway/config/config.hpp"
#include "gateway/net/http_out.hpp"
#include "gateway/net/mllp_out.hpp"
#include "gateway/routing/delivery_formats.hpp"
#include "gateway/security/gate.hpp"
#include "gateway/store/store.hpp"

namespace fhirgate::gateway {

class DeliveryWorker {
 public:
  // With the gate disabled (security off) consent is not checked and nothing is audited. All must outlive it.
  DeliveryWorker(const Config& config, store::Store& store, const Gate& gate, unsigned poll_ms = 200);
  ~DeliveryWorker();
  DeliveryWorker(const DeliveryWorker&) = delete;
  DeliveryWorker& operator=(const DeliveryWorker&) = delete;

  // One thread per partner that a route sends to. `gateway_url` names the gateway as a message's source.
  void start(std::string gateway_url);
  void stop();  // finishes the attempts in hand
  // Told of each attempt's outcome once recorded; set before start().
  void set_observer(std::function<void(const store::Delivery&)> observer) { observer_ = std::move(observer); }

 private:
  // The connections a destination's thread keeps open.
  struct Channels {
    HttpOut http;
    MllpOut mllp;
  };
  void loop(const std::string& destination);
  struct Outcome {
    store::Delivery delivery;  // with its new status, attempts, next attempt and error
    AuditInput audit;
  };
  // One round over a destination's due deliveries, committed together; false when there was none.
  bool pass(const std::string& destination, Channels& channels);
  Outcome attempt(store::Delivery delivery, Channels& channels);
  // Why consent keeps the delivery from the receiver; "" when it may have it. Errors: the Consents could
  // not be read (the delivery waits).
  Result<std::string> consent_withholds(const store::Delivery& d, const DeliveryItem& item,
                                        const PartnerConfig& receiver, const std::string& purpose);
  // Sends in the delivery's format; `address` is set to where it went.
  ReceiverVerdict send(const store::Delivery& d, const DeliveryItem& item, const PartnerConfig& receiver,
                       Channels& channels, std::string& address);

  const Config& config_;
  store::Store& store_;
  const Gate& gate_;
  unsigned poll_ms_;
  std::string gateway_url_;  // names the gateway as a message's source
  std::function<void(const store::Delivery&)> observer_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace fhirgate::gateway
