// MLLP load generator: closed-loop HL7 v2 senders, one thread and one persistent connection each.
//
//   mllp_load --port N [--host 127.0.0.1] [--conns 8] [--duration 10] [--warmup 1] [--timeout 10]
//             --file TEMPLATE [--distinct] [--nhs-prefix 999] [--quiet] [--allow-non-loopback]
//
// Every connection sends the template with MSH-10 replaced by a control id unique to this run, keeps one
// message in flight (as MLLP senders do), reads the ACK frame (0x0B ... 0x1C 0x0D), counts MSA-1 (AA AE AR
// CA, anything else as other) and checks that MSA-2 echoes the control id. With --distinct every message
// also names a new patient: the NHS number in PID-3 (the first repetition whose 4th component is NHS, else
// the first repetition) becomes a fresh Modulus 11-valid number from the NHS test range (prefix 999,
// unique per connection and sequence number) and the 1st component of every other PID-3 repetition (the
// partner's local id) is suffixed with the connection and sequence number.
//
// Counted: ACKs received in [warm-up end, warm-up end + duration] give msgs/s and the latency
// percentiles. A message still in flight at the end is waited for (up to --timeout) so the server never
// sees a message cut short; it and the warm-up ones count only in the *_total figures. accepted_total
// (AA plus CA: an enhanced-mode commit accept, the answer when MSH-15 asks for accept acks) is what a
// server that ACKs after its commit should have stored. The last line is `RESULT k=v ...`. Exit status 0 only
// when there were no errors (connect, send, receive, timeout, malformed ACK) and no control-id mismatches.
//
// Loopback only unless --allow-non-loopback; every run is time-bounded (duration + warm-up + timeout).
// MLLP_DEBUG=1 prints the first frame sent and the first ACK; the first ACK that is not AA is always shown.
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <latch>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

constexpr char kStartBlock = 0x0b;
constexpr char kEndBlock = 0x1c;
constexpr char kCarriageReturn = 0x0d;
constexpr std::uint32_t kNhsRangeSize = 1'000'000;  // 6 free digits after the 3-digit prefix

struct Options {
  std::string host = "127.0.0.1";
  std::string port;
  int conns = 8;
  double duration = 10;
  double warmup = 1;
  double timeout = 10;
  std::string file;
  bool distinct = false;
  std::uint32_t nhs_prefix = 999;
  bool quiet = false;
  bool allow_non_loopback = false;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "mllp_load: %s\nusage: mllp_load --port N [--host H] [--conns N] [--duration S] [--warmup S]\n"
               "         [--timeout S] --file TEMPLATE [--distinct] [--nhs-prefix DDD] [--quiet]\n"
               "         [--allow-non-loopback]\n",
               why);
  std::exit(2);
}

double parse_seconds(const char* text, const char* name) {
  char* end = nullptr;
  const double v = std::strtod(text, &end);
  if (end == text || *end != '\0' || !(v >= 0) || v > 86400) usage(name);
  return v;
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage("missing value");
      return argv[++i];
    };
    if (a == "--host")
      o.host = value();
    else if (a == "--port")
      o.port = value();
    else if (a == "--conns")
      o.conns = std::atoi(value());
    else if (a == "--duration")
      o.duration = parse_seconds(value(), "bad --duration");
    else if (a == "--warmup")
      o.warmup = parse_seconds(value(), "bad --warmup");
    else if (a == "--timeout")
      o.timeout = parse_seconds(value(), "bad --timeout");
    else if (a == "--file")
      o.file = value();
    else if (a == "--distinct")
      o.distinct = true;
    else if (a == "--nhs-prefix")
      o.nhs_prefix = static_cast<std::uint32_t>(std::atoi(value()));
    else if (a == "--quiet")
      o.quiet = true;
    else if (a == "--allow-non-loopback")
      o.allow_non_loopback = true;
    else
      usage("unknown option");
  }
  if (o.port.empty() || o.file.empty()) usage("--port and --file are required");
  if (o.conns < 1 || o.conns > 1024) usage("--conns must be 1..1024");
  if (o.duration <= 0) usage("--duration must be > 0");
  if (o.timeout <= 0) usage("--timeout must be > 0");
  if (o.nhs_prefix < 100 || o.nhs_prefix > 999) usage("--nhs-prefix must be 3 digits");
  return o;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t begin = 0;
  for (;;) {
    const std::size_t at = s.find(sep, begin);
    if (at == std::string_view::npos) {
      out.push_back(s.substr(begin));
      return out;
    }
    out.push_back(s.substr(begin, at - begin));
    begin = at + 1;
  }
}

// The message with CR as the only segment terminator (CR LF and LF accepted in the file), blank lines
// dropped, and a CR after the last segment.
std::string normalize(std::string_view text) {
  std::string out;
  std::string_view rest = text;
  while (!rest.empty()) {
    const std::size_t at = rest.find_first_of("\r\n");
    const std::string_view line = rest.substr(0, at);
    if (!line.empty()) {
      out.append(line);
      out.push_back(kCarriageReturn);
    }
    if (at == std::string_view::npos) break;
    rest.remove_prefix(at + 1);
  }
  return out;
}

// The template cut at the places that change per message: literal text interleaved with slots.
enum class Slot { none, control_id, nhs_number, local_id };

struct Piece {
  std::string literal;
  Slot slot = Slot::none;
  std::string original;  // the value the slot replaces (local ids keep it as their stem)
};

struct Template {
  std::vector<Piece> pieces;
  std::string original_control_id;
  bool has_nhs_slot = false;
  std::size_t local_id_slots = 0;
};

struct Cut {
  std::size_t begin;
  std::size_t size;
  Slot slot;
};

std::optional<Template> make_template(const std::string& message, bool distinct, std::string& error) {
  if (message.size() < 8 || message.compare(0, 3, "MSH") != 0) {
    error = "template does not start with MSH";
    return std::nullopt;
  }
  const char field_sep = message[3];
  const char component_sep = message[4];
  const char repetition_sep = message[5];
  const char subcomponent_sep = message.size() > 7 ? message[7] : '&';
  std::vector<Cut> cuts;
  Template t;

  std::size_t seg_begin = 0;
  bool seen_pid = false;
  while (seg_begin < message.size()) {
    std::size_t seg_end = message.find(kCarriageReturn, seg_begin);
    if (seg_end == std::string::npos) seg_end = message.size();
    const std::string_view segment(message.data() + seg_begin, seg_end - seg_begin);
    // Offsets of each field (fields[0] is the segment name); in MSH, fields[n] is MSH-(n+1).
    std::vector<std::size_t> field_begin;
    std::vector<std::string_view> fields;
    {
      std::size_t b = 0;
      for (;;) {
        const std::size_t at = segment.find(field_sep, b);
        field_begin.push_back(seg_begin + b);
        fields.push_back(segment.substr(b, at == std::string_view::npos ? std::string_view::npos : at - b));
        if (at == std::string_view::npos) break;
        b = at + 1;
      }
    }
    const std::string_view name = fields[0];
    if (seg_begin == 0) {
      if (fields.size() < 10) {
        error = "template MSH has no MSH-10";
        return std::nullopt;
      }
      t.original_control_id = std::string(fields[9]);
      cuts.push_back({field_begin[9], fields[9].size(), Slot::control_id});
    } else if (distinct && name == "PID" && !seen_pid) {
      seen_pid = true;
      if (fields.size() < 4 || fields[3].empty()) {
        error = "--distinct needs a PID-3 in the template";
        return std::nullopt;
      }
      const auto reps = split(fields[3], repetition_sep);
      std::size_t nhs_rep = 0;
      for (std::size_t r = 0; r < reps.size(); ++r) {
        const auto components = split(reps[r], component_sep);
        if (components.size() >= 4 && split(components[3], subcomponent_sep)[0] == "NHS") {
          nhs_rep = r;
          break;
        }
      }
      std::size_t offset = field_begin[3];
      for (std::size_t r = 0; r < reps.size(); ++r) {
        const std::string_view id = split(split(reps[r], component_sep)[0], subcomponent_sep)[0];
        if (r == nhs_rep) {
          cuts.push_back({offset, id.size(), Slot::nhs_number});
          t.has_nhs_slot = true;
        } else if (!id.empty()) {
          cuts.push_back({offset, id.size(), Slot::local_id});
          ++t.local_id_slots;
        }
        offset += reps[r].size() + 1;
      }
    }
    seg_begin = seg_end + 1;
  }
  if (distinct && !seen_pid) {
    error = "--distinct needs a PID segment in the template";
    return std::nullopt;
  }

  std::size_t at = 0;
  for (const Cut& c : cuts) {
    t.pieces.push_back({message.substr(at, c.begin - at), c.slot, message.substr(c.begin, c.size)});
    at = c.begin + c.size;
  }
  t.pieces.push_back({message.substr(at), Slot::none, {}});
  return t;
}

// The Modulus 11 check digit of a 9-digit NHS number stem, or -1 when the stem has none (check 10).
int nhs_check_digit(std::uint32_t stem) {
  int sum = 0;
  for (int weight = 2; weight <= 10; ++weight) {
    sum += static_cast<int>(stem % 10) * weight;
    stem /= 10;
  }
  const int check = 11 - sum % 11;
  if (check == 11) return 0;
  if (check == 10) return -1;
  return check;
}

// ACK frame reader: accumulates bytes, hands out one frame's payload at a time.
class FrameReader {
 public:
  // Next complete frame payload (between 0x0B and 0x1C 0x0D), or nullopt if more bytes are needed.
  // Bytes outside a frame are skipped and counted.
  std::optional<std::string> next() {
    for (;;) {
      if (buf_.empty()) return std::nullopt;
      const std::size_t start = buf_.find(kStartBlock);
      if (start == std::string::npos) {
        stray_ += buf_.size();
        buf_.clear();
        return std::nullopt;
      }
      const std::size_t end = buf_.find(kEndBlock, start + 1);
      if (end == std::string::npos || end + 1 >= buf_.size()) {
        if (start > 0) {
          stray_ += start;
          buf_.erase(0, start);
        }
        return std::nullopt;
      }
      std::string payload = buf_.substr(start + 1, end - start - 1);
      if (buf_[end + 1] != kCarriageReturn) ++bad_trailer_;
      stray_ += start;
      buf_.erase(0, end + 2);
      return payload;
    }
  }
  void append(const char* data, std::size_t n) { buf_.append(data, n); }
  void reset() { buf_.clear(); }
  std::size_t stray() const { return stray_; }
  std::size_t bad_trailer() const { return bad_trailer_; }

 private:
  std::string buf_;
  std::size_t stray_ = 0;
  std::size_t bad_trailer_ = 0;
};

struct Ack {
  std::string code;        // MSA-1
  std::string control_id;  // MSA-2
};

std::optional<Ack> parse_ack(std::string_view payload) {
  std::string_view rest = payload;
  char field_sep = '|';
  while (!rest.empty()) {
    const std::size_t at = rest.find_first_of("\r\n");
    const std::string_view segment = rest.substr(0, at);
    if (segment.size() > 3 && segment.substr(0, 3) == "MSH") field_sep = segment[3];
    if (segment.size() > 3 && segment.substr(0, 3) == "MSA" && segment[3] == field_sep) {
      const auto fields = split(segment, field_sep);
      Ack ack;
      ack.code = std::string(fields.size() > 1 ? fields[1] : std::string_view{});
      ack.control_id = std::string(fields.size() > 2 ? fields[2] : std::string_view{});
      return ack;
    }
    if (at == std::string_view::npos) break;
    rest.remove_prefix(at + 1);
  }
  return std::nullopt;
}

std::string printable(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == kCarriageReturn)
      out += "\\r\n  ";
    else if (c == kStartBlock)
      out += "<VT>";
    else if (c == kEndBlock)
      out += "<FS>";
    else if (static_cast<unsigned char>(c) < 0x20)
      out += '?';
    else
      out += c;
  }
  return out;
}

struct Counts {
  std::uint64_t aa = 0, ae = 0, ar = 0, ca = 0, other = 0, mismatched = 0;
  void add(const Counts& o) {
    aa += o.aa;
    ae += o.ae;
    ar += o.ar;
    ca += o.ca;
    other += o.other;
    mismatched += o.mismatched;
  }
  std::uint64_t acks() const { return aa + ae + ar + ca + other; }
};

struct ConnResult {
  Counts window;  // ACKs received inside the measured window
  Counts total;   // every ACK, warm-up and tail included
  std::uint64_t sent = 0;
  std::uint64_t errors = 0;
  std::uint64_t reconnects = 0;
  std::vector<std::uint64_t> latency_ns;  // window only
  std::string first_error;
};

struct Shared {
  const Options& options;
  const Template& tmpl;
  const addrinfo* address;
  std::string run_tag;  // makes control ids unique across runs
  Clock::time_point warm_end{};
  Clock::time_point end{};
  std::latch connected;
  std::latch go{1};
  std::mutex print_mutex;
  std::atomic<bool> shown_non_aa{false};
  std::atomic<bool> shown_debug{false};
  bool debug = false;
};

int open_connection(const Shared& shared, std::string& error) {
  const addrinfo* ai = shared.address;
  const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
  if (fd < 0) {
    error = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
    error = std::string("connect: ") + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(shared.options.timeout);
  tv.tv_usec = static_cast<suseconds_t>((shared.options.timeout - static_cast<double>(tv.tv_sec)) * 1e6);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

void run_connection(Shared& shared, int conn, ConnResult& result) {
  const Options& o = shared.options;
  std::string error;
  int fd = open_connection(shared, error);
  shared.connected.count_down();
  shared.go.wait();
  if (fd < 0) {
    ++result.errors;
    result.first_error = error;
    return;
  }

  auto fail = [&](std::string what) {
    ++result.errors;
    if (result.first_error.empty()) result.first_error = std::move(what);
  };

  std::string frame;
  std::string control_id;
  char nhs_text[16] = {};
  const std::string_view nhs(nhs_text, 10);
  FrameReader reader;
  char buf[16384];
  std::uint32_t nhs_index = static_cast<std::uint32_t>(conn);
  const std::uint32_t nhs_step = static_cast<std::uint32_t>(o.conns);
  const std::string conn_tag = std::to_string(conn);
  std::uint64_t seq = 0;

  while (Clock::now() < shared.end) {
    ++seq;
    control_id = shared.run_tag;
    control_id += conn_tag;
    control_id += '-';
    control_id += std::to_string(seq);
    if (o.distinct && shared.tmpl.has_nhs_slot) {
      int check = -1;
      while (nhs_index < kNhsRangeSize &&
             (check = nhs_check_digit(o.nhs_prefix * kNhsRangeSize + nhs_index)) < 0)
        nhs_index += nhs_step;
      if (nhs_index >= kNhsRangeSize) {
        fail("NHS number range exhausted (use another --nhs-prefix or a shorter run)");
        break;
      }
      std::snprintf(nhs_text, sizeof nhs_text, "%03u%06u%d", o.nhs_prefix, nhs_index, check);
      nhs_index += nhs_step;
    }

    frame.clear();
    frame.push_back(kStartBlock);
    for (const Piece& p : shared.tmpl.pieces) {
      frame += p.literal;
      switch (p.slot) {
        case Slot::none:
          break;
        case Slot::control_id:
          frame += control_id;
          break;
        case Slot::nhs_number:
          frame += o.distinct ? nhs : std::string_view(p.original);
          break;
        case Slot::local_id:
          frame += p.original;
          frame += '-';
          frame += conn_tag;
          frame += '-';
          frame += std::to_string(seq);
          break;
      }
    }
    frame.push_back(kEndBlock);
    frame.push_back(kCarriageReturn);
    if (shared.debug && !shared.shown_debug.exchange(true)) {
      std::lock_guard lock(shared.print_mutex);
      std::fprintf(stderr, "first frame sent:\n  %s\n", printable(frame).c_str());
    }

    if (fd < 0) {
      fd = open_connection(shared, error);
      if (fd < 0) {
        fail(error);
        break;
      }
      ++result.reconnects;
      reader.reset();
    }
    const auto sent_at = Clock::now();
    if (!send_all(fd, frame)) {
      fail(std::string("send: ") + std::strerror(errno));
      ::close(fd);
      fd = -1;
      continue;
    }
    ++result.sent;

    std::optional<std::string> payload;
    bool broken = false;
    while (!(payload = reader.next())) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n > 0) {
        reader.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n == 0)
        fail("connection closed by the server before the ACK");
      else if (errno == EAGAIN || errno == EWOULDBLOCK)
        fail("no ACK within --timeout");
      else
        fail(std::string("recv: ") + std::strerror(errno));
      broken = true;
      break;
    }
    const auto acked_at = Clock::now();
    if (broken) {
      ::close(fd);
      fd = -1;
      continue;
    }
    if (shared.debug && seq == 1 && conn == 0) {
      std::lock_guard lock(shared.print_mutex);
      std::fprintf(stderr, "first ACK:\n  %s\n", printable(*payload).c_str());
    }

    const auto ack = parse_ack(*payload);
    if (!ack) {
      fail("ACK without an MSA segment");
      continue;
    }
    Counts c;
    if (ack->code == "AA")
      ++c.aa;
    else if (ack->code == "AE")
      ++c.ae;
    else if (ack->code == "AR")
      ++c.ar;
    else if (ack->code == "CA")
      ++c.ca;
    else
      ++c.other;
    if (ack->control_id != control_id) ++c.mismatched;
    if (ack->code != "AA" && ack->code != "CA" && !shared.shown_non_aa.exchange(true)) {
      std::lock_guard lock(shared.print_mutex);
      std::fprintf(stderr, "first ACK that is not AA or CA (connection %d, message %" PRIu64 "):\n  %s\n",
                   conn, seq, printable(*payload).c_str());
    }
    result.total.add(c);
    if (acked_at >= shared.warm_end && acked_at <= shared.end) {
      result.window.add(c);
      result.latency_ns.push_back(static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(acked_at - sent_at).count()));
    }
  }
  if (fd >= 0) ::close(fd);
  if (reader.stray() > 0) fail("bytes outside MLLP frames in the ACK stream");
  if (reader.bad_trailer() > 0) fail("ACK frame ended 0x1C without 0x0D");
}

double percentile_ms(const std::vector<std::uint64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const std::size_t rank = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return static_cast<double>(sorted[std::min(rank, sorted.size() - 1)]) / 1e6;
}

bool is_loopback(const addrinfo* ai) {
  if (ai->ai_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(ai->ai_addr);
    return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
  }
  if (ai->ai_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(ai->ai_addr);
    return IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse_options(argc, argv);

  std::ifstream in(o.file, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "mllp_load: cannot read %s\n", o.file.c_str());
    return 2;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string message = normalize(ss.str());
  std::string error;
  const auto tmpl = make_template(message, o.distinct, error);
  if (!tmpl) {
    std::fprintf(stderr, "mllp_load: %s: %s\n", o.file.c_str(), error.c_str());
    return 2;
  }

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* address = nullptr;
  if (const int rc = ::getaddrinfo(o.host.c_str(), o.port.c_str(), &hints, &address); rc != 0) {
    std::fprintf(stderr, "mllp_load: %s:%s: %s\n", o.host.c_str(), o.port.c_str(), ::gai_strerror(rc));
    return 2;
  }
  if (!o.allow_non_loopback && !is_loopback(address)) {
    std::fprintf(stderr, "mllp_load: %s is not a loopback address (--allow-non-loopback to override)\n",
                 o.host.c_str());
    ::freeaddrinfo(address);
    return 2;
  }

  // Control ids: L + 3 base-36 digits from the clock and pid + connection + '-' + sequence; <= 20 chars.
  const auto nonce = static_cast<std::uint64_t>(Clock::now().time_since_epoch().count()) ^
                     (static_cast<std::uint64_t>(::getpid()) << 20);
  std::string tag = "L";
  for (int i = 0, v = static_cast<int>(nonce % (36 * 36 * 36)); i < 3; ++i, v /= 36)
    tag += "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[v % 36];

  Shared shared{o, *tmpl, address, tag, {}, {}, std::latch(o.conns), std::latch(1), {}, {}, {}, false};
  const char* debug = std::getenv("MLLP_DEBUG");
  shared.debug = debug != nullptr && std::string_view(debug) == "1";

  std::vector<ConnResult> results(static_cast<std::size_t>(o.conns));
  std::vector<std::thread> threads;
  threads.reserve(results.size());
  for (int c = 0; c < o.conns; ++c)
    threads.emplace_back(run_connection, std::ref(shared), c, std::ref(results[static_cast<std::size_t>(c)]));
  shared.connected.wait();
  const auto start = Clock::now();
  shared.warm_end =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.warmup));
  shared.end = shared.warm_end +
               std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration));
  shared.go.count_down();
  for (auto& t : threads) t.join();
  ::freeaddrinfo(address);

  Counts window, total;
  std::uint64_t sent = 0, errors = 0, reconnects = 0;
  std::vector<std::uint64_t> latency;
  std::string first_error;
  for (auto& r : results) {
    window.add(r.window);
    total.add(r.total);
    sent += r.sent;
    errors += r.errors;
    reconnects += r.reconnects;
    latency.insert(latency.end(), r.latency_ns.begin(), r.latency_ns.end());
    if (first_error.empty()) first_error = r.first_error;
  }
  std::sort(latency.begin(), latency.end());
  const double rate = static_cast<double>(window.acks()) / o.duration;
  const double p50 = percentile_ms(latency, 0.50), p90 = percentile_ms(latency, 0.90),
               p99 = percentile_ms(latency, 0.99),
               pmax = latency.empty() ? 0 : static_cast<double>(latency.back()) / 1e6;
  const std::uint64_t mismatched = total.mismatched;

  if (!o.quiet) {
    std::printf("target %s:%s, %d connections, %.1f s warm-up + %.1f s measured, %s\n", o.host.c_str(),
                o.port.c_str(), o.conns, o.warmup, o.duration,
                o.distinct ? "a new patient per message (--distinct)" : "the same patient every message");
    std::printf("  %.0f msgs/s   ACK latency ms p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n", rate, p50, p90,
                p99, pmax);
    std::printf("  measured: %" PRIu64 " ACKs (AA %" PRIu64 " AE %" PRIu64 " AR %" PRIu64 " CA %" PRIu64
                " other %" PRIu64 ")\n",
                window.acks(), window.aa, window.ae, window.ar, window.ca, window.other);
    std::printf("  in all (warm-up and tail included): sent %" PRIu64 ", AA %" PRIu64 ", CA %" PRIu64
                ", ACKs %" PRIu64 ", control-id mismatches %" PRIu64 ", errors %" PRIu64
                ", reconnects %" PRIu64 "\n",
                sent, total.aa, total.ca, total.acks(), mismatched, errors, reconnects);
    if (!first_error.empty()) std::printf("  first error: %s\n", first_error.c_str());
  }
  std::printf("RESULT conns=%d duration_s=%.1f distinct=%d msgs=%" PRIu64
              " msgs_per_s=%.0f p50_ms=%.3f p90_ms=%.3f"
              " p99_ms=%.3f max_ms=%.3f aa=%" PRIu64 " ae=%" PRIu64 " ar=%" PRIu64 " ca=%" PRIu64
              " other=%" PRIu64 " mismatched=%" PRIu64 " errors=%" PRIu64 " sent_total=%" PRIu64
              " acks_total=%" PRIu64 " aa_total=%" PRIu64 " accepted_total=%" PRIu64 "\n",
              o.conns, o.duration, o.distinct ? 1 : 0, window.acks(), rate, p50, p90, p99, pmax, window.aa,
              window.ae, window.ar, window.ca, window.other, mismatched, errors, sent, total.acks(), total.aa,
              total.aa + total.ca);
  return errors == 0 && mismatched == 0 ? 0 : 1;
}
