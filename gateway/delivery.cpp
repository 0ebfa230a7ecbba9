#include "gateway/delivery.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <set>

#include "gateway/audit_trail.hpp"
#include "gateway/net/http_out.hpp"

namespace fhirgate::gateway {
namespace {

std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// Exponential backoff with jitter: half to all of min(max, base * 2^(attempts - 1)).
std::int64_t backoff_ms(const DeliveryConfig& c, std::int64_t attempts) {
  static thread_local std::mt19937_64 random{std::random_device{}()};
  const double full = std::min<double>(
      c.max_delay_ms, c.base_delay_ms * std::pow(2.0, std::max<std::int64_t>(0, attempts - 1)));
  return static_cast<std::int64_t>(full * std::uniform_real_distribution<double>(0.5, 1.0)(random));
}

}  // namespace

DeliveryWorker::DeliveryWorker(const Config& config, store::Store& store, Security& security,
                               unsigned poll_ms)
    : config_(config), store_(store), security_(security), poll_ms_(poll_ms) {}

DeliveryWorker::~DeliveryWorker() {
  stop();
}

void DeliveryWorker::start() {
  std::set<std::string> destinations;
  for (const auto& route : config_.routes) destinations.insert(route.to.begin(), route.to.end());
  for (const auto& destination : destinations)
    threads_.emplace_back([this, destination] { loop(destination); });
}

void DeliveryWorker::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& thread : threads_) thread.join();
  threads_.clear();
}

void DeliveryWorker::loop(const std::string& destination) {
  HttpOut connection;  // kept open to this destination
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    const bool busy = pass(destination, connection);
    lock.lock();
    if (!busy) wake_.wait_for(lock, std::chrono::milliseconds(poll_ms_), [this] { return stopping_; });
  }
}

bool DeliveryWorker::pass(const std::string& destination, HttpOut& connection) {
  auto due = store_.due_deliveries(destination, now_ms(), 100);
  if (!due || due->empty()) return false;
  // The outcomes of one pass are committed together (one commit per pass, not per delivery). A crash
  // between sending and that commit sends those deliveries again: delivery is at least once.
  std::vector<Outcome> outcomes;
  for (auto& d : *due) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) break;
    }
    outcomes.push_back(attempt(std::move(d), connection));
  }
  const bool record = security_.enabled();
  const Status saved = store_.writer().run([&outcomes, record](store::WriteTxn& txn) -> Status {
    for (auto& [delivery, audit] : outcomes) {
      txn.update_delivery(delivery);
      if (record) {
        audit.recorded_ms = txn.now_ms();
        record_audit(txn, audit);
      }
    }
    return Ok{};
  });
  (void)saved;  // not saved (store unavailable): the deliveries stay due and are attempted again
  return true;
}

DeliveryWorker::Outcome DeliveryWorker::attempt(store::Delivery d, HttpOut& connection) {
  const PartnerConfig* receiver = find_partner(config_, d.destination);
  AuditInput audit;
  audit.interaction = "update";
  audit.client_id = "fhirgate";
  audit.client_display = "fhirgate delivery to " + d.destination;
  audit.gateway_name = receiver ? receiver->name : d.destination;
  audit.purpose = receiver && !receiver->purposes.empty() ? receiver->purposes.front() : "TREAT";
  audit.entity_reference = d.type + "/" + d.resource_id + "/_history/" + std::to_string(d.version);
  audit.patient_reference = d.patient;

  const auto version = store_.vread(d.type, d.resource_id, d.version);
  if (!receiver || receiver->endpoint.fhir_base_url.empty()) {
    d.status = "dead";
    d.last_error = "partner '" + d.destination + "' has no FHIR endpoint";
  } else if (!version || !*version) {
    d.status = "dead";
    d.last_error = "version " + audit.entity_reference + " cannot be read";
  } else {
    const auto& rec = **version;
    const std::string url = receiver->endpoint.fhir_base_url + "/" + d.type + "/" + d.resource_id;
    audit.server_address = url;
    audit.interaction = rec.deleted ? "delete" : "update";
    bool permitted = true;
    if (security_.enabled() && !rec.deleted) {
      const auto decision = security_.decide_stored(*receiver, audit.purpose, d.type, d.resource_id, rec.body,
                                                    "access", now_ms());
      permitted = decision.permit;
      if (!permitted) {
        d.status = "withheld";
        d.last_error = "withheld by consent: " + decision.reason;
      }
    }
    if (permitted) {
      const auto reply = connection.send(rec.deleted ? "DELETE" : "PUT", url, "application/fhir+json",
                                         rec.body, receiver->endpoint.timeout_ms);
      ++d.attempts;
      if (reply.status >= 200 && reply.status < 300) {
        d.status = "delivered";
        d.last_error.clear();
      } else {
        d.last_error = reply.status ? "HTTP " + std::to_string(reply.status) : reply.error;
        if (d.attempts >= config_.delivery.max_attempts) {
          d.status = "dead";
        } else {
          d.next_attempt_ms = now_ms() + backoff_ms(config_.delivery, d.attempts);
        }
      }
    }
  }
  audit.outcome = d.status == "delivered" ? "0" : d.status == "withheld" ? "4" : "8";
  if (d.status != "delivered") audit.outcome_desc = d.last_error;
  return {std::move(d), std::move(audit)};
}

}  // namespace fhirgate::gateway
