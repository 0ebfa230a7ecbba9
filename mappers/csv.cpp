#include "mappers/csv.hpp"

#include <cassert>
#include <cstdint>
#include <cstring>

namespace fhirgate::mappers {
namespace {

constexpr char kQuote = '"';
constexpr std::string_view kUtf8ByteOrderMark = "\xEF\xBB\xBF";

constexpr bool is_line_end(char c) {
  return c == '\r' || c == '\n';
}

constexpr unsigned char byte(char c) {
  return static_cast<unsigned char>(c);
}

constexpr std::array<bool, 256> kEndsQuotedRun = [] {
  std::array<bool, 256> ends{};
  ends[byte(kQuote)] = true;
  ends[byte('\r')] = true;
  ends[byte('\n')] = true;
  return ends;
}();

// Code points of Windows-1252 bytes 0x80-0x9F; 0xA0-0xFF are the Latin-1 code points of the same value.
constexpr char32_t kWindows1252C1[32] = {
    0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,  // 0x80
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0xFFFD, 0x017D, 0xFFFD,  // 0x88
    0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,  // 0x90
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0x0178,  // 0x98
};

struct Utf8Sequence {
  char bytes[3] = {};
  std::uint8_t size = 0;
};

// The UTF-8 form of each byte 0x80-0xFF read as Windows-1252 (all below U+10000, so 2 or 3 bytes).
constexpr std::array<Utf8Sequence, 128> kWindows1252Utf8 = [] {
  std::array<Utf8Sequence, 128> table{};
  for (unsigned b = 0x80; b <= 0xFF; ++b) {
    const char32_t cp = b < 0xA0 ? kWindows1252C1[b - 0x80] : char32_t{b};
    Utf8Sequence& seq = table[b - 0x80];
    if (cp < 0x800) {
      seq.bytes[0] = static_cast<char>(0xC0 | (cp >> 6));
      seq.bytes[1] = static_cast<char>(0x80 | (cp & 0x3F));
      seq.size = 2;
    } else {
      seq.bytes[0] = static_cast<char>(0xE0 | (cp >> 12));
      seq.bytes[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      seq.bytes[2] = static_cast<char>(0x80 | (cp & 0x3F));
      seq.size = 3;
    }
  }
  return table;
}();

void append_windows1252(std::string& out, const char* data, std::size_t size) {
  std::size_t i = 0;
  while (i < size) {
    std::size_t ascii_end = i;
    while (ascii_end < size && byte(data[ascii_end]) < 0x80) ++ascii_end;
    out.append(data + i, ascii_end - i);
    if (ascii_end == size) break;
    const Utf8Sequence& seq = kWindows1252Utf8[byte(data[ascii_end]) - 0x80];
    out.append(seq.bytes, seq.size);
    i = ascii_end + 1;
  }
}

// The field that follows the `count` already used in `fields`, emptied; strings are reused, not freed.
std::string& next_field(std::vector<std::string>& fields, std::size_t& count) {
  if (count < fields.size()) {
    std::string& field = fields[count++];
    field.clear();
    return field;
  }
  ++count;
  return fields.emplace_back();
}

}  // namespace

std::string windows1252_to_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  append_windows1252(out, bytes.data(), bytes.size());
  return out;
}

bool valid_utf8(std::string_view text, std::size_t* bad_offset) {
  const std::size_t size = text.size();
  std::size_t i = 0;
  auto fail = [&] {
    if (bad_offset) *bad_offset = i;
    return false;
  };
  while (i < size) {
    if (byte(text[i]) < 0x80) {
      std::uint64_t word = 0;
      while (i + sizeof word <= size) {
        std::memcpy(&word, text.data() + i, sizeof word);
        if (word & 0x8080808080808080ULL) break;
        i += sizeof word;
      }
      while (i < size && byte(text[i]) < 0x80) ++i;
      continue;
    }
    // Per the Unicode well-formed byte sequence table: the lead byte fixes the length and the range of
    // the second byte, which rules out overlong forms, surrogates and code points above U+10FFFF.
    const unsigned char lead = byte(text[i]);
    std::size_t length = 0;
    unsigned char second_min = 0x80;
    unsigned char second_max = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead == 0xE0) {
      length = 3;
      second_min = 0xA0;
    } else if (lead == 0xED) {
      length = 3;
      second_max = 0x9F;
    } else if (lead >= 0xE1 && lead <= 0xEF) {
      length = 3;
    } else if (lead == 0xF0) {
      length = 4;
      second_min = 0x90;
    } else if (lead >= 0xF1 && lead <= 0xF3) {
      length = 4;
    } else if (lead == 0xF4) {
      length = 4;
      second_max = 0x8F;
    } else {
      return fail();
    }
    if (size - i < length) return fail();
    const unsigned char second = byte(text[i + 1]);
    if (second < second_min || second > second_max) return fail();
    for (std::size_t k = 2; k < length; ++k) {
      if ((byte(text[i + k]) & 0xC0) != 0x80) return fail();
    }
    i += length;
  }
  return true;
}

CsvReader::CsvReader(std::istream& in, CsvOptions options) : in_(in), options_(options) {
  assert(options_.delimiter != kQuote && !is_line_end(options_.delimiter));
  for (char c : {options_.delimiter, kQuote, '\r', '\n'}) ends_unquoted_run_[byte(c)] = true;
}

bool CsvReader::next(CsvRecord& out) {
  out.error.clear();
  if (!started_) {
    started_ = true;
    read_more();
    if (std::string_view(buffer_.data() + pos_, end_ - pos_).starts_with(kUtf8ByteOrderMark)) {
      pos_ += kUtf8ByteOrderMark.size();
    }
  }
  if (!skip_empty_lines()) {
    out.fields.clear();
    out.line = out.end_line = 0;
    return false;
  }
  record_start_ = pos_;
  out.line = next_line_;

  std::size_t field_count = 0;
  std::string* field = &next_field(out.fields, field_count);
  std::size_t line_breaks = 0;           // line ends inside quoted fields so far
  std::size_t line_breaks_at_quote = 0;  // ... when the current quoted field opened
  State state = State::field_start;
  const char delimiter = options_.delimiter;
  const bool* ends_unquoted_run = ends_unquoted_run_.data();
  const char* data = buffer_.data();
  std::size_t i = pos_;

  for (;;) {
    const std::size_t limit = end_ - record_start_ > options_.max_record_bytes
                                  ? record_start_ + options_.max_record_bytes + 1
                                  : end_;
    if (i == limit) {
      if (i - record_start_ > options_.max_record_bytes) {
        const std::string max = std::to_string(options_.max_record_bytes);
        if (state == State::quoted) {
          report(out, quote_open_, "quote never closed (record longer than " + max + " bytes)");
          resume_after_first_line(out, field_count, i);
          return true;
        }
        if (out.error.empty()) {
          out.error = "line " + std::to_string(out.line) + ": record longer than " + max + " bytes";
        }
        out.fields.resize(field_count);
        out.end_line = out.line + line_breaks;
        next_line_ = out.end_line + 1;
        pos_ = i;
        skip_past_line_end();
        return true;
      }
      pos_ = i;
      const bool more = read_more();
      i = pos_;
      data = buffer_.data();
      if (more) continue;
      if (state == State::quoted) {
        report(out, quote_open_, "quote never closed");
        resume_after_first_line(out, field_count, i);
        return true;
      }
      after_cr_ = false;
      end_record(out, field_count, i, line_breaks);
      return true;
    }

    switch (state) {
      case State::field_start:
        if (data[i] == kQuote) {
          state = State::quoted;
          quote_open_ = i;
          line_breaks_at_quote = line_breaks;
          ++i;
          break;
        }
        state = State::unquoted;
        [[fallthrough]];
      case State::unquoted: {
        const std::size_t from = i;
        while (i < limit && !ends_unquoted_run[byte(data[i])]) ++i;
        append_decoded(*field, data + from, i - from);
        if (i == limit) break;
        const char c = data[i];
        if (c == delimiter) {
          field = &next_field(out.fields, field_count);
          state = State::field_start;
          ++i;
        } else if (c == kQuote) {
          report(out, i, "a quote inside an unquoted field");
          field->push_back(kQuote);
          ++i;
        } else {
          pos_ = i + 1;
          after_cr_ = c == '\r';
          end_record(out, field_count, i, line_breaks);
          return true;
        }
        break;
      }
      case State::quoted: {
        const std::size_t from = i;
        for (;;) {
          while (i < limit && !kEndsQuotedRun[byte(data[i])]) ++i;
          if (i == limit || data[i] == kQuote) break;
          if (data[i] == '\r' || data[i - 1] != '\r') ++line_breaks;
          ++i;
        }
        append_decoded(*field, data + from, i - from);
        if (i < limit) {
          state = State::after_quote;
          ++i;
        }
        break;
      }
      case State::after_quote: {
        const char c = data[i];
        if (c == kQuote) {
          field->push_back(kQuote);
          state = State::quoted;
          ++i;
        } else if (c == delimiter) {
          field = &next_field(out.fields, field_count);
          state = State::field_start;
          ++i;
        } else if (is_line_end(c)) {
          pos_ = i + 1;
          after_cr_ = c == '\r';
          end_record(out, field_count, i, line_breaks);
          return true;
        } else if (line_breaks > line_breaks_at_quote) {
          report(out, quote_open_,
                 "quote never closed (the quote at " + locate(i - 1, out.line) +
                     " that would close it is followed by text)");
          resume_after_first_line(out, field_count, i);
          return true;
        } else {
          report(out, i, "text after a closing quote (expected the delimiter or a line end)");
          state = State::unquoted;
        }
        break;
      }
    }
  }
}

bool CsvReader::read_more() {
  if (input_ended_) return false;
  if (buffer_.size() - end_ < kChunkBytes) {
    if (record_start_ > 0) {
      const std::size_t kept = end_ - record_start_;
      std::memmove(buffer_.data(), buffer_.data() + record_start_, kept);
      pos_ -= record_start_;
      quote_open_ = quote_open_ >= record_start_ ? quote_open_ - record_start_ : 0;
      record_start_ = 0;
      end_ = kept;
    }
    if (buffer_.size() - end_ < kChunkBytes) buffer_.resize(end_ + kChunkBytes);
  }
  in_.read(buffer_.data() + end_, static_cast<std::streamsize>(kChunkBytes));
  const auto got = static_cast<std::size_t>(in_.gcount());
  end_ += got;
  if (got < kChunkBytes) input_ended_ = true;
  return got > 0;
}

bool CsvReader::skip_empty_lines() {
  for (;;) {
    if (pos_ == end_) {
      record_start_ = pos_;
      if (!read_more()) return false;
      continue;
    }
    const char c = buffer_[pos_];
    if (c == '\n' && after_cr_) {
      after_cr_ = false;
    } else if (is_line_end(c)) {
      ++next_line_;
      after_cr_ = c == '\r';
    } else {
      after_cr_ = false;
      return true;
    }
    ++pos_;
  }
}

void CsvReader::skip_past_line_end() {
  for (;;) {
    const char* data = buffer_.data();
    for (; pos_ < end_; ++pos_) {
      if (is_line_end(data[pos_])) {
        after_cr_ = data[pos_] == '\r';
        ++pos_;
        return;
      }
    }
    record_start_ = pos_;
    if (!read_more()) return;
  }
}

void CsvReader::end_record(CsvRecord& out, std::size_t field_count, std::size_t raw_end,
                           std::size_t line_breaks) {
  out.fields.resize(field_count);
  out.end_line = out.line + line_breaks;
  next_line_ = out.end_line + 1;
  if (out.error.empty() && options_.encoding == TextEncoding::utf8) {
    std::size_t bad = 0;
    if (!valid_utf8(std::string_view(buffer_.data() + record_start_, raw_end - record_start_), &bad)) {
      report(out, record_start_ + bad, "not valid UTF-8");
    }
  }
}

void CsvReader::resume_after_first_line(CsvRecord& out, std::size_t field_count, std::size_t raw_end) {
  out.fields.resize(field_count);
  out.end_line = out.line;
  next_line_ = out.line + 1;
  const std::string_view raw(buffer_.data() + record_start_, raw_end - record_start_);
  const std::size_t line_end = raw.find_first_of("\r\n");
  if (line_end != std::string_view::npos) {
    pos_ = record_start_ + line_end + 1;
    after_cr_ = raw[line_end] == '\r';
    return;
  }
  pos_ = raw_end;
  skip_past_line_end();
}

void CsvReader::report(CsvRecord& out, std::size_t offset, std::string_view reason) const {
  if (!out.error.empty()) return;
  out.error = locate(offset, out.line);
  out.error += ": ";
  out.error += reason;
}

std::string CsvReader::locate(std::size_t offset, std::size_t first_line) const {
  std::size_t line = first_line;
  std::size_t column = 1;
  for (std::size_t k = record_start_; k < offset; ++k) {
    const char c = buffer_[k];
    if (c == '\r' || (c == '\n' && (k == record_start_ || buffer_[k - 1] != '\r'))) {
      ++line;
      column = 1;
    } else if (c != '\n' && (options_.encoding == TextEncoding::windows1252 || (byte(c) & 0xC0) != 0x80)) {
      ++column;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

void CsvReader::append_decoded(std::string& field, const char* data, std::size_t size) const {
  if (size == 0) return;
  if (options_.encoding == TextEncoding::utf8) {
    field.append(data, size);
  } else {
    append_windows1252(field, data, size);
  }
}

}  // namespace fhirgate::mappers
