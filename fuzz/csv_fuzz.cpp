// CSV: CsvReader over the input with options from its first byte (delimiter, encoding, a small record
// limit), optionally behind padding that puts the 64 KiB chunk boundary inside the fuzzed bytes. The
// fields of every record without an error must be well-formed UTF-8 (always, for windows-1252), records
// must not start before the one before, and the reader must finish.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>

#include "fuzz/common.hpp"
#include "mappers/csv.hpp"

using namespace fhirgate;
using mappers::CsvReader;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t flags = data[0];
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);

  mappers::CsvOptions options;
  constexpr char kDelimiters[] = {',', ';', '\t', '|'};
  options.delimiter = kDelimiters[flags & 3];
  options.encoding = (flags & 4) ? mappers::TextEncoding::windows1252 : mappers::TextEncoding::utf8;
  if (flags & 8) options.max_record_bytes = 16;

  std::string input;
  std::size_t padding_lines = 0;
  if ((flags & 16) && bytes.size() < CsvReader::kChunkBytes) {
    // One line of filler so that the first chunk ends half-way through the fuzzed bytes.
    const std::size_t filler = CsvReader::kChunkBytes - 1 - bytes.size() / 2;
    input.assign(filler, 'x');
    input += '\n';
    padding_lines = 1;
    if (flags & 8) options.max_record_bytes = CsvReader::kChunkBytes;
  }
  input += bytes;

  std::istringstream in(input);
  CsvReader reader(in, options);
  mappers::CsvRecord record;
  std::size_t records = 0;
  std::size_t last_line = 0;
  while (reader.next(record)) {
    FUZZ_CHECK(++records <= input.size() + 1);
    FUZZ_CHECK(record.line >= 1 && record.line <= record.end_line);
    FUZZ_CHECK(record.line >= last_line);
    last_line = record.line;
    if (records <= padding_lines) continue;
    if (!record.error.empty() && options.encoding == mappers::TextEncoding::utf8) continue;
    for (const std::string& field : record.fields) FUZZ_CHECK(mappers::valid_utf8(field));
  }
  FUZZ_CHECK(mappers::valid_utf8(mappers::windows1252_to_utf8(bytes)));
  return 0;
}
