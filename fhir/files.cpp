#include "fhir/files.hpp"

#include <zlib.h>

#include <fstream>
#include <sstream>

namespace fhirgate::fhir {

Result<std::string> read_file(const std::string& path) {
  const bool gz = path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  if (!gz) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return Error::make(ErrorCode::not_found, "cannot open " + path);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) return Error::make(ErrorCode::not_found, "cannot open " + path);
  std::string out;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  const bool failed = n < 0;
  gzclose(f);
  if (failed) return Error::make(ErrorCode::invalid_input, "corrupt gzip file " + path);
  return out;
}

Result<Node> read_json_file(const std::string& path) {
  auto text = read_file(path);
  if (!text) return std::move(text).error();
  auto node = parse_json(*text);
  if (!node) {
    Error e = std::move(node).error();
    e.internal = "parsing " + path + ": " + e.internal;
    return e;
  }
  return node;
}

}  // namespace fhirgate::fhir
