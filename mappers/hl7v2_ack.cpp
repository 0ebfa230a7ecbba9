#include "mappers/hl7v2.hpp"

namespace fhirgate::mappers {
namespace {

bool before_v25(std::string_view version) {
  return version.substr(0, 3) == "2.3" || version.substr(0, 3) == "2.4";
}

std::string raw_field(const Message& m, std::size_t n) {
  auto msh = m.segment("MSH");
  return msh ? std::string(msh->field(n).raw()) : std::string();
}

}  // namespace

std::string make_ack(const Message& in, std::string_view ack_code, std::string_view text,
                     const AckOptions& options) {
  const Delimiters& d = in.delimiters();
  std::string enc{d.component, d.repetition, d.escape, d.subcomponent};
  if (d.truncation != '\0') enc += d.truncation;
  const char f = d.field;
  std::string version = in.version();

  std::string out = "MSH";
  out += f;
  out += enc;
  for (std::string part : {raw_field(in, 5), raw_field(in, 6), raw_field(in, 3), raw_field(in, 4),
                           encode(options.timestamp, d), std::string()}) {
    out += f;
    out += part;
  }
  out += f;
  out += "ACK";
  out += d.component;
  out += encode(in.message_type().trigger, d);
  out += d.component;
  out += "ACK";
  out += f;
  out += encode(options.control_id, d);
  out += f;
  out += raw_field(in, 11);
  out += f;
  out += raw_field(in, 12);
  // MSH-13 .. MSH-18: accept/application acknowledgment types when asked for, the character set of `in`.
  std::vector<std::string> tail{"",
                                "",
                                encode(options.accept_ack_type, d),
                                encode(options.application_ack_type, d),
                                "",
                                raw_field(in, 18)};
  while (!tail.empty() && tail.back().empty()) tail.pop_back();
  for (const auto& part : tail) {
    out += f;
    out += part;
  }
  out += '\r';

  out += "MSA";
  out += f;
  out += encode(ack_code, d);
  out += f;
  out += encode(in.control_id(), d);
  if (!text.empty()) {
    out += f;
    out += encode(text, d);
  }
  out += '\r';

  if (options.error) {
    const AckError& e = *options.error;
    std::string seg, seq, field, rep, comp, sub;
    if (auto loc = Path::parse(e.location); loc && !e.location.empty()) {
      seg = loc->segment;
      seq = std::to_string(loc->segment_index);
      if (loc->field) field = std::to_string(loc->field);
      if (loc->field) rep = std::to_string(loc->repetition ? loc->repetition : 1);
      if (loc->component) comp = std::to_string(loc->component);
      if (loc->subcomponent) sub = std::to_string(loc->subcomponent);
    }
    std::string coded = encode(e.code, d);
    out += "ERR";
    out += f;
    if (before_v25(version)) {
      out += seg + d.component + seq + d.component + field + d.component;
      out += coded + d.subcomponent + encode(text, d) + d.subcomponent + "HL70357";
    } else {
      std::vector<std::string> erl{seg, seq, field, rep, comp, sub};
      while (!erl.empty() && erl.back().empty()) erl.pop_back();
      out += f;
      for (std::size_t i = 0; i < erl.size(); ++i) {
        if (i) out += d.component;
        out += erl[i];
      }
      out += f;
      out += coded + d.component + encode(text, d) + d.component + "HL70357";
      out += f;
      out += encode(e.severity, d);
    }
    out += '\r';
  }
  return out;
}

}  // namespace fhirgate::mappers
