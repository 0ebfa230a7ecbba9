#include "fhir/text.hpp"

#include <doctest/doctest.h>

namespace fhirgate::fhir {
namespace {

TEST_CASE("normalize_for_search: ASCII is lower-cased, nothing else changes") {
  CHECK(normalize_for_search("") == "");
  CHECK(normalize_for_search("Van Der BERG-Smith, Jr. 42") == "van der berg-smith, jr. 42");
  CHECK(normalize_for_search("az@[`{~") == "az@[`{~");
}

TEST_CASE("normalize_for_search: Latin-1 letters fold to base letters") {
  CHECK(normalize_for_search("ÉLODIE") == "elodie");
  CHECK(normalize_for_search("Müller") == "muller");
  CHECK(normalize_for_search("Núñez") == "nunez");
  CHECK(normalize_for_search("Straße") == "strasse");
  CHECK(normalize_for_search("ØSTERGÅRD") == "ostergard");
  CHECK(normalize_for_search("Æbleø") == "aebleo");
  CHECK(normalize_for_search("ÀÁÂÃÄÅàáâãäå") == "aaaaaaaaaaaa");
  CHECK(normalize_for_search("ÇçÐðÑñÝýÿÞþ") == "ccddnnyyythth");
  CHECK(normalize_for_search("ÈÉÊËèéêëÌÍÎÏìíîïÒÓÔÕÖòóôõöÙÚÛÜùúûü") == "eeeeeeeeiiiiiiiioooooooooouuuuuuuu");
}

TEST_CASE("normalize_for_search: Latin Extended-A letters fold to base letters") {
  CHECK(normalize_for_search("Łódź") == "lodz");
  CHECK(normalize_for_search("łódź") == "lodz");
  CHECK(normalize_for_search("Œuvre") == "oeuvre");
  CHECK(normalize_for_search("œ") == "oe");
  CHECK(normalize_for_search("Dvořák") == "dvorak");
  CHECK(normalize_for_search("Şahin Ğ ı İ") == "sahin g i i");
  CHECK(normalize_for_search("Ĳssel") == "ijssel");
  CHECK(normalize_for_search("ĀăĄćĈċČďĐēĘěĝĠģĥĦĩĶĸĺĽŀńŇŉŋŌőŕŘśŜşŠţŤŧũŪůŰųŴŶŸźŻžſ") ==
        "aaacccc"
        "dd"
        "eee"
        "ggg"
        "hh"
        "i"
        "kk"
        "lll"
        "nnnn"
        "oo"
        "rr"
        "ssss"
        "ttt"
        "uuuuu"
        "w"
        "yy"
        "zzz"
        "s");
}

TEST_CASE("normalize_for_search: multiplication and division signs are not letters") {
  CHECK(normalize_for_search("2×3÷1") == "2×3÷1");
}

TEST_CASE("normalize_for_search: combining marks are dropped") {
  CHECK(normalize_for_search("E\xCC\x81lodie") == "elodie");  // E + U+0301
  CHECK(normalize_for_search("n\xCC\x83") == "n");            // n + U+0303
  CHECK(normalize_for_search("a\xCC\x80\xCD\xAF") == "a");    // U+0300 and U+036F, the range ends
  CHECK(normalize_for_search("a\xCD\xB0") == "a\xCD\xB0");    // U+0370 is outside the range
  CHECK(normalize_for_search("a\xCB\xBF") == "a\xCB\xBF");    // U+02FF is outside the range
}

TEST_CASE("normalize_for_search: other code points pass through unchanged") {
  CHECK(normalize_for_search("Ωμέγα") == "Ωμέγα");
  CHECK(normalize_for_search("Дмитрий") == "Дмитрий");
  CHECK(normalize_for_search("山田 太郎") == "山田 太郎");
  CHECK(normalize_for_search("\xF0\x9F\x98\x80 OK") == "\xF0\x9F\x98\x80 ok");
  CHECK(normalize_for_search("ƀ") == "ƀ");  // U+0180, just past Latin Extended-A
}

TEST_CASE("normalize_for_search: invalid UTF-8 bytes are kept") {
  const std::string_view cut("A\xC3\xA9", 2);
  CHECK(normalize_for_search("A\xC3") == "a\xC3");
  CHECK(normalize_for_search(cut) == "a\xC3");
  CHECK(normalize_for_search("\xC3Z") == "\xC3z");
  CHECK(normalize_for_search("\x80\xBF X") == "\x80\xBF x");
  CHECK(normalize_for_search("\xC0\x81") == "\xC0\x81");
  CHECK(normalize_for_search("\xFF\xFE!") == "\xFF\xFE!");
  CHECK(normalize_for_search("\xFF€É") == "\xFF€e");
}

TEST_CASE("normalize_for_search: output never longer than input") {
  const std::string text = "ÆÞßĲŒ";
  const std::string out = normalize_for_search(text);
  CHECK(out == "aethssijoe");
  CHECK(out.size() <= text.size());
}

}  // namespace
}  // namespace fhirgate::fhir
