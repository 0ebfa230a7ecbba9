#include "mappers/hl7v2.hpp"

#include <cassert>
#include <charconv>
#include <cstring>
#include <limits>

namespace fhirgate::mappers {
namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";

bool is_header(std::string_view name) {
  return name == "MSH" || name == "FHS" || name == "BHS";
}

bool is_name_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

Error invalid(std::string text) {
  return Error::make(ErrorCode::invalid_input, std::move(text));
}

std::string segment_label(std::string_view name, std::size_t occurrence) {
  return std::string(name) + "[" + std::to_string(occurrence) + "]";
}

char separator_for(Part::Level level, const Delimiters& d) {
  switch (level) {
    case Part::Level::field:
      return d.repetition;
    case Part::Level::repetition:
      return d.component;
    case Part::Level::component:
      return d.subcomponent;
    case Part::Level::subcomponent:
      break;
  }
  return '\0';
}

std::string_view nth_piece(std::string_view raw, char sep, std::size_t i) {
  std::size_t start = 0;
  for (std::size_t k = 1; k < i; ++k) {
    std::size_t next = raw.find(sep, start);
    if (next == std::string_view::npos) return {};
    start = next + 1;
  }
  std::size_t end = raw.find(sep, start);
  return raw.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
}

std::vector<std::string> split(std::string_view raw, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    std::size_t next = raw.find(sep, start);
    if (next == std::string_view::npos) {
      out.emplace_back(raw.substr(start));
      return out;
    }
    out.emplace_back(raw.substr(start, next - start));
    start = next + 1;
  }
}

std::string join(const std::vector<std::string>& parts, char sep) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

void append_utf8_latin1(std::string& out, unsigned char c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool is_hex_escape(std::string_view code) {
  if (code.size() < 3 || code.size() % 2 == 0 || code[0] != 'X') return false;
  for (char h : code.substr(1))
    if (hex_digit(h) < 0) return false;
  return true;
}

bool parse_number(std::string_view text, std::size_t& out) {
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size() && out > 0;
}

// Where in a field a byte offset falls, as "-F[r].c.s".
std::string field_location(std::string_view field, std::size_t offset, std::size_t number,
                           const Delimiters& d) {
  std::size_t rep = 1, comp = 1, sub = 1;
  for (std::size_t i = 0; i < offset && i < field.size(); ++i) {
    char c = field[i];
    if (c == d.repetition) {
      ++rep;
      comp = sub = 1;
    } else if (c == d.component) {
      ++comp;
      sub = 1;
    } else if (c == d.subcomponent) {
      ++sub;
    }
  }
  return "-" + std::to_string(number) + "[" + std::to_string(rep) + "]." + std::to_string(comp) + "." +
         std::to_string(sub);
}

std::optional<std::size_t> unterminated_escape(std::string_view field, const Delimiters& d) {
  std::size_t i = field.find(d.escape);
  while (i != std::string_view::npos) {
    std::size_t j = i + 1;
    while (j < field.size() && field[j] != d.escape && field[j] != d.component && field[j] != d.repetition &&
           field[j] != d.subcomponent) {
      ++j;
    }
    if (j >= field.size() || field[j] != d.escape) return i;
    i = field.find(d.escape, j + 1);
  }
  return std::nullopt;
}

Result<std::string> to_latin1(std::string_view utf8) {
  std::string out;
  out.reserve(utf8.size());
  for (std::size_t i = 0; i < utf8.size(); ++i) {
    auto c = static_cast<unsigned char>(utf8[i]);
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if ((c == 0xC2 || c == 0xC3) && i + 1 < utf8.size()) {
      out += static_cast<char>(((c & 0x03) << 6) | (static_cast<unsigned char>(utf8[++i]) & 0x3F));
    } else {
      return invalid("value has a character outside 8859/1, the message's character set");
    }
  }
  return out;
}

}  // namespace

Result<Path> Path::parse(std::string_view text) {
  auto bad = [&] { return invalid("malformed HL7 v2 path (expected SEG[s]-F[r].C.S)"); };
  Path p;
  if (text.size() < 3 || !is_name_char(text[0]) || !is_name_char(text[1]) || !is_name_char(text[2]))
    return bad();
  p.segment = std::string(text.substr(0, 3));
  text.remove_prefix(3);
  auto bracket = [&](std::size_t& out) {
    if (text.empty() || text.front() != '[') return true;
    std::size_t close = text.find(']');
    if (close == std::string_view::npos || !parse_number(text.substr(1, close - 1), out)) return false;
    text.remove_prefix(close + 1);
    return true;
  };
  auto number = [&](std::size_t& out) {
    std::size_t n = 0;
    while (n < text.size() && text[n] >= '0' && text[n] <= '9') ++n;
    if (!parse_number(text.substr(0, n), out)) return false;
    text.remove_prefix(n);
    return true;
  };
  if (!bracket(p.segment_index)) return bad();
  if (text.empty()) return p;
  if (text.front() != '-') return bad();
  text.remove_prefix(1);
  if (!number(p.field) || !bracket(p.repetition)) return bad();
  if (!text.empty()) {
    if (text.front() != '.') return bad();
    text.remove_prefix(1);
    if (!number(p.component)) return bad();
  }
  if (!text.empty()) {
    if (text.front() != '.') return bad();
    text.remove_prefix(1);
    if (!number(p.subcomponent)) return bad();
  }
  if (!text.empty()) return bad();
  return p;
}

std::string Path::to_string() const {
  std::string out = segment_label(segment, segment_index);
  if (field == 0) return out;
  out += "-" + std::to_string(field);
  if (repetition) out += "[" + std::to_string(repetition) + "]";
  if (component) out += "." + std::to_string(component);
  if (subcomponent) out += "." + std::to_string(subcomponent);
  return out;
}

std::string encode(std::string_view value, const Delimiters& d) {
  // A line break is the formatting command \.br\, unless '.' is a delimiter (MSH-2 may make it one): then
  // the command would split at the '.', and the line break is written as the hex escape \X0A\ instead.
  const bool dot_is_delimiter = d.field == '.' || d.component == '.' || d.repetition == '.' ||
                                d.escape == '.' || d.subcomponent == '.' || d.truncation == '.';
  const std::string_view line_break = dot_is_delimiter ? "X0A" : ".br";
  std::string out;
  out.reserve(value.size() + 8);
  for (std::size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (c == d.escape) {
      out += d.escape, out += 'E', out += d.escape;
    } else if (c == d.field) {
      out += d.escape, out += 'F', out += d.escape;
    } else if (c == d.component) {
      out += d.escape, out += 'S', out += d.escape;
    } else if (c == d.subcomponent) {
      out += d.escape, out += 'T', out += d.escape;
    } else if (c == d.repetition) {
      out += d.escape, out += 'R', out += d.escape;
    } else if (d.truncation != '\0' && c == d.truncation) {
      out += d.escape, out += 'P', out += d.escape;
    } else if (c == '\r' && i + 1 < value.size() && value[i + 1] == '\n') {
      continue;
    } else if (c == '\n' || c == '\r') {
      out += d.escape, out += line_break, out += d.escape;
    } else {
      out += c;
    }
  }
  return out;
}

std::string decode(std::string_view raw, const Delimiters& d, Charset charset) {
  bool latin1 = charset == Charset::latin1;
  std::string bytes;
  if (raw.find(d.escape) == std::string_view::npos) {
    if (!latin1) return std::string(raw);
    bytes.assign(raw);
  } else {
    bytes.reserve(raw.size());
    std::size_t i = 0;
    while (i < raw.size()) {
      char c = raw[i];
      std::size_t end = c == d.escape ? raw.find(d.escape, i + 1) : std::string_view::npos;
      if (end == std::string_view::npos) {
        bytes += c;
        ++i;
        continue;
      }
      std::string_view code = raw.substr(i + 1, end - i - 1);
      if (code == "F") {
        bytes += d.field;
      } else if (code == "S") {
        bytes += d.component;
      } else if (code == "T") {
        bytes += d.subcomponent;
      } else if (code == "R") {
        bytes += d.repetition;
      } else if (code == "E") {
        bytes += d.escape;
      } else if (code == "P" && d.truncation != '\0') {
        bytes += d.truncation;
      } else if (code == ".br") {
        bytes += '\n';
      } else if (code == "H" || code == "N") {
      } else if (is_hex_escape(code)) {
        for (std::size_t k = 1; k < code.size(); k += 2)
          bytes += static_cast<char>(hex_digit(code[k]) * 16 + hex_digit(code[k + 1]));
      } else {
        bytes.append(raw.substr(i, end - i + 1));
      }
      i = end + 1;
    }
    if (!latin1) return bytes;
  }
  std::string out;
  out.reserve(bytes.size() + bytes.size() / 8);
  for (char c : bytes) append_utf8_latin1(out, static_cast<unsigned char>(c));
  return out;
}

bool is_supported_version(std::string_view version) {
  for (std::string_view v : {"2.3", "2.4", "2.5", "2.6", "2.7", "2.8"}) {
    if (version == v ||
        (version.size() > v.size() && version.substr(0, v.size()) == v && version[v.size()] == '.'))
      return true;
  }
  return false;
}

Part Part::child(Level level, std::size_t i) const {
  assert(i >= 1);
  if (level <= level_) return i == 1 ? *this : Part({}, level_, message_);
  Part p = *this;
  while (p.level_ < level) {
    auto next = static_cast<Level>(static_cast<int>(p.level_) + 1);
    std::size_t k = next == level ? i : 1;
    p = Part(nth_piece(p.raw_, separator_for(p.level_, message_->delimiters_), k), next, message_);
  }
  return p;
}

Part Part::repetition(std::size_t i) const {
  return child(Level::repetition, i);
}
Part Part::component(std::size_t i) const {
  return child(Level::component, i);
}
Part Part::subcomponent(std::size_t i) const {
  return child(Level::subcomponent, i);
}

std::size_t Part::count() const {
  if (raw_.empty()) return 0;
  if (level_ == Level::subcomponent) return 1;
  char sep = separator_for(level_, message_->delimiters_);
  std::size_t n = 1;
  for (char c : raw_) n += c == sep;
  return n;
}

std::string Part::value() const {
  if (!message_) return {};
  Part leaf = level_ == Level::subcomponent ? *this : subcomponent(1);
  return decode(leaf.raw_, message_->delimiters_, message_->charset_);
}

std::string_view Segment::name() const {
  const auto& e = message_->segments_[index_];
  return message_->text(message_->fields_[e.first_field]);
}

std::size_t Segment::field_count() const {
  return message_->segments_[index_].field_count - 1;
}

Part Segment::field(std::size_t n) const {
  const auto& e = message_->segments_[index_];
  if (n == 0 || n >= e.field_count) return Part({}, Part::Level::field, message_);
  std::string_view raw = message_->text(message_->fields_[e.first_field + n]);
  bool literal = n <= 2 && is_header(name());
  return Part(raw, literal ? Part::Level::subcomponent : Part::Level::field, message_);
}

std::string_view Segment::raw() const {
  const auto& e = message_->segments_[index_];
  const auto& first = message_->fields_[e.first_field];
  const auto& last = message_->fields_[e.first_field + e.field_count - 1];
  return std::string_view(message_->raw_).substr(first.begin, last.begin + last.size - first.begin);
}

Result<Message> Message::parse(std::string_view text) {
  if (text.size() >= kBom.size() && text.substr(0, kBom.size()) == kBom) text.remove_prefix(kBom.size());
  if (text.size() > std::numeric_limits<std::uint32_t>::max() / 2)
    return Error::make(ErrorCode::payload_too_large, "HL7 v2 message too large");
  Message m;
  m.raw_.assign(text);
  if (Status s = m.index(); !s) return std::move(s).error();
  return m;
}

Status Message::index() {
  segments_.clear();
  fields_.clear();
  std::string_view all = raw_;
  std::size_t start = all.find_first_not_of("\r\n");
  if (start == std::string_view::npos) return invalid("HL7 v2 message is empty");
  std::string_view head = all.substr(start, 3);
  if (!is_header(head) || all.size() < start + 8)
    return invalid("HL7 v2 message must start with an MSH segment (1st segment)");
  Delimiters d;
  d.field = all[start + 3];
  std::size_t enc_end = start + 4;
  while (enc_end < all.size() && all[enc_end] != d.field && all[enc_end] != '\r' && all[enc_end] != '\n')
    ++enc_end;
  std::string_view enc = all.substr(start + 4, enc_end - start - 4);
  std::string label = segment_label(head, 1);
  if (enc.size() != 4 && enc.size() != 5)
    return invalid(label + "-2: expected 4 or 5 encoding characters, found " + std::to_string(enc.size()));
  std::string all_delims = std::string(1, d.field) + std::string(enc);
  for (std::size_t i = 0; i < all_delims.size(); ++i) {
    char c = all_delims[i];
    if (is_name_char(c) || (c >= 'a' && c <= 'z') || c == ' ' ||
        all_delims.find(c, i + 1) != std::string::npos)
      return invalid(label + "-2: delimiters must be distinct punctuation characters");
  }
  d.component = enc[0];
  d.repetition = enc[1];
  d.escape = enc[2];
  d.subcomponent = enc[3];
  if (enc.size() == 5) d.truncation = enc[4];
  delimiters_ = d;

  segments_.reserve(16);
  fields_.reserve(128);
  std::size_t pos = start;
  std::size_t ordinal = 0;
  while (pos < all.size()) {
    std::size_t end = pos;
    while (end < all.size() && all[end] != '\r' && all[end] != '\n') ++end;
    if (end == pos) {
      ++pos;
      continue;
    }
    ++ordinal;
    std::string_view line = all.substr(pos, end - pos);
    if (line.size() < 3 || !is_name_char(line[0]) || !is_name_char(line[1]) || !is_name_char(line[2]) ||
        (line.size() > 3 && line[3] != d.field)) {
      return invalid(
          "segment " + std::to_string(ordinal) + " (byte " + std::to_string(pos) +
          "): segment name must be three capital letters or digits followed by the field separator");
    }
    SegmentEntry e{static_cast<std::uint32_t>(fields_.size()), 0};
    std::string_view name = line.substr(0, 3);
    fields_.push_back({static_cast<std::uint32_t>(pos), 3});
    std::size_t f = pos + 3;
    if (is_header(name)) {
      if (line.size() < 4 || line.substr(4, enc.size()) != enc ||
          (line.size() > 4 + enc.size() && line[4 + enc.size()] != d.field)) {
        return invalid("segment " + std::to_string(ordinal) + " (" + std::string(name) +
                       "): encoding characters differ from the first header");
      }
      fields_.push_back({static_cast<std::uint32_t>(f), 1});
      fields_.push_back({static_cast<std::uint32_t>(f + 1), static_cast<std::uint32_t>(enc.size())});
      f += 1 + enc.size();
    }
    while (f < end) {
      std::size_t begin = f + 1;
      const void* hit = std::memchr(all.data() + begin, d.field, end - begin);
      std::size_t stop = hit ? static_cast<std::size_t>(static_cast<const char*>(hit) - all.data()) : end;
      fields_.push_back({static_cast<std::uint32_t>(begin), static_cast<std::uint32_t>(stop - begin)});
      f = stop;
    }
    e.field_count = static_cast<std::uint32_t>(fields_.size() - e.first_field);
    segments_.push_back(e);
    pos = end;
  }

  for (std::size_t s = 0; s < segments_.size(); ++s) {
    const auto& e = segments_[s];
    std::string_view name = text(fields_[e.first_field]);
    std::size_t first = is_header(name) ? 3 : 1;
    for (std::size_t n = first; n < e.field_count; ++n) {
      std::string_view field = text(fields_[e.first_field + n]);
      if (field.find(d.escape) == std::string_view::npos) continue;
      if (auto at = unterminated_escape(field, d)) {
        std::size_t occurrence = 0;
        for (std::size_t k = 0; k <= s; ++k) occurrence += text(fields_[segments_[k].first_field]) == name;
        return invalid(segment_label(name, occurrence) + field_location(field, *at, n, d) +
                       ": unterminated escape sequence at byte " +
                       std::to_string(fields_[e.first_field + n].begin + *at));
      }
    }
  }

  auto msh = nth_segment("MSH", 1);
  std::string_view charset = msh ? msh->field(18).repetition(1).raw() : std::string_view();
  if (charset.empty() || charset == "ASCII") {
    charset_ = Charset::ascii;
  } else if (charset == "8859/1") {
    charset_ = Charset::latin1;
  } else if (charset == "UNICODE UTF-8") {
    charset_ = Charset::utf8;
  } else {
    return invalid(segment_label(head, 1) +
                   "-18: unsupported character set (supported: ASCII, 8859/1, UNICODE UTF-8)");
  }
  return Ok{};
}

std::string Message::serialize() const {
  std::string out;
  out.reserve(raw_.size() + 2);
  for (std::size_t s = 0; s < segments_.size(); ++s) {
    out += Segment(this, s).raw();
    out += '\r';
  }
  return out;
}

std::optional<Segment> Message::nth_segment(std::string_view name, std::size_t occurrence) const {
  std::size_t seen = 0;
  for (std::size_t s = 0; s < segments_.size(); ++s) {
    if (text(fields_[segments_[s].first_field]) == name && ++seen == occurrence) return Segment(this, s);
  }
  return std::nullopt;
}

std::optional<Segment> Message::segment(std::string_view name) const {
  return nth_segment(name, 1);
}

std::vector<Segment> Message::segments(std::string_view name) const {
  std::vector<Segment> out;
  for (std::size_t s = 0; s < segments_.size(); ++s) {
    if (text(fields_[segments_[s].first_field]) == name) out.emplace_back(this, s);
  }
  return out;
}

std::optional<Part> Message::find(std::string_view path) const {
  auto p = Path::parse(path);
  if (!p || p->field == 0) return std::nullopt;
  auto seg = nth_segment(p->segment, p->segment_index);
  if (!seg) return std::nullopt;
  Part part = seg->field(p->field);
  if (part.level() == Part::Level::subcomponent) {
    if (p->repetition > 1 || p->component > 1 || p->subcomponent > 1)
      return Part({}, Part::Level::subcomponent, this);
    return part;
  }
  if (p->repetition) part = part.repetition(p->repetition);
  if (p->component) part = part.component(p->component);
  if (p->subcomponent) part = part.subcomponent(p->subcomponent);
  return part;
}

std::string Message::value(std::string_view path) const {
  auto part = find(path);
  return part ? part->value() : std::string();
}

MessageType Message::message_type() const {
  return MessageType{value("MSH-9.1"), value("MSH-9.2"), value("MSH-9.3")};
}

Status Message::set(std::string_view path, std::string_view value) {
  if (charset_ == Charset::latin1) {
    auto latin = to_latin1(value);
    if (!latin) return std::move(latin).error();
    return set_raw(path, encode(*latin, delimiters_));
  }
  return set_raw(path, encode(value, delimiters_));
}

Status Message::set_raw(std::string_view path_text, std::string_view raw) {
  auto parsed = Path::parse(path_text);
  if (!parsed) return std::move(parsed).error();
  const Path& p = *parsed;
  if (p.field == 0) return invalid("path " + p.to_string() + " names no field");
  bool header = is_header(p.segment);
  if (header && p.field <= 2) return invalid("path " + p.to_string() + ": MSH-1 and MSH-2 cannot be set");

  auto seg = nth_segment(p.segment, p.segment_index);
  std::string_view old_segment;
  std::vector<std::string> fields;
  if (seg) {
    old_segment = seg->raw();
    const auto& e = segments_[seg->index()];
    for (std::size_t n = 0; n < e.field_count; ++n) fields.emplace_back(text(fields_[e.first_field + n]));
  } else {
    std::size_t existing = segments(p.segment).size();
    if (p.segment_index != existing + 1)
      return invalid("path " + p.to_string() + ": segment occurrence " + std::to_string(p.segment_index) +
                     " is more than one past the last");
    if (header) return invalid("path " + p.to_string() + ": header segments cannot be added");
    fields.push_back(p.segment);
  }
  if (fields.size() <= p.field) fields.resize(p.field + 1);

  std::string& field = fields[p.field];
  if (!p.repetition && !p.component && !p.subcomponent) {
    field.assign(raw);
  } else {
    const Delimiters& d = delimiters_;
    auto reps = split(field, d.repetition);
    std::size_t r = p.repetition ? p.repetition : 1;
    if (reps.size() < r) reps.resize(r);
    if (!p.component && !p.subcomponent) {
      reps[r - 1].assign(raw);
    } else {
      auto comps = split(reps[r - 1], d.component);
      std::size_t c = p.component ? p.component : 1;
      if (comps.size() < c) comps.resize(c);
      if (!p.subcomponent) {
        comps[c - 1].assign(raw);
      } else {
        auto subs = split(comps[c - 1], d.subcomponent);
        if (subs.size() < p.subcomponent) subs.resize(p.subcomponent);
        subs[p.subcomponent - 1].assign(raw);
        comps[c - 1] = join(subs, d.subcomponent);
      }
      reps[r - 1] = join(comps, d.component);
    }
    field = join(reps, d.repetition);
  }

  std::string new_segment = fields[0];
  for (std::size_t n = 1; n < fields.size(); ++n) {
    if (header && n <= 2) {
      new_segment += fields[n];
      continue;
    }
    new_segment += delimiters_.field;
    new_segment += fields[n];
  }

  std::string rebuilt;
  if (seg) {
    std::size_t at = static_cast<std::size_t>(old_segment.data() - raw_.data());
    rebuilt = raw_.substr(0, at) + new_segment + raw_.substr(at + old_segment.size());
  } else {
    rebuilt = serialize() + new_segment + '\r';
  }
  Message next;
  next.raw_ = std::move(rebuilt);
  if (Status s = next.index(); !s) return std::move(s).error();
  *this = std::move(next);
  return Ok{};
}

}  // namespace fhirgate::mappers
