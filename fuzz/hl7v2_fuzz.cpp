// HL7 v2 (ER7): Message::parse, every accessor down to subcomponents, serialize (which must parse again
// to the same text), set, and make_ack. Input: the message, optionally followed by NUL-separated paths
// that are read and set as well as a few fixed ones.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/common.hpp"
#include "mappers/hl7v2.hpp"

using namespace fhirgate;
using mappers::Message;
using mappers::Part;

namespace {

constexpr std::size_t kMaxChildren = 64;  // keeps one input's work linear in its size

void walk(const Part& part, int depth) {
  (void)part.value();
  if (depth == 3 || part.empty()) return;
  const std::size_t n = part.count();
  for (std::size_t i = 1; i <= n + 1 && i <= kMaxChildren; ++i) {
    switch (depth) {
      case 0:
        walk(part.repetition(i), 1);
        break;
      case 1:
        walk(part.component(i), 2);
        break;
      default:
        walk(part.subcomponent(i), 3);
        break;
    }
  }
}

// Paths whose numbers stay small: set() pads with separators up to the place named, so a path from
// outside input is never passed to it (paths come from the code and the mapping files).
bool small(const mappers::Path& p) {
  return p.segment_index <= 16 && p.field <= 64 && p.repetition <= 16 && p.component <= 16 &&
         p.subcomponent <= 16;
}

void exercise_path(Message& message, std::string_view path) {
  (void)message.find(path);
  (void)message.value(path);
  Result<mappers::Path> parsed = mappers::Path::parse(path);
  if (!parsed) return;
  const std::string canonical = parsed->to_string();
  Result<mappers::Path> again = mappers::Path::parse(canonical);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->to_string() == canonical);
  // Header fields (delimiters, character set) change how the rest reads; only other segments are set.
  if (!small(*parsed) || parsed->segment == "MSH" || parsed->segment == "FHS" || parsed->segment == "BHS")
    return;
  constexpr std::string_view kValue = "v^a|l~u&e\\x";
  if (message.set(path, kValue)) FUZZ_CHECK(message.value(path) == kValue);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> paths = {"MSH-9.2", "PID-5[2].3", "PID[2]-3.4.2", "OBX[3]-5", "ZZZ-1"};
  const std::size_t nul = input.find('\0');
  const std::string_view text = input.substr(0, nul);
  if (nul != std::string_view::npos) {
    std::string_view rest = input.substr(nul + 1);
    while (!rest.empty()) {
      const std::size_t end = rest.find('\0');
      paths.push_back(rest.substr(0, end));
      if (end == std::string_view::npos) break;
      rest.remove_prefix(end + 1);
    }
  }

  Result<Message> parsed = Message::parse(text);
  if (!parsed) return 0;
  Message& message = *parsed;
  for (std::size_t s = 0; s < message.segment_count() && s < kMaxChildren; ++s) {
    const mappers::Segment segment = message.segment_at(s);
    (void)segment.name();
    (void)segment.raw();
    const std::size_t fields = segment.field_count();
    for (std::size_t f = 0; f <= fields + 1 && f <= kMaxChildren; ++f) walk(segment.field(f), 0);
  }
  (void)message.message_type();
  (void)message.control_id();
  (void)message.version();

  const std::string serialized = message.serialize();
  Result<Message> reparsed = Message::parse(serialized);
  FUZZ_CHECK(reparsed.ok());
  FUZZ_CHECK(reparsed->serialize() == serialized);

  mappers::AckOptions options;
  options.control_id = "ACK1";
  options.timestamp = "20240101000000";
  (void)mappers::make_ack(message, "AA", "ok", options);
  options.error = mappers::AckError{"PID[1]-3[2].1", "102", "E"};
  const std::string ack = mappers::make_ack(message, "AE", "bad | value", options);
  FUZZ_CHECK(Message::parse(ack).ok());

  for (std::string_view path : paths) exercise_path(message, path);
  Result<Message> after_set = Message::parse(message.serialize());
  FUZZ_CHECK(after_set.ok());
  return 0;
}
