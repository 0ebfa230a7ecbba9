#pragma once
// HL7 v2 messages: parse, read, modify and serialize (ER7, the pipe-and-hat encoding), versions 2.3 to 2.8.
//
// A Message owns a copy of the received text and, after one pass over it, a flat table of segments and
// fields as offsets into that text. Repetitions, components and subcomponents are not materialised: a Part
// is a view of a field (or a piece of it) that splits on demand, and escape sequences are decoded only
// when a value is read. That keeps parsing to one scan and two small vectors, which is what makes it
// fast; a Part or a string_view taken from a Message is valid until that Message is modified or destroyed.
//
// Numbering follows the standard: fields, repetitions, components and subcomponents are 1-based; MSH-1 is
// the field separator and MSH-2 the encoding characters (both read back verbatim, never split or decoded).
// The same holds for the FHS and BHS batch headers, so a batch file parses as one Message.
//
// Path syntax (value, find, set, and the error location of make_ack):
//     SEG[s]-F[r].C.S     e.g. "PID-3", "PID-5[1].2", "PID-3.4.1", "OBX[2]-5[1].1"
// s is the occurrence of the segment (default 1), r the repetition (default 1), C the component and S the
// subcomponent (absent = the first). Reading a path that stops above a subcomponent reads its first leaf,
// as HAPI's Terser does: value("PID-5") is PID-5[1].1.1.
//
// Text: values come back as UTF-8. MSH-18 names the character set: empty or ASCII, 8859/1 (converted to
// UTF-8 when read), UNICODE UTF-8; anything else is rejected at parse. The raw bytes are never changed, so
// serialize() returns the input with every segment terminated by a carriage return (CR, LF and CR LF are
// all accepted; a leading UTF-8 byte order mark and blank lines are dropped).
//
// Errors are values (invalid_input); their text names the place (segment name and occurrence, field,
// repetition, component, byte offset), never the content, so it is safe for logs.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/result.hpp"

namespace fhirgate::mappers {

struct Delimiters {
  char field = '|';
  char component = '^';
  char repetition = '~';
  char escape = '\\';
  char subcomponent = '&';
  char truncation = '\0';  // v2.7+: optional fifth encoding character; '\0' when absent
};

enum class Charset : std::uint8_t { ascii, latin1, utf8 };

// A location in a message; see the path syntax above. 0 means "not given".
struct Path {
  std::string segment;
  std::size_t segment_index = 1;
  std::size_t field = 0;
  std::size_t repetition = 0;
  std::size_t component = 0;
  std::size_t subcomponent = 0;

  static Result<Path> parse(std::string_view text);
  std::string to_string() const;  // canonical form, e.g. "PID[1]-3[2].1"
};

// Escapes a UTF-8 value for writing into a field: delimiters become \F\ \S\ \R\ \E\ \T\, line breaks \.br\.
std::string encode(std::string_view value, const Delimiters& delimiters = {});
// Decodes escape sequences in raw text and converts it to UTF-8. Unknown escapes are kept verbatim;
// \H\ and \N\ (highlighting) are dropped.
std::string decode(std::string_view raw, const Delimiters& delimiters = {}, Charset charset = Charset::ascii);

bool is_supported_version(std::string_view version);  // 2.3 .. 2.8.x

class Message;

// A field, repetition, component or subcomponent of a Message. Asking for a child that is not there
// gives an empty Part, as in the standard (an absent component and an empty one read the same).
class Part {
 public:
  enum class Level : std::uint8_t { field, repetition, component, subcomponent };

  Part() = default;
  Part(std::string_view raw, Level level, const Message* message)
      : raw_(raw), level_(level), message_(message) {}

  std::string_view raw() const { return raw_; }
  bool empty() const { return raw_.empty(); }
  Level level() const { return level_; }

  // Children; each steps down through the first repetition/component as needed (field.component(2) is
  // field.repetition(1).component(2)). On a Part already at or below that level (a subcomponent, or the
  // verbatim MSH-1/MSH-2), child 1 is the Part itself and any other child is empty.
  Part repetition(std::size_t i) const;
  Part component(std::size_t i) const;
  Part subcomponent(std::size_t i) const;
  // Number of children at the next level down (a non-empty leaf has 1, an empty Part 0).
  std::size_t count() const;

  // The decoded UTF-8 text of the first leaf (subcomponent) of this Part.
  std::string value() const;

 private:
  Part child(Level level, std::size_t i) const;

  std::string_view raw_;
  Level level_ = Level::subcomponent;
  const Message* message_ = nullptr;
};

class Segment {
 public:
  Segment(const Message* message, std::size_t index) : message_(message), index_(index) {}

  std::string_view name() const;
  // The highest field number present (MSH counts MSH-1 and MSH-2).
  std::size_t field_count() const;
  Part field(std::size_t n) const;
  std::string_view raw() const;                 // without terminator
  std::size_t index() const { return index_; }  // position in the message, 0-based

 private:
  const Message* message_;
  std::size_t index_;
};

struct MessageType {
  std::string code;       // MSH-9.1, e.g. ADT
  std::string trigger;    // MSH-9.2, e.g. A01
  std::string structure;  // MSH-9.3, e.g. ADT_A01 (may be empty)
};

class Message {
 public:
  // Errors: invalid_input for empty text, a first segment that is not MSH/FHS/BHS, bad encoding characters,
  // a malformed segment name, an unterminated escape sequence, an unknown MSH-18 character set;
  // payload_too_large beyond 4 GiB.
  static Result<Message> parse(std::string_view text);

  std::string serialize() const;

  std::size_t segment_count() const { return segments_.size(); }
  Segment segment_at(std::size_t index) const { return Segment(this, index); }
  // The first segment with this name, if any.
  std::optional<Segment> segment(std::string_view name) const;
  std::vector<Segment> segments(std::string_view name) const;

  std::optional<Part> find(std::string_view path) const;
  // Decoded value at the path; empty when absent or when the path is malformed.
  std::string value(std::string_view path) const;

  std::string control_id() const { return value("MSH-10"); }
  MessageType message_type() const;
  std::string version() const { return value("MSH-12"); }
  const Delimiters& delimiters() const { return delimiters_; }
  Charset charset() const { return charset_; }

  // Writes a UTF-8 value (escaped here) at the path, adding separators, repetitions, components and
  // segments as needed: a segment occurrence one past the last appends a new segment at the end. MSH-1
  // and MSH-2 cannot be set. In an 8859/1 message the value must be representable in Latin-1.
  Status set(std::string_view path, std::string_view value);
  // Same, with value already in wire form (escaped, delimiters meaningful).
  Status set_raw(std::string_view path, std::string_view raw);

 private:
  friend class Segment;
  friend class Part;

  struct Span {
    std::uint32_t begin;
    std::uint32_t size;
  };
  struct SegmentEntry {
    std::uint32_t first_field;
    std::uint32_t field_count;  // entries in fields_, including the name at [0]
  };

  Message() = default;
  Status index();
  std::string_view text(Span s) const { return std::string_view(raw_).substr(s.begin, s.size); }
  std::optional<Segment> nth_segment(std::string_view name, std::size_t occurrence) const;

  std::string raw_;
  std::vector<SegmentEntry> segments_;
  std::vector<Span> fields_;
  Delimiters delimiters_;
  Charset charset_ = Charset::ascii;
};

struct AckError {
  std::string location;        // path of the fault, e.g. "PID[1]-3[2].1"; empty when not tied to a place
  std::string code = "207";    // HL7 table 0357: 100 segment sequence, 101 required field missing,
                               // 102 data type, 103 table value, 200 unsupported message type,
                               // 201 event, 202 processing id, 203 version, 204 unknown key, 207 application
  std::string severity = "E";  // table 0516: E error, W warning, I information
};

struct AckOptions {
  std::string control_id;  // MSH-10 of the ACK
  std::string timestamp;   // MSH-7, e.g. 20240514092133
  std::optional<AckError> error;
  std::string accept_ack_type;       // MSH-15 of the ACK (empty = not valued)
  std::string application_ack_type;  // MSH-16 of the ACK
};

// An acknowledgement of `in` (ack_code AA AE AR CA CE CR): sending and receiving application/facility
// swapped, MSH-9 ACK^<trigger of in>^ACK, processing id and version of `in`, MSA-1 the code, MSA-2 the
// original control id, MSA-3 the text, and an ERR segment when an error is given (v2.5+ layout: ERR-2
// location, ERR-3 code, ERR-4 severity; v2.3/2.4: ERR-1). Uses the delimiters of `in`; ends with CR.
std::string make_ack(const Message& in, std::string_view ack_code, std::string_view text,
                     const AckOptions& options);

}  // namespace fhirgate::mappers
