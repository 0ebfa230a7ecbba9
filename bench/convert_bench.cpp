// Conversion throughput: FHIR JSON -> XML and XML -> JSON on given resources, in MB/s of input.
// Usage: convert_bench PROFILES_DIR FILE... (each a JSON resource); each direction runs >= 2 s.
#include <chrono>
#include <cstdio>
#include <string>

#include "fhir/files.hpp"
#include "fhir/json.hpp"
#include "fhir/model.hpp"
#include "fhir/xml.hpp"

namespace {

template <class F>
double mb_per_s(std::size_t bytes, F&& f) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  std::size_t runs = 0;
  double seconds = 0;
  do {
    f();
    ++runs;
    seconds = std::chrono::duration<double>(clock::now() - start).count();
  } while (seconds < 2.0);
  return static_cast<double>(bytes) * static_cast<double>(runs) / seconds / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace fhirgate::fhir;
  using fhirgate::Result;
  if (argc < 3) {
    std::fprintf(stderr, "usage: convert_bench PROFILES_DIR FILE...\n");
    return 2;
  }
  auto model = Model::load_from(argv[1]);
  if (!model) {
    std::fprintf(stderr, "cannot load model\n");
    return 1;
  }
  std::printf("%-40s %10s %10s %14s %14s\n", "file", "json B", "xml B", "json->xml MB/s", "xml->json MB/s");
  for (int i = 2; i < argc; ++i) {
    auto text = read_file(argv[i]);
    auto node = text ? parse_json(*text) : Result<Node>(text.error());
    if (!node) {
      std::fprintf(stderr, "%s: cannot read\n", argv[i]);
      return 1;
    }
    auto xml = json_to_xml(**model, *node);
    if (!xml) {
      std::fprintf(stderr, "%s: %s\n", argv[i], xml.error().issues.front().diagnostics.c_str());
      return 1;
    }
    // Each direction includes parsing its input: text in, text out.
    const double to_xml = mb_per_s(text->size(), [&] {
      auto n = parse_json(*text);
      auto x = json_to_xml(**model, *n);
      if (!x) std::abort();
    });
    const double to_json = mb_per_s(xml->size(), [&] {
      auto n = xml_to_json(**model, *xml);
      if (!n) std::abort();
      auto j = write_json(*n);
    });
    std::string name = argv[i];
    if (name.size() > 40) name = "..." + name.substr(name.size() - 37);
    std::printf("%-40s %10zu %10zu %14.1f %14.1f\n", name.c_str(), text->size(), xml->size(), to_xml,
                to_json);
  }
  return 0;
}
