#pragma once
// The Exchange: one request or message on its way through the gateway, whatever door it came in by — a
// REST interaction, an entry of a Bundle, a FHIR message, an HL7 v2 message, a feed file's rows, a
// delivery. The stages of its chain (chain.hpp) fill it in order; the first error stops the chain; then
// the record step (record.hpp) turns it into its AuditEvent and journal entry inside the same commit as
// its data, and the finish stage into the metrics and the log line. Nothing else writes those.
//
// Threads: an exchange belongs to one job; its stages run one after the other on the io thread, a worker
// or the writer thread, each handing over to the next through the job's session (a happens-before edge),
// never concurrently.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fhir/result.hpp"
#include "gateway/audit/audit_event.hpp"
#include "gateway/security/gate.hpp"
#include "gateway/store/journal.hpp"
#include "gateway/store/writer.hpp"

namespace fhirgate::gateway::pipeline {

inline std::int64_t wall_clock_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

struct Exchange {
  // Where it came from. `origin` is the partner whose data it carries (routes match it, and it is the
  // journal's partner): the caller for REST, the sending partner of a message or feed, also with security
  // off when the caller is nobody.
  std::string correlation_id;
  std::int64_t received_ms = wall_clock_ms();
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  Caller caller;  // null partner: security off (or not yet authenticated)
  std::string origin;
  std::string client_address;

  // The first error: the chain stops at it (the commit still records the exchange, and the response and
  // finish stages still run).
  std::optional<Error> error;
  void fail(Error e) {
    if (!error) error = std::move(e);
  }
  bool failed() const { return error.has_value(); }

  // Its records. The AuditEvent being filled in: absent with security off and for the open endpoints.
  // `seen_patients`: further patients whose data left (a search's). The journal entry: requests and
  // messages that carry data. A held write (stages/write.hpp) sets `held` and the held rows it made.
  std::optional<AuditInput> audit;
  std::vector<std::string> seen_patients;
  std::optional<store::JournalEntry> journal;
  std::vector<std::string>
      patients;  // further patients it was about, for its journal entry (a Bundle's entries')
  bool held = false;
  std::vector<std::int64_t> held_ids;
  // Journal stages: name and milliseconds since `started`.
  std::vector<std::pair<std::string, double>> timings;
  void mark(std::string stage) {
    timings.emplace_back(
        std::move(stage),
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count());
  }

  // The exchange's own write, for the commit stage: run in a savepoint of its own; an error it returns
  // becomes the exchange's error (its changes undone, its records still written).
  store::WritePlan plan;
  // What an entry point keeps of every exchange besides its AuditEvent and journal entry (the HL7 v2
  // inbound log), written with them whatever the outcome; may be null.
  std::function<void(store::WriteTxn&)> before_record;
  // Whether the commit went through (false: the transaction failed, and nothing of it is stored).
  bool committed = false;
};

// Names a stored version and its patient in an AuditEvent being filled in (the data entity, version
// specific, and the patient: a Patient is its own; another type's is in its content).
void note_record(AuditInput& audit, const std::string& type, const std::string& id, std::int64_t version,
                 const fhir::Node* resource);

}  // namespace fhirgate::gateway::pipeline
