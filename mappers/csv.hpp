#pragma once
// Streaming CSV reader (RFC 4180) for partner feeds: client lists and consent registers, often a million
// rows or more, so the input is never held whole.
//
// CsvReader reads the istream in chunks of kChunkBytes into one buffer that keeps the raw bytes of the
// current record from its first byte, so it never holds more than max_record_bytes plus one chunk. Fields are
// decoded straight from that buffer into the caller's record, whose vector and strings are reused from one
// call to the next, so a steady feed allocates nothing per row.
//
// Syntax: fields are separated by the delimiter; a record ends at CRLF, LF or a lone CR; a field may be
// quoted with '"', and inside quotes the delimiter, CR, LF and "" (one quote) are data. A final record
// without a line end counts. An empty line (nothing between two line ends) is not a record; a line of
// delimiters is a record of empty fields. A UTF-8 byte order mark at the very start is dropped, whatever
// the encoding.
//
// Errors are values: a malformed record is still returned, with `error` set ("line L, column C: reason")
// and fields that may be partial; the next call carries on, and no input is dropped without a record
// saying so. Recovery depends on what the error says about where the record really ends:
//  - a quote inside an unquoted field (ab"c), or text after a closing quote ("ab"c): the record runs to
//    the next line end outside quotes;
//  - a quote never closed (it reaches the end of input or max_record_bytes), or closed only on a later
//    line and then followed by text: the quote was stray and swallowed the lines after it, so the record is
//    reported at its first line only (end_line == line) and reading resumes at the next physical line,
//    which is read again as new records;
//  - a record longer than max_record_bytes with no quote open: reading resumes after the next line end.
// When a record has several faults, the first one found is reported.
//
// Positions: lines are physical lines counted from 1 (CRLF is one line end); columns count characters
// from 1 on that line (UTF-8 code points, or bytes for windows-1252), not counting a dropped byte order
// mark. Invalid UTF-8 is located at the first byte of the ill-formed sequence.
//
// Encoding: utf8 input is checked, one record at a time, and a record with ill-formed UTF-8 is an error;
// windows1252 input is converted to UTF-8, and the five bytes the code page leaves undefined
// (0x81 0x8D 0x8F 0x90 0x9D) become U+FFFD, so every byte is accepted.
//
// A failing stream ends the input like end of file; the caller tells them apart with in.bad(). Not
// thread-safe: one reader per stream, and the stream must outlive the reader.
#include <array>
#include <cstddef>
#include <istream>
#include <string>
#include <string_view>
#include <vector>

namespace fhirgate::mappers {

enum class TextEncoding { utf8, windows1252 };

struct CsvOptions {
  char delimiter = ',';  // anything but '"', CR and LF
  TextEncoding encoding = TextEncoding::utf8;
  std::size_t max_record_bytes = 1024 * 1024;  // a record (all its fields, raw) longer than this is an error
};

struct CsvRecord {
  std::vector<std::string> fields;  // decoded to UTF-8, quotes removed, "" unescaped
  std::size_t line = 0;             // physical line (1-based) where the record starts
  std::size_t end_line = 0;         // physical line where it ends (differs if a quoted field holds newlines)
  std::string error;                // empty when the record is well-formed, else "line L, column C: reason"
};

class CsvReader {
 public:
  // Bytes asked of the stream per read; reads always ask for this much, so chunk boundaries fall at
  // multiples of it in the input.
  static constexpr std::size_t kChunkBytes = 64 * 1024;

  explicit CsvReader(std::istream& in, CsvOptions options = {});

  // Reads the next record into `out`, replacing what it held. Returns false at end of input.
  bool next(CsvRecord& out);

 private:
  enum class State { field_start, unquoted, quoted, after_quote };

  bool read_more();
  bool skip_empty_lines();
  void skip_past_line_end();
  void end_record(CsvRecord& out, std::size_t field_count, std::size_t raw_end, std::size_t line_breaks);
  void resume_after_first_line(CsvRecord& out, std::size_t field_count, std::size_t raw_end);
  void report(CsvRecord& out, std::size_t offset, std::string_view reason) const;
  std::string locate(std::size_t offset, std::size_t first_line) const;
  void append_decoded(std::string& field, const char* data, std::size_t size) const;

  std::istream& in_;
  CsvOptions options_;
  std::array<bool, 256> ends_unquoted_run_{};  // delimiter, quote, CR, LF
  std::string buffer_;
  std::size_t pos_ = 0;           // next byte to read in buffer_
  std::size_t end_ = 0;           // end of the bytes held in buffer_
  std::size_t record_start_ = 0;  // first byte read_more() must keep
  std::size_t quote_open_ = 0;    // opening quote of the current quoted field
  std::size_t next_line_ = 1;     // physical line of pos_
  bool after_cr_ = false;         // pos_ follows a CR line end, so an LF there completes a CRLF
  bool started_ = false;
  bool input_ended_ = false;
};

// Windows-1252 bytes to UTF-8; the undefined bytes 0x81 0x8D 0x8F 0x90 0x9D become U+FFFD.
std::string windows1252_to_utf8(std::string_view bytes);

// True when `text` is well-formed UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF); else
// false, and *bad_offset (when given) is the offset of the first byte of the first ill-formed sequence.
bool valid_utf8(std::string_view text, std::size_t* bad_offset = nullptr);

}  // namespace fhirgate::mappers
