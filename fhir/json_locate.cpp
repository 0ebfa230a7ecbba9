#include "fhir/json_locate.hpp"

#include <rapidjson/reader.h>

#include <algorithm>
#include <string>
#include <unordered_map>
#include <utility>

namespace fhirgate::fhir {
namespace {

struct Position {
  int line;
  int column;
};

// Parsed in situ (strings and numbers are read in place, never copied to the reader's own stack): with
// RapidJSON 1.1.0 the first push onto that stack does arithmetic on a null pointer, which UBSan reports.
constexpr unsigned kParseFlags =
    rapidjson::kParseInsituFlag | rapidjson::kParseNumbersAsStringsFlag | rapidjson::kParseStopWhenDoneFlag;
// The reader recurses per level; deeper documents are located down to this depth only.
constexpr std::size_t kMaxDepth = 256;

// Records, for every member and array item, its FHIRPath-style path and an offset: the opening quote of
// a member's name, the first character of a scalar array item, just inside the bracket of an object or
// array item. (RapidJSON reports strings before it advances the caller's stream, which it copies.) Paths
// are stored without the root, which is the document's resourceType.
class PathRecorder : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, PathRecorder> {
 public:
  explicit PathRecorder(rapidjson::InsituStringStream& stream) : stream_(stream) {}

  bool Key(const char* s, rapidjson::SizeType n, bool) {
    Frame& f = frames_.back();
    f.key.assign(s, n);
    if (frames_.size() == 1 && f.key == "resourceType") root_key_pending_ = true;
    offsets_.emplace(path_for_member(), stream_.Tell());
    return true;
  }
  bool StartObject() { return open(); }
  bool EndObject(rapidjson::SizeType) { return close(); }
  bool StartArray() { return open(true); }
  bool EndArray(rapidjson::SizeType) { return close(); }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    if (root_key_pending_ && frames_.size() == 1) {
      root_.assign(s, n);
      root_key_pending_ = false;
    }
    return Default();
  }
  bool Default() {
    item();
    return true;
  }

  std::string root_;
  std::unordered_map<std::string, std::size_t> offsets_;  // paths without the root prefix

 private:
  struct Frame {
    std::string path;  // path of this container, without the root
    bool array = false;
    int index = -1;
    std::string key;
  };

  std::string path_for_member() const {
    const Frame& f = frames_.back();
    return f.path + "." + f.key;
  }
  // Called when a value starts in the current container; returns that value's path.
  std::string item() {
    if (frames_.empty()) return {};
    Frame& f = frames_.back();
    if (!f.array) return path_for_member();
    ++f.index;
    std::string p = f.path + "[" + std::to_string(f.index) + "]";
    offsets_.emplace(p, stream_.Tell());
    return p;
  }
  bool open(bool array = false) {
    if (frames_.size() >= kMaxDepth) return false;
    if (frames_.empty()) offsets_.emplace(std::string(), stream_.Tell());
    std::string path = item();
    frames_.push_back(Frame{std::move(path), array, -1, {}});
    return true;
  }
  bool close() {
    frames_.pop_back();
    return true;
  }

  rapidjson::InsituStringStream& stream_;  // Tell() is not const
  std::vector<Frame> frames_;
  bool root_key_pending_ = false;
};

}  // namespace

void locate_issues(std::string_view json_text, std::vector<Issue>& issues, std::string_view root) {
  bool needed = false;
  for (const auto& issue : issues) needed |= issue.line == 0 && !issue.expression.empty();
  if (!needed) return;
  std::string buffer(json_text);
  rapidjson::InsituStringStream stream(buffer.data());
  PathRecorder recorder(stream);
  rapidjson::Reader reader;
  reader.Parse<kParseFlags>(stream, recorder);
  if (recorder.root_.empty()) recorder.root_ = root;
  if (recorder.root_.empty()) return;

  std::vector<std::size_t> line_starts{0};
  for (std::size_t i = 0; i < json_text.size(); ++i) {
    if (json_text[i] == '\n') line_starts.push_back(i + 1);
  }
  auto position = [&](std::size_t offset) {
    const auto it = std::upper_bound(line_starts.begin(), line_starts.end(), offset);
    const std::size_t line = static_cast<std::size_t>(it - line_starts.begin());
    return Position{static_cast<int>(line), static_cast<int>(offset - line_starts[line - 1] + 1)};
  };

  for (auto& issue : issues) {
    const std::string& e = issue.expression;
    const std::size_t n = recorder.root_.size();
    if (issue.line != 0 || e.compare(0, n, recorder.root_) != 0 ||
        (e.size() > n && e[n] != '.' && e[n] != '[')) {
      continue;
    }
    std::string path = e.substr(n);
    for (;;) {
      if (const auto it = recorder.offsets_.find(path); it != recorder.offsets_.end()) {
        const Position p = position(it->second);
        issue.line = p.line;
        issue.column = p.column;
        break;
      }
      if (path.empty()) break;
      const auto cut = path.find_last_of(".[");
      path.resize(cut == std::string::npos ? 0 : cut);
    }
  }
}

}  // namespace fhirgate::fhir
