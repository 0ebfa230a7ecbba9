#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "mappers/hl7v2.hpp"
#include "tests/support/paths.hpp"

namespace fhirgate::mappers {
namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The input as serialize() must give it back: no byte order mark, no blank lines, each segment ended by CR.
std::string normalised(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  std::string out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find_first_of("\r\n", pos);
    if (end == std::string_view::npos) end = text.size();
    if (end > pos) {
      out.append(text.substr(pos, end - pos));
      out += '\r';
    }
    pos = end + 1;
  }
  return out;
}

struct Counts {
  int files = 0;
  int round_tripped = 0;
  int rejected = 0;
};

Counts run_corpus(const std::string& dir) {
  Counts c;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".hl7") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& path : files) {
    ++c.files;
    std::string text = read_file(path);
    auto m = Message::parse(text);
    std::string name = std::filesystem::relative(path, dir).string();
    if (!m.ok()) {
      ++c.rejected;
      REQUIRE(!m.error().issues.empty());
      MESSAGE(name << ": rejected: " << m.error().issues[0].diagnostics);
      continue;
    }
    CHECK_MESSAGE(m->serialize() == normalised(text), name);
    if (m->serialize() == normalised(text)) ++c.round_tripped;
    CHECK_MESSAGE(!m->control_id().empty(), name);
    for (std::size_t s = 0; s < m->segment_count(); ++s) {
      Segment seg = m->segment_at(s);
      for (std::size_t f = 1; f <= seg.field_count(); ++f) {
        Part field = seg.field(f);
        if (field.level() != Part::Level::field) continue;
        for (std::size_t r = 1; r <= field.count(); ++r)
          for (std::size_t k = 1; k <= field.repetition(r).count(); ++k)
            (void)field.repetition(r).component(k).value();
      }
    }
  }
  return c;
}

TEST_CASE("hl7v2 corpus: microsoft FHIR-Converter samples round trip") {
  std::string dir = fhirgate::testing::shared_path("corpus/hl7v2-microsoft-fhir-converter");
  if (dir.empty()) return;
  Counts c = run_corpus(dir);
  MESSAGE("microsoft-fhir-converter: " << c.files << " files, " << c.round_tripped << " round tripped, "
                                       << c.rejected << " rejected");
  CHECK(c.files > 0);
  CHECK(c.rejected == 0);
  CHECK(c.round_tripped == c.files);
}

TEST_CASE("hl7v2 corpus: CDC trusted-intermediary samples round trip; malformed ones give errors") {
  std::string dir = fhirgate::testing::shared_path("corpus/hl7v2-cdc-trusted-intermediary");
  if (dir.empty()) return;
  Counts c = run_corpus(dir);
  MESSAGE("cdc-trusted-intermediary: " << c.files << " files, " << c.round_tripped << " round tripped, "
                                       << c.rejected << " rejected");
  CHECK(c.files > 0);
  CHECK(c.rejected == 1);
  CHECK(c.round_tripped + c.rejected == c.files);
  auto empty = Message::parse(read_file(dir + "/Test/Message/empty.hl7"));
  REQUIRE(!empty.ok());
  CHECK(empty.error().issues[0].diagnostics == "HL7 v2 message is empty");
}

TEST_CASE("hl7v2 corpus: linuxforhealth samples") {
  std::string dir = fhirgate::testing::shared_path("corpus/hl7v2-linuxforhealth");
  if (dir.empty()) return;
  Counts c = run_corpus(dir);
  MESSAGE("linuxforhealth: " << c.files << " files, " << c.round_tripped << " round tripped, " << c.rejected
                             << " rejected");
  CHECK(c.round_tripped + c.rejected == c.files);
}

}  // namespace
}  // namespace fhirgate::mappers
