#pragma once
// A loopback stand-in for a partner's MLLP endpoint (HL7 v2 over TCP), for tests of outbound v2 delivery:
// it listens on 127.0.0.1, records every message received and answers each as the test tells it to (an
// ACK with AA, AE or AR, nothing, or by closing the connection). Plain POSIX sockets and std::thread, like
// FakePartner; the framing and the ACK are written here by hand, so the fake shares no code with what it
// tests.
//
// Threads: one accepts; each connection is served on its own thread, message after message (keep-alive,
// several connections at once). Every public member may be called from any thread at any time (the
// destructor, as always, only once nothing else uses the object).
//
// MLLP: a message is the bytes between 0x0B and 0x1C 0x0D; bytes outside a frame are skipped. A frame
// growing past 64 MiB closes the connection without being recorded.
//
// The ACK: MSH with the field separator and encoding characters of the received message, MSH-3/4 and
// MSH-5/6 swapped, MSH-7 the current UTC time, MSH-9 ACK^<received trigger>^ACK, MSH-10 a new control id
// ("ACK1", "ACK2", ...), MSH-11 and MSH-12 copied; then MSA|<code>|<received MSH-10>. Segments end in CR.
// A received message that does not start with MSH is answered all the same, with | and ^~\& and the
// received fields empty.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace fhirgate::testing {

class FakeMllpPartner {
 public:
  // How the messages that follow are answered:
  enum class Mode {
    aa,     // ACK with MSA-1 AA
    ae,     // ACK with MSA-1 AE
    ar,     // ACK with MSA-1 AR
    hang,   // read the message, then never answer; the connection stays open until the client or stop()
    close,  // read the message, then close the connection without answering
  };

  struct Message {
    std::string text;                          // unframed
    std::chrono::steady_clock::time_point at;  // when its whole frame had been read
  };

  // Listens on 127.0.0.1:`port` (0: any free port) and answers in Mode::aa. Throws std::runtime_error when
  // the socket cannot be set up. SO_REUSEADDR is set, so a partner can come back on the port of one that
  // was stopped. The sockets are close-on-exec, so processes the tests spawn do not inherit them.
  explicit FakeMllpPartner(std::uint16_t port = 0);
  ~FakeMllpPartner();  // stop()
  FakeMllpPartner(const FakeMllpPartner&) = delete;
  FakeMllpPartner& operator=(const FakeMllpPartner&) = delete;

  std::uint16_t port() const { return port_; }

  // The mode for the messages that arrive from now on.
  void set_mode(Mode mode);
  // The next `n` messages (of any connection) are answered as Mode::ae, then the current mode applies
  // again. Replaces a count still running; n <= 0 cancels it.
  void fail_next(int n);

  // Every message received so far, in arrival order, including those answered AE/AR, hung or closed.
  std::vector<Message> messages() const;
  // Waits until at least `n` messages were received or `timeout` passes; returns whether they were.
  bool wait_for_messages(std::size_t n, std::chrono::milliseconds timeout) const;
  // How many connections were accepted so far (open or closed since).
  std::size_t connections() const;

  // Closes every open connection, as a partner's idle timeout would, and returns once they are closed;
  // keeps listening.
  void drop_connections();
  // "Partner down": stops accepting, closes the listener (later connects are refused) and every open
  // connection, hung ones included, and joins all threads; returns promptly. Idempotent.
  void stop();

  // The ACK for `received` answered with `code` (AA, AE, AR) and control id `control_id`; see above.
  static std::string make_ack(std::string_view received, std::string_view code, std::string_view control_id);

 private:
  struct Connection {
    std::thread thread;
    std::atomic<bool> done{false};
  };

  void accept_loop();
  void serve(int fd);
  // Records a message; returns the mode to answer it in and, unless hang or close, the ACK's control id.
  Mode record(Message message, std::string& control_id);

  std::uint16_t port_ = 0;
  int listen_fd_ = -1;
  // stop() writes one byte to wake_write_ and never reads it: wake_read_ stays readable, so every poll()
  // that includes it, now or later, returns.
  int wake_read_ = -1;
  int wake_write_ = -1;
  std::thread accept_thread_;
  std::list<Connection> threads_;  // touched by the accept thread, then by stop() once it is joined
  std::mutex stop_mutex_;          // guards stopped_ and the teardown
  bool stopped_ = false;

  mutable std::mutex mutex_;  // guards what follows
  mutable std::condition_variable changed_;
  Mode mode_ = Mode::aa;
  int fail_next_ = 0;
  std::vector<Message> messages_;
  std::size_t accepted_ = 0;
  std::size_t acks_sent_ = 0;        // numbers the ACK control ids
  std::map<std::size_t, int> open_;  // connection number -> its socket, while its thread serves it
};

}  // namespace fhirgate::testing
