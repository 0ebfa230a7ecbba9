// HL7 v2 parse rate on one core: Message::parse of an ADT message plus reading MSH-10, PID-3.1 and
// PID-5.1 (the operation ../shared/bench/hl7/parse_bench.mjs times for the node parsers, so lazy parsers
// cannot skip the work), and parse + adt_to_patient (the mapping the MLLP listener does next).
//
// Usage: parse_bench FILE [--seconds S] [--runs N] [--no-map] [--target MSGS_PER_S]
// FILE may use CR, LF or CR LF between segments (converted to CR, as on the wire). Each figure is the median
// of RUNS time-bounded runs (SECONDS each, default 2 s x 3) after a warm-up of 20,000 iterations.
// The last lines are `RESULT k=v ...`; exit status 1 when the extracted values are wrong or parse fails.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "mappers/adt_patient.hpp"
#include "mappers/hl7v2.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using fhirgate::mappers::Message;

volatile std::size_t g_sink = 0;

std::string normalize(std::string_view text) {
  std::string out;
  while (!text.empty()) {
    const std::size_t at = text.find_first_of("\r\n");
    const std::string_view line = text.substr(0, at);
    if (!line.empty()) {
      out.append(line);
      out.push_back('\r');
    }
    if (at == std::string_view::npos) break;
    text.remove_prefix(at + 1);
  }
  return out;
}

struct Rates {
  double median = 0;
  std::vector<double> runs;
};

// Calls op in batches of 256 until `seconds` have passed; repeated `runs` times after a warm-up.
template <class Op>
Rates measure(Op&& op, double seconds, int runs) {
  for (int i = 0; i < 20000; ++i) op();
  Rates r;
  for (int run = 0; run < runs; ++run) {
    std::size_t n = 0;
    const auto start = Clock::now();
    double elapsed = 0;
    do {
      for (int k = 0; k < 256; ++k) op();
      n += 256;
      elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    } while (elapsed < seconds);
    r.runs.push_back(static_cast<double>(n) / elapsed);
  }
  std::vector<double> sorted = r.runs;
  std::sort(sorted.begin(), sorted.end());
  r.median = sorted[sorted.size() / 2];
  return r;
}

std::string join(const std::vector<double>& v) {
  std::string out;
  char buf[32];
  for (double x : v) {
    std::snprintf(buf, sizeof buf, "%s%.0f", out.empty() ? "" : ", ", x);
    out += buf;
  }
  return out;
}

void print_row(const char* name, const Rates& r, std::size_t bytes) {
  std::printf("| %-32s | %12.0f | %7.1f | %7.3f | %s |\n", name, r.median,
              r.median * static_cast<double>(bytes) / 1e6, 1e6 / r.median, join(r.runs).c_str());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: parse_bench FILE [--seconds S] [--runs N] [--no-map] [--target MSGS_PER_S]\n");
    return 2;
  }
  double seconds = 2;
  int runs = 3;
  bool map = true;
  double target = 500000;
  for (int i = 2; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--seconds" && i + 1 < argc)
      seconds = std::atof(argv[++i]);
    else if (a == "--runs" && i + 1 < argc)
      runs = std::atoi(argv[++i]);
    else if (a == "--no-map")
      map = false;
    else if (a == "--target" && i + 1 < argc)
      target = std::atof(argv[++i]);
    else {
      std::fprintf(stderr, "parse_bench: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (seconds <= 0 || runs < 1) {
    std::fprintf(stderr, "parse_bench: --seconds must be > 0 and --runs >= 1\n");
    return 2;
  }

  std::ifstream in(argv[1], std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "parse_bench: cannot read %s\n", argv[1]);
    return 2;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  // Without the CR after the last segment, as node's parse_bench.mjs passes it.
  std::string text = normalize(ss.str());
  if (!text.empty()) text.pop_back();

  auto sample = Message::parse(text);
  if (!sample) {
    std::fprintf(stderr, "parse_bench: %s does not parse\n", argv[1]);
    return 1;
  }
  std::printf("INFO MSH-10=%s PID-3.1=%s PID-5.1=%s\n", sample->value("MSH-10").c_str(),
              sample->value("PID-3.1").c_str(), sample->value("PID-5.1").c_str());
  if (sample->value("MSH-10").empty() || sample->value("PID-3.1").empty() ||
      sample->value("PID-5.1").empty()) {
    std::fprintf(stderr, "parse_bench: MSH-10, PID-3.1 or PID-5.1 is empty\n");
    return 1;
  }

  const Rates parse = measure(
      [&] {
        auto m = Message::parse(text);
        if (!m) std::abort();
        g_sink = g_sink + m->value("MSH-10").size() + m->value("PID-3.1").size() + m->value("PID-5.1").size();
      },
      seconds, runs);

  Rates mapped;
  const fhirgate::mappers::PartnerMapping mapping{};
  if (map && !fhirgate::mappers::adt_to_patient(*sample, mapping)) {
    std::printf("INFO adt_to_patient does not map %s: parse + map not measured\n", argv[1]);
    map = false;
  }
  if (map) {
    mapped = measure(
        [&] {
          auto m = Message::parse(text);
          if (!m) std::abort();
          auto patient = fhirgate::mappers::adt_to_patient(*m, mapping);
          if (!patient) std::abort();
          g_sink = g_sink + 1;
        },
        seconds, runs);
  }

  std::printf("\nmessage: %zu bytes (%s), one thread, median of %d x %.1f s\n", text.size(), argv[1], runs,
              seconds);
  std::printf("| %-32s | %12s | %7s | %7s | %s |\n", "operation", "msgs/s", "MB/s", "us/msg",
              "msgs/s per run");
  std::printf("|%s|%s|%s|%s|%s|\n", std::string(34, '-').c_str(), std::string(14, '-').c_str(),
              std::string(9, '-').c_str(), std::string(9, '-').c_str(), std::string(16, '-').c_str());
  print_row("parse + MSH-10, PID-3.1, PID-5.1", parse, text.size());
  if (map) print_row("parse + adt_to_patient", mapped, text.size());
  const bool pass = parse.median >= target;
  std::printf("\ntarget: parse >= %.0f msgs/s/core: %.0f -> %s\n", target, parse.median,
              pass ? "PASS" : "BELOW");
  std::printf("RESULT op=parse msgs_per_s=%.0f mb_per_s=%.1f target=%.0f status=%s\n", parse.median,
              parse.median * static_cast<double>(text.size()) / 1e6, target, pass ? "PASS" : "BELOW");
  if (map)
    std::printf("RESULT op=parse_map msgs_per_s=%.0f mb_per_s=%.1f\n", mapped.median,
                mapped.median * static_cast<double>(text.size()) / 1e6);
  return 0;
}
