// Validation throughput and the memory the loaded definitions take.
// Usage: validate_bench PROFILES_DIR FILE... (JSON resources). Prints validations/s per file on one
// core (this thread), with and without invariants, and the process's resident memory after loading.
#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "fhir/files.hpp"
#include "fhir/json.hpp"
#include "fhir/model.hpp"
#include "fhir/terminology.hpp"
#include "fhir/validator.hpp"

namespace {

double resident_mib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0;
}

template <class F>
double per_second(F&& f) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  std::size_t runs = 0;
  double seconds = 0;
  do {
    f();
    ++runs;
    seconds = std::chrono::duration<double>(clock::now() - start).count();
  } while (seconds < 2.0);
  return static_cast<double>(runs) / seconds;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace fhirgate::fhir;
  using fhirgate::Result;
  if (argc < 3) {
    std::fprintf(stderr, "usage: validate_bench PROFILES_DIR FILE...\n");
    return 2;
  }
  const double before = resident_mib();
  const auto load_start = std::chrono::steady_clock::now();
  auto model = Model::load_from(argv[1]);
  auto terminology = Terminology::load_from(argv[1]);
  if (!model || !terminology) {
    std::fprintf(stderr, "cannot load definitions from %s\n", argv[1]);
    return 1;
  }
  const Validator validator(*model, *terminology);
  malloc_trim(0);
  const double load_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - load_start).count();
  std::printf("definitions: loaded in %.0f ms; resident %.1f MiB (process before loading: %.1f MiB)\n",
              load_ms, resident_mib(), before);
  std::printf("%-44s %9s %8s %16s %16s\n", "file", "bytes", "errors", "validations/s", "no invariants/s");
  for (int i = 2; i < argc; ++i) {
    auto text = read_file(argv[i]);
    auto node = text ? parse_json(*text) : Result<Node>(text.error());
    if (!node) {
      std::fprintf(stderr, "%s: cannot read\n", argv[i]);
      return 1;
    }
    const auto result = validator.validate(*node);
    std::size_t errors = 0;
    for (const auto& issue : result.issues) errors += issue.severity == "error";
    const double full = per_second([&] { validator.validate(*node); });
    ValidationOptions fast;
    fast.check_invariants = false;
    const double structural = per_second([&] { validator.validate(*node, fast); });
    std::string name = argv[i];
    if (name.size() > 44) name = "..." + name.substr(name.size() - 41);
    std::printf("%-44s %9zu %8zu %16.0f %16.0f\n", name.c_str(), text->size(), errors, full, structural);
  }
  return 0;
}
