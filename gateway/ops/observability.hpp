#pragma once
// What operators watch besides the journal (docs/operators.md): the metrics the gateway keeps for
// GET /metrics, the structured log (one JSON line per request or message on stderr), and the journal's
// housekeeping (payloads and old entries purged on a timer).
//
// GatewayObservers is the store's write listener: it passes writes on to the router (when there are
// routes) and counts and logs each inbound journal entry; REST requests are counted and logged when
// answered (on_request), deliveries after each attempt (on_delivery).
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "gateway/config/config.hpp"
#include "gateway/ops/metrics.hpp"
#include "gateway/net/mllp_server.hpp"
#include "gateway/rest/api.hpp"
#include "gateway/routing/router.hpp"
#include "gateway/store/store.hpp"

namespace fhirgate::gateway {

// The fields of one log line, appended as JSON as they are given (no tree: a line per request).
class LogFields {
 public:
  LogFields& text(std::string_view key, std::string_view value);
  LogFields& number(std::string_view key, double value);
  const std::string& json() const { return json_; }  // `"k":v,"k":v`, without braces

 private:
  void key(std::string_view key);
  std::string json_;
};

// JSON lines on stderr, each with time, level and event first; thread-safe.
class JsonLog {
 public:
  enum class Level { debug, info, warn, error };
  explicit JsonLog(const std::string& level);
  bool enabled(Level level) const { return level >= least_; }
  void write(Level level, std::string_view event, const LogFields& fields);

 private:
  Level least_;
  std::mutex mutex_;
};

class GatewayObservers : public store::WriteListener {
 public:
  // `router` may be null (no routes).
  GatewayObservers(const Router* router, JsonLog& log);

  Metrics& metrics() { return metrics_; }
  // Collectors for what is read at scrape time.
  void watch_queues(store::Store& store);
  void watch_connections(std::function<std::size_t()> open_connections);

  void on_write(store::WriteTxn& txn, const store::VersionRecord& record,
                const fhir::Node* resource) const override;
  void on_pass_through(store::WriteTxn& txn, const store::PassThrough& item) const override;
  void on_journal(const store::JournalEntry& entry) const override;

  void on_request(const rest::RequestDone& done);
  void on_delivery(const store::Delivery& delivery, const std::string& correlation_id);
  void on_consent(const ConsentDecision& decision);
  void on_invalid(const std::string& type);
  void on_mllp_framing(const MllpFramingProblem& problem);
  void on_commit(std::size_t plans, double seconds);

 private:
  const Router* router_;
  JsonLog& log_;
  Metrics metrics_;
  CounterFamily& requests_;
  HistogramFamily& request_seconds_;
  CounterFamily& messages_;
  CounterFamily& consent_;
  CounterFamily& invalid_;
  CounterFamily& framing_;
  HistogramFamily& commit_plans_;
  HistogramFamily& commit_seconds_;
  GaugeFamily& queue_depth_;
  GaugeFamily& queue_oldest_;
  GaugeFamily& resident_;
  GaugeFamily& connections_;
  GaugeFamily& open_fds_;
};

// Purges journal payloads older than payload_retention_days and entries older than retention_days, at
// start and then hourly, on its own thread.
class JournalKeeper {
 public:
  JournalKeeper(const JournalConfig& config, store::Writer& writer);
  ~JournalKeeper();
  JournalKeeper(const JournalKeeper&) = delete;
  JournalKeeper& operator=(const JournalKeeper&) = delete;

 private:
  void loop();
  JournalConfig config_;
  store::Writer& writer_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace fhirgate::gateway
