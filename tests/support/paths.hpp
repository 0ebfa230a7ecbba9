#pragma once
#include <string>

namespace fhirgate::testing {

// The repository root, e.g. for profiles/ and samples/.
std::string source_path(const std::string& relative);
// A file under ../shared (the corpora); empty when ../shared is not present, so tests can skip cleanly.
std::string shared_path(const std::string& relative);
// A fresh, empty temporary directory removed at process exit.
std::string temp_dir();

}  // namespace fhirgate::testing
