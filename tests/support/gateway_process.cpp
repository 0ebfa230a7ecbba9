#include "tests/support/gateway_process.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/support/paths.hpp"
#include "tests/support/sanitizers.hpp"

namespace fhirgate::testing {

GatewayProcess::GatewayProcess(std::vector<std::string> extra_args, std::string dir)
    : dir_(dir.empty() ? temp_dir() : std::move(dir)) {
  std::vector<std::string> args{FHIRGATE_BINARY, "serve", "--port", "0", "--db", dir_ + "/fhirgate.db"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  int out[2];
  if (pipe(out) != 0) throw std::runtime_error("pipe failed");
  pid_ = fork();
  if (pid_ == 0) {
    dup2(out[1], 1);
    const int err = open((dir_ + "/stderr.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(err, 2);
    ::close(out[0]);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  ::close(out[1]);
  std::string line;
  const auto until = std::chrono::steady_clock::now() + scaled(std::chrono::seconds(30));
  auto has_url_line = [&line] {
    const auto marker = line.find("http://127.0.0.1:");
    return marker != std::string::npos && line.find('\n', marker) != std::string::npos;
  };
  while (!has_url_line()) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    pollfd p{out[0], POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[256];
    const ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    line.append(buf, static_cast<std::size_t>(n));
  }
  ::close(out[0]);
  const auto marker = line.find("http://127.0.0.1:");
  if (marker == std::string::npos) {
    stop(SIGKILL);
    throw std::runtime_error("fhirgate did not start: " + line + stderr_text());
  }
  port_ = static_cast<std::uint16_t>(std::stoi(line.substr(marker + 17)));
  const std::string mllp_marker = "MLLP listening on 127.0.0.1:";
  for (auto m = line.find(mllp_marker); m != std::string::npos && m < marker;
       m = line.find(mllp_marker, m + 1))
    mllp_ports_.push_back(static_cast<std::uint16_t>(std::stoi(line.substr(m + mllp_marker.size()))));
}

GatewayProcess::~GatewayProcess() {
  if (pid_ > 0) stop(SIGTERM);
}

int GatewayProcess::stop(int signal_number) {
  if (pid_ <= 0) return 0;
  kill(pid_, signal_number);
  int status = 0;
  const auto until = std::chrono::steady_clock::now() + scaled(std::chrono::seconds(20));
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > until) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  pid_ = -1;
  fail_on_sanitizer_report();
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return -WTERMSIG(status);
}

void GatewayProcess::fail_on_sanitizer_report() const {
  const std::string report = sanitizer_report(stderr_text());
  if (report.empty()) return;
  if (doctest::is_running_in_test) {
    FAIL_CHECK("fhirgate (" << dir_ << ") reported:\n" << report);
    return;
  }
  // Stopped after the last test (the shared gateway): no test left to fail, so the run fails here.
  std::fprintf(stderr, "fhirgate (%s), stopped after the tests, reported:\n%s\n", dir_.c_str(),
               report.c_str());
  std::_Exit(1);
}

std::string GatewayProcess::stderr_text() const {
  std::ifstream in(dir_ + "/stderr.log");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace fhirgate::testing
