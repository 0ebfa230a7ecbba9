#pragma once
// Starts the real fhirgate binary on port 0 with a temporary database and stops it: integration tests
// talk to it over real sockets.
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace fhirgate::testing {

class GatewayProcess {
 public:
  // Starts `fhirgate serve --port 0 --db <dir>/fhirgate.db` plus `extra_args`; waits (bounded) for the
  // "listening" line. `dir` empty: a fresh temporary folder. Throws when it does not come up.
  explicit GatewayProcess(std::vector<std::string> extra_args = {}, std::string dir = {});
  ~GatewayProcess();  // SIGTERM, then SIGKILL if it does not exit

  std::uint16_t port() const { return port_; }
  // The MLLP ports from the "MLLP listening on 127.0.0.1:PORT" lines before the HTTP one, in order;
  // mllp_port() is the first (0 when none).
  std::uint16_t mllp_port() const { return mllp_ports_.empty() ? 0 : mllp_ports_.front(); }
  const std::vector<std::uint16_t>& mllp_ports() const { return mllp_ports_; }
  const std::string& dir() const { return dir_; }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Sends a signal and waits for exit; returns the exit status (or -signal). Bounded wait. A sanitizer
  // report in the process's stderr fails the current test (after the last test: ends the run with 1).
  int stop(int signal_number = 15);
  // What the process wrote to stderr so far.
  std::string stderr_text() const;

 private:
  void fail_on_sanitizer_report() const;

  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  std::vector<std::uint16_t> mllp_ports_;
  std::string dir_;
};

}  // namespace fhirgate::testing
