#include "gateway/routing/delivery.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <set>

#include "gateway/audit/audit_trail.hpp"

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

// Writes `content` to `path` whole: to <path>.part first, flushed to disk, then renamed, so a receiver
// watching the folder never sees half a file. A file left by an earlier attempt is replaced.
Status write_whole_file(const std::filesystem::path& path, const std::string& content) {
  const auto folder = path.parent_path();
  std::error_code ec;
  if (!std::filesystem::is_directory(folder, ec))
    return Error::make(ErrorCode::busy, "drop folder " + folder.string() + " does not exist");
  const std::string part = path.string() + ".part";
  const auto failed = [&](const std::string& what) {
    return Error::make(ErrorCode::busy, what + " " + part + ": " + std::strerror(errno));
  };
  const int fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return failed("cannot create");
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Error e = failed("cannot write");
      ::close(fd);
      return e;
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    Error e = failed("cannot flush");
    ::close(fd);
    return e;
  }
  ::close(fd);
  if (::rename(part.c_str(), path.string().c_str()) != 0) return failed("cannot rename");
  if (const int dir = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir >= 0) {
    ::fsync(dir);  // the rename itself is durable
    ::close(dir);
  }
  return Ok{};
}

}  // namespace

DeliveryWorker::DeliveryWorker(const Config& config, store::Store& store, const Gate& gate, unsigned poll_ms)
    : config_(config), store_(store), gate_(gate), poll_ms_(poll_ms) {}

DeliveryWorker::~DeliveryWorker() {
  stop();
}

void DeliveryWorker::start(std::string gateway_url) {
  gateway_url_ = std::move(gateway_url);
  std::set<std::string> destinations;
  for (const auto& route : config_.routes) {
    destinations.insert(route.to.begin(), route.to.end());
    if (route.format != "file") continue;
    for (const auto& to : route.to) {  // a drop folder that cannot be made shows up as failed deliveries
      std::error_code ignored;
      std::filesystem::create_directories(find_partner(config_, to)->endpoint.drop_folder, ignored);
    }
  }
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
  Channels channels;  // connections kept open to this destination
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    const bool busy = pass(destination, channels);
    lock.lock();
    if (!busy) wake_.wait_for(lock, std::chrono::milliseconds(poll_ms_), [this] { return stopping_; });
  }
}

bool DeliveryWorker::pass(const std::string& destination, Channels& channels) {
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
    outcomes.push_back(attempt(std::move(d), channels));
  }
  const bool record = gate_.enabled();
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
  // Not saved (store unavailable): the deliveries stay due and are attempted again.
  if (saved && observer_)
    for (const auto& outcome : outcomes) observer_(outcome.delivery);
  return true;
}

DeliveryWorker::Outcome DeliveryWorker::attempt(store::Delivery d, Channels& channels) {
  const PartnerConfig* receiver = find_partner(config_, d.destination);
  // The receiver is the one who looks: it is the AuditEvent's requesting agent.
  AuditInput audit;
  audit.interaction = "update";
  audit.client_id = d.destination;
  audit.client_reference = "Organization/" + d.destination;
  audit.client_display = receiver ? receiver->name : d.destination;
  audit.purpose = receiver && !receiver->purposes.empty() ? receiver->purposes.front() : "TREAT";
  audit.entity_reference = store::delivered_reference(d);
  audit.patient_reference = d.patient;
  audit.correlation_id = d.correlation_id;  // the write's: its journal entries and AuditEvents go together
  if (is_message(d)) {
    audit.interaction = "operation";
    audit.operation = "$process-message";
  }

  // What is sent: the stored version, or the payload of what was passed through.
  std::optional<DeliveryItem> item;
  if (d.version == 0) {
    item = DeliveryItem{d.payload, false};
  } else if (auto version = store_.vread(d.type, d.resource_id, d.version); version && *version) {
    item = DeliveryItem{(*version)->deleted ? std::string() : (*version)->body, (*version)->deleted};
  }
  if (!receiver) {
    d.status = "dead";
    d.last_error = "no partner '" + d.destination + "' in the configuration";
  } else if (!item) {
    d.status = "dead";
    d.last_error = audit.entity_reference + " cannot be read";
  } else {
    if (item->deleted && !is_message(d)) audit.interaction = "delete";
    Result<std::string> withheld = std::string();
    if (gate_.enabled() && !item->deleted) {
      withheld = consent_withholds(d, *item, *receiver, audit.purpose);
    } else if (gate_.enabled()) {
      // A deletion tells of the record: it leaves only to whom the version before it may go.
      auto before = store::last_live_before(
          d.version, [&](std::int64_t v) { return store_.vread(d.type, d.resource_id, v); });
      if (!before) {
        withheld = before.error();
      } else if (!*before) {
        withheld = std::string("the record's last version cannot be read");
      } else {
        store::Delivery last = d;
        last.version = (*before)->version;
        withheld = consent_withholds(last, DeliveryItem{(*before)->body, false}, *receiver, audit.purpose);
      }
    }
    if (!withheld) {
      // The patient's Consents could not be read: nothing leaves; the delivery is tried again later.
      d.last_error = "consent could not be read";
      d.next_attempt_ms = now_ms() + backoff_ms(config_.delivery, std::max<std::int64_t>(1, d.attempts));
    } else if (!withheld->empty()) {
      d.status = "withheld";
      d.last_error = "withheld by consent: " + *withheld;
    } else {
      const ReceiverVerdict verdict = send(d, *item, *receiver, channels, audit.server_address);
      ++d.attempts;
      if (verdict.accepted) {
        d.status = "delivered";
        d.last_error.clear();
      } else {
        d.last_error = verdict.error;
        if (verdict.permanent || d.attempts >= config_.delivery.max_attempts) {
          d.status = "dead";
        } else {
          d.next_attempt_ms = now_ms() + backoff_ms(config_.delivery, d.attempts);
        }
      }
    }
  }
  audit.outcome = d.status == "delivered"  ? AuditOutcome::success
                  : d.status == "withheld" ? AuditOutcome::minor_failure
                                           : AuditOutcome::serious_failure;
  if (d.status != "delivered") audit.outcome_desc = d.last_error;
  return {std::move(d), std::move(audit)};
}

Result<std::string> DeliveryWorker::consent_withholds(const store::Delivery& d, const DeliveryItem& item,
                                                      const PartnerConfig& receiver,
                                                      const std::string& purpose) {
  const Caller caller{&receiver, purpose};
  StoreConsents consents(store_);
  if (!is_message(d)) {
    store::VersionRecord version;
    version.type = d.type;
    version.id = d.resource_id;
    version.version = d.version;
    version.body = item.body;
    auto decision = d.version ? gate_.decide_stored(caller, version, consents, now_ms())
                              : [&]() -> Result<ConsentDecision> {
      auto parsed = fhir::parse_json(item.body);
      if (!parsed) return ConsentDecision{false, false, "unreadable resource", {}, {}};
      return gate_.decide(caller, *parsed, consents, now_ms());
    }();
    if (!decision) return decision.error();
    return decision->permit ? std::string() : decision->reason;
  }
  // A message leaves only if the receiver may have every resource in it.
  auto message = fhir::parse_json(item.body);
  if (!message) return std::string("the message cannot be read");
  const fhir::Node* entries = message->find("entry");
  if (!entries || !entries->is_array()) return std::string();
  for (const auto& entry : entries->items()) {
    const fhir::Node* resource = entry.find("resource");
    if (!resource) continue;
    auto decision = gate_.decide(caller, *resource, consents, now_ms());
    if (!decision) return decision.error();
    if (!decision->permit)
      return std::string(resource->string_at("resourceType")) + " in the message: " + decision->reason;
  }
  return std::string();
}

ReceiverVerdict DeliveryWorker::send(const store::Delivery& d, const DeliveryItem& item,
                                     const PartnerConfig& receiver, Channels& channels,
                                     std::string& address) {
  const auto& endpoint = receiver.endpoint;
  const auto http_failure = [](const OutboundReply& reply) {
    return ReceiverVerdict{false, false, reply.status ? "HTTP " + std::to_string(reply.status) : reply.error};
  };
  if (d.format == "fhir-rest") {
    address = endpoint.fhir_base_url + "/" + d.type + "/" + d.resource_id;
    const auto reply = channels.http.send(item.deleted ? "DELETE" : "PUT", address, "application/fhir+json",
                                          item.body, endpoint.timeout_ms);
    if (reply.status >= 200 && reply.status < 300) return {true, false, ""};
    return http_failure(reply);
  }
  if (d.format == "fhir-message") {
    address = endpoint.fhir_base_url + "/$process-message";
    const std::string message = is_message(d) ? item.body : resource_message(d, item, receiver, gateway_url_);
    const auto reply =
        channels.http.send("POST", address, "application/fhir+json", message, endpoint.timeout_ms);
    if (reply.status == 0) return http_failure(reply);
    return read_message_response(reply.status, reply.body);
  }
  if (d.format == "hl7v2-mllp") {
    address = "mllp://" + endpoint.mllp_host + ":" + std::to_string(endpoint.mllp_port);
    auto adt = patient_adt(d, item, receiver);
    if (!adt) return {false, true, adt.error().issues.front().diagnostics};
    const auto reply = channels.mllp.send(endpoint.mllp_host, endpoint.mllp_port, *adt, endpoint.timeout_ms);
    if (reply.ack.empty()) return {false, false, reply.error};
    return read_ack(reply.ack);
  }
  if (d.format == "file") {
    const auto path = std::filesystem::path(endpoint.drop_folder) / drop_file_name(d);
    address = "file://" + path.string();
    if (Status written = write_whole_file(path, drop_file_content(d, item)); !written)
      return {false, false, written.error().issues.front().diagnostics};
    return {true, false, ""};
  }
  return {false, true, "unknown format '" + d.format + "'"};
}

}  // namespace fhirgate::gateway
