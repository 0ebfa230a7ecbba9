#include "fhir/text.hpp"

#include <array>

namespace fhirgate::fhir {
namespace {

constexpr char32_t kFoldFirst = 0x00C0;
constexpr char32_t kFoldLast = 0x017F;

struct FoldRange {
  char32_t first;
  char32_t last;
  const char* base;
};

// Latin-1 Supplement and Latin Extended-A letters and the lower-case base letters they fold to.
// Code points in [kFoldFirst, kFoldLast] not listed here (× and ÷) pass through.
constexpr FoldRange kFolds[] = {
    {0x00C0, 0x00C5, "a"},  {0x00C6, 0x00C6, "ae"}, {0x00C7, 0x00C7, "c"},  {0x00C8, 0x00CB, "e"},
    {0x00CC, 0x00CF, "i"},  {0x00D0, 0x00D0, "d"},  {0x00D1, 0x00D1, "n"},  {0x00D2, 0x00D6, "o"},
    {0x00D8, 0x00D8, "o"},  {0x00D9, 0x00DC, "u"},  {0x00DD, 0x00DD, "y"},  {0x00DE, 0x00DE, "th"},
    {0x00DF, 0x00DF, "ss"}, {0x00E0, 0x00E5, "a"},  {0x00E6, 0x00E6, "ae"}, {0x00E7, 0x00E7, "c"},
    {0x00E8, 0x00EB, "e"},  {0x00EC, 0x00EF, "i"},  {0x00F0, 0x00F0, "d"},  {0x00F1, 0x00F1, "n"},
    {0x00F2, 0x00F6, "o"},  {0x00F8, 0x00F8, "o"},  {0x00F9, 0x00FC, "u"},  {0x00FD, 0x00FD, "y"},
    {0x00FE, 0x00FE, "th"}, {0x00FF, 0x00FF, "y"},  {0x0100, 0x0105, "a"},  {0x0106, 0x010D, "c"},
    {0x010E, 0x0111, "d"},  {0x0112, 0x011B, "e"},  {0x011C, 0x0123, "g"},  {0x0124, 0x0127, "h"},
    {0x0128, 0x0131, "i"},  {0x0132, 0x0133, "ij"}, {0x0134, 0x0135, "j"},  {0x0136, 0x0138, "k"},
    {0x0139, 0x0142, "l"},  {0x0143, 0x014B, "n"},  {0x014C, 0x0151, "o"},  {0x0152, 0x0153, "oe"},
    {0x0154, 0x0159, "r"},  {0x015A, 0x0161, "s"},  {0x0162, 0x0167, "t"},  {0x0168, 0x0173, "u"},
    {0x0174, 0x0175, "w"},  {0x0176, 0x0178, "y"},  {0x0179, 0x017E, "z"},  {0x017F, 0x017F, "s"},
};

using FoldTable = std::array<const char*, kFoldLast - kFoldFirst + 1>;

constexpr FoldTable make_fold_table() {
  FoldTable table{};
  for (const FoldRange& r : kFolds) {
    for (char32_t cp = r.first; cp <= r.last; ++cp) table[cp - kFoldFirst] = r.base;
  }
  return table;
}

constexpr FoldTable kFoldTable = make_fold_table();

constexpr bool is_combining_mark(char32_t cp) {
  return cp >= 0x0300 && cp <= 0x036F;
}

bool is_continuation(unsigned char b) {
  return (b & 0xC0) == 0x80;
}

}  // namespace

// Every code point this function changes is encoded in two bytes and folds to at most two ASCII letters,
// so the output is never longer than the input and one reservation suffices.
std::string normalize_for_search(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (b < 0x80) {
      out.push_back(b >= 'A' && b <= 'Z' ? static_cast<char>(b - 'A' + 'a') : static_cast<char>(b));
      continue;
    }
    const bool two_byte = b >= 0xC2 && b <= 0xDF && i + 1 < text.size() &&
                          is_continuation(static_cast<unsigned char>(text[i + 1]));
    if (!two_byte) {
      out.push_back(static_cast<char>(b));
      continue;
    }
    const char32_t cp =
        (static_cast<char32_t>(b & 0x1F) << 6) | (static_cast<unsigned char>(text[i + 1]) & 0x3F);
    if (cp >= kFoldFirst && cp <= kFoldLast && kFoldTable[cp - kFoldFirst] != nullptr) {
      out.append(kFoldTable[cp - kFoldFirst]);
    } else if (!is_combining_mark(cp)) {
      out.append(text.substr(i, 2));
    }
    ++i;
  }
  return out;
}

}  // namespace fhirgate::fhir
