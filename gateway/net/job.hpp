#pragma once
// What a network session drives for one request or message: the pipeline's chain of stages
// (pipeline/chain.hpp), seen from the session as a job that runs on the io thread until one of its stages
// must run elsewhere — on a worker (validation, off the io threads), in the background (a feed file, which
// may take minutes and waits on the writer), or as a commit on the store's writer thread. The session
// hands that step where it belongs and resumes the job on its own strand afterwards, so no io thread
// ever waits for a worker or the writer. Asio-free: the pipeline implements it without seeing Asio.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fhir/result.hpp"
#include "gateway/net/http_message.hpp"
#include "gateway/store/writer.hpp"

namespace fhirgate::gateway::net {

class Job {
 public:
  enum class Next : std::uint8_t { worker, background, commit, done };
  virtual ~Job() = default;
  // On the io thread: runs stages until one must run elsewhere, or the chain is done.
  virtual Next step() = 0;
  // When step() said worker or background: runs that stage (on a worker thread).
  virtual void run_elsewhere() = 0;
  // When step() said commit: the plan to commit; then committed() with its outcome, on the io thread.
  virtual store::WritePlan take_plan() = 0;
  virtual void committed(Status outcome) = 0;
};

// Runs a job to its end on the calling thread, its commits through `writer` (Writer::run, which blocks):
// for tools, tests and fuzz harnesses that have no io threads. Never on an io thread.
inline void run_inline(Job& job, store::Writer& writer) {
  for (;;) {
    switch (job.step()) {
      case Job::Next::worker:
      case Job::Next::background:
        job.run_elsewhere();
        break;
      case Job::Next::commit:
        job.committed(writer.run(job.take_plan()));
        break;
      case Job::Next::done:
        return;
    }
  }
}

class HttpJob : public Job {
 public:
  // Once step() said done: the response to write.
  virtual HttpResponse take_response() = 0;
};

// Serves HTTP requests: a job per request, and the answer to what goes wrong before a request could be
// handed over (a body too large, malformed HTTP, an exception). Thread-safe.
class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  virtual std::unique_ptr<HttpJob> start(HttpRequest request) = 0;
  virtual HttpResponse error_response(const Error& error) = 0;
};

// One message off an MLLP connection.
struct MllpMessage {
  std::string text;        // the message, or only its head when it was too large
  std::size_t size = 0;    // bytes of the whole message
  bool too_large = false;  // longer than the listener takes: `text` is its first segment
  std::size_t limit = 0;   // the most the listener takes
  std::string partner;     // the listener's partner; empty = identify the sender by MSH-4
  std::string peer;        // the sender's address
};

class MllpJob : public Job {
 public:
  // Once step() said done: the acknowledgements to send, in order (maybe none, as the message's MSH-15/16
  // ask); nullopt: none can be sent, close the connection.
  virtual std::optional<std::vector<std::string>> take_acks() = 0;
};

class MllpHandler {
 public:
  virtual ~MllpHandler() = default;
  virtual std::unique_ptr<MllpJob> start(MllpMessage message) = 0;
  // Bytes of a connection that broke MLLP framing (told once per connection).
  virtual void framing_problem(const std::string& partner, const std::string& peer, std::uint16_t port,
                               const std::string& error) = 0;
};

}  // namespace fhirgate::gateway::net
