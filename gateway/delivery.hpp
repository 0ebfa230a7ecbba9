#pragma once
// Delivery workers, first part: FHIR REST. One thread per receiving partner takes its due deliveries
// from the outbox
// (store/outbox.hpp; at most the oldest pending one per destination and patient, so order holds across
// retries) and, for each:
//  - reads the version it is about and asks consent whether the receiving partner may have it (as a read
//    by that partner for its default purpose); if not, the delivery is `withheld` and nothing leaves;
//  - PUTs the version to <fhirBaseUrl>/<type>/<id> (DELETE for a deletion) with the partner's timeout;
//  - records the outcome and an AuditEvent (one commit for the pass's deliveries): `delivered` on 2xx;
//  otherwise the attempt is
//    counted and retried after base * 2^(attempts-1) ms (at most max, with jitter: half to all of it),
//    and after maxAttempts the delivery is `dead` with its last error.
// Deliveries survive restarts: they are rows in the database. A partner that hangs holds up only its own
// deliveries.
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gateway/audit_event.hpp"
#include "gateway/config.hpp"
#include "gateway/net/http_out.hpp"
#include "gateway/security.hpp"
#include "gateway/store/store.hpp"

namespace fhirgate::gateway {

class DeliveryWorker {
 public:
  // `security` may be disabled (then consent is not checked and nothing is audited). All must outlive it.
  DeliveryWorker(const Config& config, store::Store& store, Security& security, unsigned poll_ms = 200);
  ~DeliveryWorker();
  DeliveryWorker(const DeliveryWorker&) = delete;
  DeliveryWorker& operator=(const DeliveryWorker&) = delete;

  // One thread per partner that a route sends to.
  void start();
  void stop();  // finishes the attempts in hand

 private:
  void loop(const std::string& destination);
  struct Outcome {
    store::Delivery delivery;  // with its new status, attempts, next attempt and error
    AuditInput audit;
  };
  // One round over a destination's due deliveries, committed together; false when there was none.
  bool pass(const std::string& destination, HttpOut& connection);
  Outcome attempt(store::Delivery delivery, HttpOut& connection);

  const Config& config_;
  store::Store& store_;
  Security& security_;
  unsigned poll_ms_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace fhirgate::gateway
