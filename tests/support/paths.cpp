#include "tests/support/paths.hpp"

#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace fhirgate::testing {
namespace {

std::vector<std::string>& temp_dirs() {
  static std::vector<std::string> dirs;
  return dirs;
}

void remove_temp_dirs() {
  std::error_code ec;
  for (const auto& d : temp_dirs()) std::filesystem::remove_all(d, ec);
}

}  // namespace

std::string source_path(const std::string& relative) {
  return std::string(FHIRGATE_SOURCE_DIR) + "/" + relative;
}

std::string shared_path(const std::string& relative) {
  std::string p = std::string(FHIRGATE_SHARED_DIR) + "/" + relative;
  if (std::filesystem::exists(p)) return p;
  // A visible skip: the tests that need it return without running.
  static std::mutex m;
  std::lock_guard lock(m);
  static std::vector<std::string> reported;
  if (std::find(reported.begin(), reported.end(), relative) == reported.end()) {
    reported.push_back(relative);
    std::fprintf(stderr, "SKIPPED: %s is not here; the tests that need it do not run\n", p.c_str());
  }
  return std::string();
}

std::string temp_dir() {
  static std::mutex m;
  std::lock_guard lock(m);
  if (temp_dirs().empty()) std::atexit(remove_temp_dirs);
  std::string pattern = (std::filesystem::temp_directory_path() / "fhirgate-test-XXXXXX").string();
  char* made = mkdtemp(pattern.data());
  if (!made) throw std::runtime_error("mkdtemp failed");
  temp_dirs().push_back(made);
  return made;
}

}  // namespace fhirgate::testing
