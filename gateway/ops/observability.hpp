#pragma once
// What operators watch besides the journal (docs/operators.md): the metrics the gateway keeps for
// GET /metrics, the structured log (one JSON line per request or message on stderr), and the journal's
// housekeeping (payloads, old entries and old feed files purged on a timer).
//
// GatewayObservers is what the pipeline's finish stage tells, once per exchange and after its commit:
// a REST request answered (on_request), an inbound journal entry committed (on_journal: counted, and
// logged unless it was a REST request, which has its own line), a delivery attempt recorded
// (on_delivery). Nothing here depends on the layers above: they hand over plain values. Log lines and
// metric labels carry no patient data: journal errors name the field and the problem only.
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gateway/config/config.hpp"
#include "gateway/ops/metrics.hpp"
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

// One answered REST request, for the metrics and its log line.
struct RequestLine {
  std::string method;
  std::string path;
  std::string interaction;  // read, search-type, create, ..., transaction, operation, ops, other
  std::string resource;     // the resource type addressed, or "" (operations on the system, _ops)
  int status = 0;
  double seconds = 0;  // from the request's dispatch to its answer
  std::string correlation_id;
  std::string partner;  // the caller, when known
  std::string cause;    // the internal cause of a failure (Error::internal), or ""
};

class GatewayObservers {
 public:
  explicit GatewayObservers(JsonLog& log);

  Metrics& metrics() { return metrics_; }
  // Collectors for what is read at scrape time.
  void watch_queues(store::Store& store);
  void watch_connections(std::function<std::size_t()> open_connections);

  void on_journal(const store::JournalEntry& entry);
  void on_request(const RequestLine& done);
  void on_delivery(const store::Delivery& delivery, const std::string& correlation_id);
  // A decision made from a patient's Consents: "permit", "deny" or "break-glass".
  void on_consent(std::string_view decision);
  void on_invalid(const std::string& type);
  // Bytes of an MLLP connection that broke framing (the first of each connection).
  void on_mllp_framing(const std::string& partner, const std::string& peer, std::uint16_t port,
                       const std::string& error);
  void on_commit(std::size_t plans, double seconds);

 private:
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

// Purges journal payloads older than payload_retention_days and entries older than retention_days, and
// the files in the feed folders' done/ and failed/ folders (the inputs taken and their result files)
// older than payload_retention_days, at start and then hourly, on its own thread.
class JournalKeeper {
 public:
  // `feed_folders`: the watched inbound folders (each with its done/ and failed/).
  JournalKeeper(const JournalConfig& config, store::Writer& writer,
                std::vector<std::string> feed_folders = {});
  ~JournalKeeper();
  JournalKeeper(const JournalKeeper&) = delete;
  JournalKeeper& operator=(const JournalKeeper&) = delete;

 private:
  void loop();
  void purge_feed_files(std::int64_t before_ms);
  JournalConfig config_;
  store::Writer& writer_;
  std::vector<std::string> feed_folders_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace fhirgate::gateway
