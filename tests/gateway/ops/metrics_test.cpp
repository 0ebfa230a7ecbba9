#include "gateway/ops/metrics.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace fhirgate::gateway {
namespace {

constexpr int kThreads = 4;
constexpr int kIncrements = 100000;

// Runs `work(thread index)` on kThreads threads at once and waits for all.
template <class Work>
void on_threads(Work work) {
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(work, t);
  for (std::thread& thread : threads) thread.join();
}

// Descriptors open, found by asking for each one's flags.
int open_descriptors_by_fcntl() {
  int open = 0;
  for (int fd = 0; fd < 65536; ++fd) open += fcntl(fd, F_GETFD) != -1;
  return open;
}

TEST_CASE("metrics: a counter renders its series sorted by label values, whole counts as integers") {
  Metrics metrics;
  CounterFamily& requests = metrics.counter("fhirgate_http_requests_total", "HTTP requests answered.",
                                            {"interaction", "resource", "code"});
  requests.inc({"read", "Patient", "200"});
  requests.inc({"read", "Patient", "200"}, 2);
  requests.inc({"read", "Patient", "404"});
  Counter& created = requests.with({"create", "Observation", "201"});
  created.inc();
  created.add(4);
  CounterFamily& seconds = metrics.counter("fhirgate_busy_seconds_total", "Time spent busy.");
  seconds.with().add(2.5);
  seconds.with().add(1);
  metrics.counter("fhirgate_unused_total", "Never incremented.", {"code"});

  CHECK(metrics.render() == R"(# HELP fhirgate_http_requests_total HTTP requests answered.
# TYPE fhirgate_http_requests_total counter
fhirgate_http_requests_total{interaction="create",resource="Observation",code="201"} 5
fhirgate_http_requests_total{interaction="read",resource="Patient",code="200"} 3
fhirgate_http_requests_total{interaction="read",resource="Patient",code="404"} 1
# HELP fhirgate_busy_seconds_total Time spent busy.
# TYPE fhirgate_busy_seconds_total counter
fhirgate_busy_seconds_total 3.5
# HELP fhirgate_unused_total Never incremented.
# TYPE fhirgate_unused_total counter
)");
  CHECK(created.value() == 5);
  CHECK(seconds.with().value() == 3.5);
}

TEST_CASE("metrics: a gauge is set, raised and lowered") {
  Metrics metrics;
  GaugeFamily& connections = metrics.gauge("fhirgate_connections", "Open connections.", {"listener"});
  connections.set({"rest"}, 10);
  connections.inc({"rest"});
  connections.dec({"rest"}, 3);
  connections.inc({"mllp"}, 0.25);
  connections.dec({"mllp"});
  Gauge& up = metrics.gauge("fhirgate_up", "1 while serving.").with();
  up.set(1);

  CHECK(metrics.render() == R"(# HELP fhirgate_connections Open connections.
# TYPE fhirgate_connections gauge
fhirgate_connections{listener="mllp"} -0.75
fhirgate_connections{listener="rest"} 8
# HELP fhirgate_up 1 while serving.
# TYPE fhirgate_up gauge
fhirgate_up 1
)");
}

TEST_CASE("metrics: a histogram renders cumulative buckets, +Inf, sum and count") {
  Metrics metrics;
  HistogramFamily& latency =
      metrics.histogram("fhirgate_request_seconds", "Request latency.", {"interaction"}, {0.005, 0.25, 1});
  latency.observe({"read"}, 0.25);  // on a bound: counted in that bucket
  latency.observe({"read"}, 0.125);
  latency.observe({"read"}, 0.5);
  latency.observe({"read"}, 3);
  latency.with({"create"}).observe(0.001);
  HistogramFamily& sizes = metrics.histogram("fhirgate_body_bytes", "Body sizes.", {}, {1024});
  sizes.observe({}, 2048);
  metrics.histogram("fhirgate_unused_seconds", "Never observed.", {}, {1});

  CHECK(metrics.render() == R"(# HELP fhirgate_request_seconds Request latency.
# TYPE fhirgate_request_seconds histogram
fhirgate_request_seconds_bucket{interaction="create",le="0.005"} 1
fhirgate_request_seconds_bucket{interaction="create",le="0.25"} 1
fhirgate_request_seconds_bucket{interaction="create",le="1"} 1
fhirgate_request_seconds_bucket{interaction="create",le="+Inf"} 1
fhirgate_request_seconds_sum{interaction="create"} 0.001
fhirgate_request_seconds_count{interaction="create"} 1
fhirgate_request_seconds_bucket{interaction="read",le="0.005"} 0
fhirgate_request_seconds_bucket{interaction="read",le="0.25"} 2
fhirgate_request_seconds_bucket{interaction="read",le="1"} 3
fhirgate_request_seconds_bucket{interaction="read",le="+Inf"} 4
fhirgate_request_seconds_sum{interaction="read"} 3.875
fhirgate_request_seconds_count{interaction="read"} 4
# HELP fhirgate_body_bytes Body sizes.
# TYPE fhirgate_body_bytes histogram
fhirgate_body_bytes_bucket{le="1024"} 0
fhirgate_body_bytes_bucket{le="+Inf"} 1
fhirgate_body_bytes_sum 2048
fhirgate_body_bytes_count 1
# HELP fhirgate_unused_seconds Never observed.
# TYPE fhirgate_unused_seconds histogram
)");
  CHECK(latency.with({"read"}).count() == 4);
  CHECK(latency.with({"read"}).sum() == 3.875);
}

TEST_CASE("metrics: a NaN observation counts in +Inf only") {
  Metrics metrics;
  Histogram& histogram = metrics.histogram("fhirgate_x", "x", {}, {1}).with();
  histogram.observe(std::numeric_limits<double>::quiet_NaN());
  CHECK(metrics.render() == R"(# HELP fhirgate_x x
# TYPE fhirgate_x histogram
fhirgate_x_bucket{le="1"} 0
fhirgate_x_bucket{le="+Inf"} 1
fhirgate_x_sum NaN
fhirgate_x_count 1
)");
}

TEST_CASE("metrics: label values escape backslash, quote and newline; help escapes backslash and newline") {
  Metrics metrics;
  GaugeFamily& family = metrics.gauge("fhirgate_escaped", "Line one\nback\\slash \"quoted\"", {"path"});
  family.set({"C:\\feeds\\\"in\"\nnext"}, 1);
  CHECK(metrics.render() == R"(# HELP fhirgate_escaped Line one\nback\\slash "quoted"
# TYPE fhirgate_escaped gauge
fhirgate_escaped{path="C:\\feeds\\\"in\"\nnext"} 1
)");
}

TEST_CASE(
    "metrics: numbers: integers plain, others shortest exact, infinities and NaN as Prometheus spells them") {
  Metrics metrics;
  GaugeFamily& value = metrics.gauge("fhirgate_value", "Formatting.", {"case"});
  value.set({"a"}, 42);
  value.set({"b"}, -3);
  value.set({"c"}, 0.1);
  value.set({"d"}, 1.0 / 3);
  value.set({"e"}, 1e-7);
  value.set({"f"}, 123456789012345.0);
  value.set({"g"}, 1e20);
  value.set({"h"}, std::numeric_limits<double>::infinity());
  value.set({"i"}, -std::numeric_limits<double>::infinity());
  value.set({"j"}, std::numeric_limits<double>::quiet_NaN());
  value.set({"k"}, -0.0);
  value.set({"l"}, 2.5e-300);
  CounterFamily& big = metrics.counter("fhirgate_big_total", "A count past 2^53 stays exact.");
  big.with().inc(9007199254740993ULL);

  CHECK(metrics.render() == R"(# HELP fhirgate_value Formatting.
# TYPE fhirgate_value gauge
fhirgate_value{case="a"} 42
fhirgate_value{case="b"} -3
fhirgate_value{case="c"} 0.1
fhirgate_value{case="d"} 0.3333333333333333
fhirgate_value{case="e"} 1e-07
fhirgate_value{case="f"} 123456789012345
fhirgate_value{case="g"} 1e+20
fhirgate_value{case="h"} +Inf
fhirgate_value{case="i"} -Inf
fhirgate_value{case="j"} NaN
fhirgate_value{case="k"} 0
fhirgate_value{case="l"} 2.5e-300
# HELP fhirgate_big_total A count past 2^53 stays exact.
# TYPE fhirgate_big_total counter
fhirgate_big_total 9007199254740993
)");
}

TEST_CASE("metrics: collectors report at each render, in their family's place; their sample wins") {
  Metrics metrics;
  CounterFamily& requests = metrics.counter("fhirgate_requests_total", "Requests.");
  GaugeFamily& pending = metrics.gauge("fhirgate_outbox_pending", "Deliveries waiting.", {"destination"});
  CounterFamily& pages = metrics.counter("fhirgate_db_pages_written_total", "Pages written.");
  GaugeFamily& fds = metrics.gauge("fhirgate_open_fds", "Open descriptors.");
  requests.inc({});
  pending.set({"lab-a"}, 99);  // shown by the collector's value below
  pending.set({"gp"}, 1);
  int scrapes = 0;
  metrics.add_collector([&](Metrics::Sink& sink) {
    ++scrapes;
    sink.sample(pending, {"lab-b"}, 3);
    sink.sample(pending, {"lab-a"}, 12 + scrapes);
    sink.sample(pages, {}, 1000 * scrapes);
  });
  metrics.add_collector([&](Metrics::Sink& sink) { sink.sample(fds, {}, 7); });

  const std::string expected = R"(# HELP fhirgate_requests_total Requests.
# TYPE fhirgate_requests_total counter
fhirgate_requests_total 1
# HELP fhirgate_outbox_pending Deliveries waiting.
# TYPE fhirgate_outbox_pending gauge
fhirgate_outbox_pending{destination="gp"} 1
fhirgate_outbox_pending{destination="lab-a"} 13
fhirgate_outbox_pending{destination="lab-b"} 3
# HELP fhirgate_db_pages_written_total Pages written.
# TYPE fhirgate_db_pages_written_total counter
fhirgate_db_pages_written_total 1000
# HELP fhirgate_open_fds Open descriptors.
# TYPE fhirgate_open_fds gauge
fhirgate_open_fds 7
)";
  CHECK(metrics.render() == expected);
  const std::string second = metrics.render();
  CHECK(second.find("fhirgate_outbox_pending{destination=\"lab-a\"} 14\n") != std::string::npos);
  CHECK(second.find("fhirgate_db_pages_written_total 2000\n") != std::string::npos);
  CHECK(scrapes == 2);
}

TEST_CASE("metrics: a collector's misuse throws out of render") {
  Metrics metrics;
  Metrics other;
  GaugeFamily& pending = metrics.gauge("fhirgate_outbox_pending", "Deliveries waiting.", {"destination"});
  GaugeFamily& foreign = other.gauge("fhirgate_foreign", "Another registry's.");
  SUBCASE("wrong number of label values") {
    metrics.add_collector([&](Metrics::Sink& sink) { sink.sample(pending, {}, 1); });
    CHECK_THROWS_AS(metrics.render(), std::logic_error);
  }
  SUBCASE("another registry's family") {
    metrics.add_collector([&](Metrics::Sink& sink) { sink.sample(foreign, {}, 1); });
    CHECK_THROWS_AS(metrics.render(), std::logic_error);
  }
}

TEST_CASE("metrics: process helpers read /proc") {
  CHECK(Metrics::process_resident_bytes() > 0);
  const double before = Metrics::process_open_fds();
  CHECK(before == open_descriptors_by_fcntl());
  const int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  CHECK(Metrics::process_open_fds() == before + 1);
  close(fd);
}

TEST_CASE("metrics: concurrent increments of one series and of separate series are all counted") {
  Metrics metrics;
  CounterFamily& requests = metrics.counter("fhirgate_requests_total", "Requests.", {"code"});
  CounterFamily& per_thread = metrics.counter("fhirgate_per_thread_total", "Per thread.", {"thread"});
  CounterFamily& seconds = metrics.counter("fhirgate_seconds_total", "Fractional adds.");
  on_threads([&](int t) {
    Counter& mine = per_thread.with({std::to_string(t)});
    for (int i = 0; i < kIncrements; ++i) {
      requests.inc({"200"});  // looked up each time; the first calls race to make the series
      mine.inc();
      seconds.add({}, 0.5);
    }
  });
  CHECK(requests.with({"200"}).value() == kThreads * kIncrements);
  for (int t = 0; t < kThreads; ++t) CHECK(per_thread.with({std::to_string(t)}).value() == kIncrements);
  CHECK(seconds.with().value() == kThreads * kIncrements * 0.5);
  const std::string text = metrics.render();
  CHECK(text.find("fhirgate_requests_total{code=\"200\"} 400000\n") != std::string::npos);
  CHECK(text.find("fhirgate_seconds_total 200000\n") != std::string::npos);
}

TEST_CASE("metrics: concurrent gauge changes and observations are all counted") {
  Metrics metrics;
  GaugeFamily& open = metrics.gauge("fhirgate_open", "Open.");
  HistogramFamily& latency = metrics.histogram("fhirgate_seconds", "Latency.", {"thread"}, {0.5, 2});
  on_threads([&](int t) {
    const std::string label = std::to_string(t % 2);
    for (int i = 0; i < kIncrements; ++i) {
      open.inc({});
      latency.observe({label}, 1);
      open.dec({});
    }
  });
  CHECK(open.with().value() == 0);
  for (const char* label : {"0", "1"}) {
    CHECK(latency.with({label}).count() == 2 * kIncrements);
    CHECK(latency.with({label}).sum() == 2 * kIncrements);
  }
}

TEST_CASE("metrics: rendering while other threads update and add series") {
  Metrics metrics;
  CounterFamily& requests = metrics.counter("fhirgate_requests_total", "Requests.", {"code"});
  metrics.add_collector([](Metrics::Sink&) {});
  on_threads([&](int t) {
    if (t == 0) {
      for (int i = 0; i < 200; ++i) CHECK(metrics.render().starts_with("# HELP fhirgate_requests_total"));
      return;
    }
    for (int i = 0; i < kIncrements; ++i) requests.inc({std::to_string(i % 50)});
  });
  const std::string text = metrics.render();
  CHECK(text.find("fhirgate_requests_total{code=\"0\"} " + std::to_string((kThreads - 1) * kIncrements / 50) +
                  "\n") != std::string::npos);
}

TEST_CASE("metrics: misuse is a logic error") {
  Metrics metrics;
  CounterFamily& requests = metrics.counter("fhirgate_requests_total", "Requests.", {"interaction", "code"});
  GaugeFamily& depth = metrics.gauge("fhirgate_depth", "Depth.");
  HistogramFamily& latency = metrics.histogram("fhirgate_seconds", "Latency.", {"interaction"}, {1});

  SUBCASE("wrong number of label values") {
    CHECK_THROWS_AS(requests.inc({"read"}), std::logic_error);
    CHECK_THROWS_AS(requests.inc({"read", "200", "extra"}), std::logic_error);
    CHECK_THROWS_AS(requests.with(), std::logic_error);
    CHECK_THROWS_AS(depth.set({"x"}, 1), std::logic_error);
    CHECK_THROWS_AS(latency.observe({}, 1), std::logic_error);
    CHECK(metrics.render().find("fhirgate_requests_total{") == std::string::npos);
  }
  SUBCASE("invalid metric or label names") {
    CHECK_THROWS_AS(metrics.counter("", "x"), std::logic_error);
    CHECK_THROWS_AS(metrics.counter("1st_total", "x"), std::logic_error);
    CHECK_THROWS_AS(metrics.counter("fhirgate-requests", "x"), std::logic_error);
    CHECK_THROWS_AS(metrics.gauge("fhirgate_x", "x", {"bad-label"}), std::logic_error);
    CHECK_THROWS_AS(metrics.gauge("fhirgate_x", "x", {"__reserved"}), std::logic_error);
    CHECK_THROWS_AS(metrics.gauge("fhirgate_x", "x", {"a:b"}), std::logic_error);
    CHECK_THROWS_AS(metrics.gauge("fhirgate_x", "x", {"code", "code"}), std::logic_error);
    CHECK_THROWS_AS(metrics.histogram("fhirgate_h", "x", {"le"}, {1}), std::logic_error);
    CHECK_NOTHROW(metrics.gauge("fhirgate:recorded_rule", "x", {"_ok1"}));
  }
  SUBCASE("the same name declared again differently") {
    CHECK_THROWS_AS(metrics.gauge("fhirgate_requests_total", "x", {"interaction", "code"}), std::logic_error);
    CHECK_THROWS_AS(metrics.counter("fhirgate_requests_total", "x", {"interaction"}), std::logic_error);
    CHECK_THROWS_AS(metrics.histogram("fhirgate_seconds", "x", {"interaction"}, {1, 2}), std::logic_error);
    CHECK(&metrics.counter("fhirgate_requests_total", "other help", {"interaction", "code"}) == &requests);
    CHECK(&metrics.histogram("fhirgate_seconds", "x", {"interaction"}, {1}) == &latency);
  }
  SUBCASE("buckets not finite and strictly increasing") {
    CHECK_THROWS_AS(metrics.histogram("fhirgate_h", "x", {}, {1, 1}), std::logic_error);
    CHECK_THROWS_AS(metrics.histogram("fhirgate_h", "x", {}, {2, 1}), std::logic_error);
    CHECK_THROWS_AS(metrics.histogram("fhirgate_h", "x", {}, {1, std::numeric_limits<double>::infinity()}),
                    std::logic_error);
    CHECK_THROWS_AS(metrics.histogram("fhirgate_h", "x", {}, {std::nan("")}), std::logic_error);
    CHECK_NOTHROW(metrics.histogram("fhirgate_h", "x", {}, {}));
  }
  SUBCASE("a counter never goes down") {
    CHECK_THROWS_AS(requests.add({"read", "200"}, -1), std::logic_error);
    CHECK_THROWS_AS(requests.add({"read", "200"}, std::nan("")), std::logic_error);
    CHECK(requests.with({"read", "200"}).value() == 0);
  }
}

}  // namespace
}  // namespace fhirgate::gateway
