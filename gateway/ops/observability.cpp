#include "gateway/ops/observability.hpp"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "fhir/datetime.hpp"
#include "fhir/json.hpp"

namespace fhirgate::gateway {
namespace {

std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

const char* level_name(JsonLog::Level level) {
  switch (level) {
    case JsonLog::Level::debug:
      return "debug";
    case JsonLog::Level::info:
      return "info";
    case JsonLog::Level::warn:
      return "warn";
    case JsonLog::Level::error:
      return "error";
  }
  return "info";
}

// Deliveries' outcomes as the journal names them.
store::JournalStatus delivery_status(const store::Delivery& d) {
  using store::JournalStatus;
  if (d.status == "pending") return d.attempts ? JournalStatus::failed : JournalStatus::routed;
  if (d.status == "dead") return JournalStatus::dead_letter;
  if (d.status == "delivered") return JournalStatus::delivered;
  if (d.status == "withheld") return JournalStatus::withheld;
  return JournalStatus::discarded;
}

}  // namespace

void LogFields::key(std::string_view key) {
  if (!json_.empty()) json_ += ',';
  fhir::append_json_string(json_, key);
  json_ += ':';
}

LogFields& LogFields::text(std::string_view k, std::string_view value) {
  key(k);
  fhir::append_json_string(json_, value);
  return *this;
}

LogFields& LogFields::number(std::string_view k, double value) {
  key(k);
  char text[32];
  std::snprintf(text, sizeof text, "%.15g", value);
  json_ += text;
  return *this;
}

JsonLog::JsonLog(const std::string& level)
    : least_(level == "debug"   ? Level::debug
             : level == "warn"  ? Level::warn
             : level == "error" ? Level::error
                                : Level::info) {}

void JsonLog::write(Level level, std::string_view event, const LogFields& fields) {
  if (!enabled(level)) return;
  LogFields head;
  head.text("time", fhir::format_instant(now_ms())).text("level", level_name(level)).text("event", event);
  std::string line = "{" + head.json();
  if (!fields.json().empty()) line += "," + fields.json();
  line += "}\n";
  std::lock_guard lock(mutex_);
  for (std::size_t done = 0; done < line.size();) {  // one write: lines from threads never interleave
    const ssize_t n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
    if (n <= 0 && errno != EINTR) return;
    if (n > 0) done += static_cast<std::size_t>(n);
  }
}

GatewayObservers::GatewayObservers(JsonLog& log)
    : log_(log),
      requests_(metrics_.counter("fhirgate_http_requests_total", "HTTP requests answered",
                                 {"interaction", "resource", "code"})),
      request_seconds_(metrics_.histogram(
          "fhirgate_http_request_duration_seconds", "Time from a request's dispatch to its answer",
          {"interaction"}, {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10})),
      messages_(metrics_.counter("fhirgate_messages_total",
                                 "Journal entries: inbound messages and requests that carry data by outcome, "
                                 "outbound delivery attempts by outcome",
                                 {"partner", "direction", "status"})),
      consent_(metrics_.counter("fhirgate_consent_decisions_total", "Decisions made from patients' Consents",
                                {"decision"})),
      invalid_(metrics_.counter("fhirgate_validation_failures_total",
                                "Resources refused on write as invalid (R4 or the configured profiles)",
                                {"resource"})),
      framing_(metrics_.counter("fhirgate_mllp_framing_errors_total",
                                "MLLP connections whose bytes broke framing (skipped, unanswered)",
                                {"partner"})),
      commit_plans_(metrics_.histogram("fhirgate_sqlite_commit_plans", "Write plans per SQLite transaction",
                                       {}, {1, 2, 4, 8, 16, 32, 64, 128, 256, 512})),
      commit_seconds_(metrics_.histogram("fhirgate_sqlite_commit_seconds",
                                         "Time from BEGIN to COMMIT of one SQLite transaction", {},
                                         {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1})),
      queue_depth_(metrics_.gauge("fhirgate_delivery_queue_depth", "Pending deliveries per destination",
                                  {"destination"})),
      queue_oldest_(metrics_.gauge("fhirgate_delivery_queue_oldest_age_seconds",
                                   "Age of the oldest pending delivery per destination", {"destination"})),
      resident_(metrics_.gauge("fhirgate_process_resident_memory_bytes", "Resident set size")),
      connections_(metrics_.gauge("fhirgate_http_open_connections", "HTTP connections open")),
      open_fds_(metrics_.gauge("fhirgate_process_open_fds", "Open file descriptors")) {
  metrics_.add_collector([this](Metrics::Sink& sink) {
    sink.sample(resident_, {}, Metrics::process_resident_bytes());
    sink.sample(open_fds_, {}, Metrics::process_open_fds());
  });
}

void GatewayObservers::watch_queues(store::Store& store) {
  metrics_.add_collector([this, &store](Metrics::Sink& sink) {
    auto queues = store.queues();
    if (!queues) return;
    const auto now = now_ms();
    for (const auto& q : *queues) {
      sink.sample(queue_depth_, {q.destination}, static_cast<double>(q.depth));
      sink.sample(queue_oldest_, {q.destination},
                  static_cast<double>(std::max<std::int64_t>(0, now - q.oldest_ms)) / 1000.0);
    }
  });
}

void GatewayObservers::watch_connections(std::function<std::size_t()> open_connections) {
  metrics_.add_collector([this, open_connections = std::move(open_connections)](Metrics::Sink& sink) {
    sink.sample(connections_, {}, static_cast<double>(open_connections()));
  });
}

void GatewayObservers::on_journal(const store::JournalEntry& entry) {
  if (entry.direction != "in") return;  // deliveries are counted per attempt (on_delivery)
  const std::string status(store::to_string(entry.status));
  messages_.inc({entry.partner, "in", status});
  if (entry.transport == "http") return;  // logged as its request
  const auto level = store::is_problem(entry.status) ? JsonLog::Level::warn : JsonLog::Level::info;
  if (!log_.enabled(level)) return;
  LogFields fields;
  fields.text("correlationId", entry.correlation_id)
      .text("partner", entry.partner)
      .text("direction", "in")
      .text("transport", entry.transport)
      .text("format", entry.format)
      .text("type", entry.type)
      .text("status", status)
      .number("size", static_cast<double>(entry.size));
  if (!entry.error.empty()) fields.text("error", entry.error);
  log_.write(level, "message", fields);
}

void GatewayObservers::on_request(const RequestLine& done) {
  requests_.inc({done.interaction, done.resource, std::to_string(done.status)});
  request_seconds_.observe({done.interaction}, done.seconds);
  const auto level = done.status >= 500   ? JsonLog::Level::error
                     : done.status >= 400 ? JsonLog::Level::warn
                                          : JsonLog::Level::info;
  if (!log_.enabled(level)) return;
  LogFields fields;
  fields.text("correlationId", done.correlation_id)
      .text("method", done.method)
      .text("path", done.path)
      .text("interaction", done.interaction)
      .number("status", done.status)
      .number("ms", std::round(done.seconds * 1e6) / 1000);
  if (!done.partner.empty()) fields.text("partner", done.partner);
  if (!done.cause.empty()) fields.text("cause", done.cause);
  log_.write(level, "request", fields);
}

void GatewayObservers::on_delivery(const store::Delivery& d, const std::string& correlation_id) {
  const store::JournalStatus journal_status = delivery_status(d);
  const std::string status(store::to_string(journal_status));
  messages_.inc({d.destination, "out", status});
  const auto level = store::is_problem(journal_status) ? JsonLog::Level::warn : JsonLog::Level::info;
  if (!log_.enabled(level)) return;
  LogFields fields;
  fields.text("correlationId", correlation_id)
      .text("partner", d.destination)
      .text("direction", "out")
      .text("format", d.format)
      .text("type", d.event.empty() ? store::delivered_reference(d) : d.event)
      .text("status", status)
      .number("attempts", static_cast<double>(d.attempts))
      .number("deliveryId", static_cast<double>(d.id));
  if (!d.last_error.empty() && journal_status != store::JournalStatus::delivered)
    fields.text("error", d.last_error);
  log_.write(level, "delivery", fields);
}

void GatewayObservers::on_consent(std::string_view decision) {
  consent_.inc({std::string(decision)});
}

void GatewayObservers::on_invalid(const std::string& type) {
  invalid_.inc({type});
}

void GatewayObservers::on_mllp_framing(const std::string& partner, const std::string& peer,
                                       std::uint16_t port, const std::string& error) {
  framing_.inc({partner});
  LogFields fields;
  fields.text("partner", partner).text("peer", peer).number("port", port).text("error", error);
  log_.write(JsonLog::Level::warn, "mllp-framing", fields);
}

void GatewayObservers::on_commit(std::size_t plans, double seconds) {
  commit_plans_.observe({}, static_cast<double>(plans));
  commit_seconds_.observe({}, seconds);
}

JournalKeeper::JournalKeeper(const JournalConfig& config, store::Writer& writer,
                             std::vector<std::string> feed_folders)
    : config_(config), writer_(writer), feed_folders_(std::move(feed_folders)), thread_([this] { loop(); }) {}

void JournalKeeper::purge_feed_files(std::int64_t before_ms) {
  namespace fs = std::filesystem;
  const auto cutoff = fs::file_time_type::clock::now() -
                      std::chrono::milliseconds(std::max<std::int64_t>(0, now_ms() - before_ms));
  for (const auto& folder : feed_folders_) {
    for (const char* kept : {"done", "failed"}) {
      std::error_code ec;
      for (const auto& entry : fs::directory_iterator(fs::path(folder) / kept, ec)) {
        std::error_code file_ec;
        if (!entry.is_regular_file(file_ec)) continue;
        const auto written = entry.last_write_time(file_ec);
        if (!file_ec && written < cutoff) fs::remove(entry.path(), file_ec);
      }
    }
  }
}

JournalKeeper::~JournalKeeper() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void JournalKeeper::loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    constexpr std::int64_t kDay = 86400000;
    const auto now = now_ms();
    const std::int64_t payloads_before = now - config_.payload_retention_days * kDay;
    const std::int64_t entries_before = now - config_.retention_days * kDay;
    (void)writer_.run([payloads_before, entries_before](store::WriteTxn& txn) -> Status {
      txn.purge_journal(payloads_before, entries_before);
      return Ok{};
    });  // not purged now (store busy): the next round does it
    purge_feed_files(payloads_before);
    lock.lock();
    wake_.wait_for(lock, std::chrono::hours(1), [this] { return stopping_; });
  }
}

}  // namespace fhirgate::gateway
