#include "gateway/inbound/feed_folders.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "fhir/files.hpp"

namespace fhirgate::gateway {
namespace {

namespace fs = std::filesystem;

bool still_being_written(const std::string& name) {
  return name.empty() || name[0] == '.' || name.ends_with(".part") || name.ends_with(".tmp");
}

std::string utc_stamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

// RFC 4180 field: quoted when it holds a delimiter, quote or line break.
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

FeedFolders::FeedFolders(const FeedService& service, unsigned poll_ms)
    : service_(service), poll_ms_(poll_ms) {}

FeedFolders::~FeedFolders() {
  stop();
}

void FeedFolders::start() {
  for (const auto& feed : service_.feeds) {
    if (feed.folder.empty()) continue;
    std::error_code ec;
    for (const auto& dir :
         {fs::path(feed.folder), fs::path(feed.folder) / "done", fs::path(feed.folder) / "failed"}) {
      fs::create_directories(dir, ec);
      if (ec) throw std::runtime_error("cannot create feed folder " + dir.string() + ": " + ec.message());
    }
  }
  thread_ = std::thread([this] { loop(); });
}

void FeedFolders::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void FeedFolders::loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    sweep();
    lock.lock();
    wake_.wait_for(lock, std::chrono::milliseconds(poll_ms_), [this] { return stopping_; });
  }
}

void FeedFolders::sweep() {
  std::map<fs::path, Sighting> now_seen;
  for (const auto& feed : service_.feeds) {
    if (feed.folder.empty()) continue;
    std::vector<std::pair<fs::file_time_type, fs::path>> files;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(feed.folder, ec)) {
      if (!entry.is_regular_file(ec) || still_being_written(entry.path().filename().string())) continue;
      // Taken only once it looks the same on two sweeps in a row: a sender copying the file in place
      // (without the .part convention) is not read half-way.
      const Sighting sighting{entry.file_size(ec), entry.last_write_time(ec)};
      now_seen[entry.path()] = sighting;
      const auto before = seen_.find(entry.path());
      if (before == seen_.end() || !(before->second == sighting) || stuck_.contains(entry.path())) continue;
      files.emplace_back(sighting.modified, entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& [time, file] : files) {
      {
        std::lock_guard lock(mutex_);
        if (stopping_) return;
      }
      take(feed, file);
      now_seen.erase(file);
    }
  }
  seen_ = std::move(now_seen);
}

void FeedFolders::take(const PartnerFeed& feed, const fs::path& file) {
  const std::string name = file.filename().string();
  const std::string stamped = utc_stamp() + "-" + name;
  const fs::path result_part = fs::path(feed.folder) / ("." + stamped + ".result.csv.part");
  std::ofstream result(result_part, std::ios::binary | std::ios::trunc);
  result << "row,line,status,resource,reason\r\n";
  auto sink = [&](const FeedRowResult& row) {
    result << row.row << ',' << row.line << ',' << row.status << ',' << csv_field(row.resource) << ','
           << csv_field(row.reason) << "\r\n";
  };
  FeedOrigin origin;
  origin.partner = feed.partner;
  origin.partner_name = feed.partner_name;
  origin.channel = "file";
  std::error_code size_error;
  origin.size = static_cast<std::int64_t>(fs::file_size(file, size_error));
  // The journal keeps a file up to 16 MiB; a larger one stays in done/ or failed/ only.
  constexpr std::int64_t kKeptInJournal = 16 * 1024 * 1024;
  std::optional<std::string> text;
  if (feed.mapping->format == mappers::FeedMapping::Format::xml || origin.size <= kKeptInJournal) {
    auto read = fhir::read_file(file.string());
    if (read) text = std::move(*read);
  }
  if (text && origin.size <= kKeptInJournal) origin.payload = std::string_view(*text);
  FeedSummary summary;
  if (feed.mapping->format == mappers::FeedMapping::Format::csv) {
    std::ifstream file_in(file, std::ios::binary);
    std::istringstream text_in(text ? *text : std::string());
    std::istream& in = text ? static_cast<std::istream&>(text_in) : file_in;
    summary = ingest_csv(service_.context, feed, origin, in, sink);
  } else {
    summary = text ? ingest_xml(service_.context, feed, origin, *text, sink) : FeedSummary{};
    if (!text) summary.failure = Error::make(ErrorCode::invalid_input, "the file cannot be read");
  }
  if (summary.failure) {
    const auto& issues = summary.failure->issues;
    result << "0," << (issues.empty() ? 0 : issues.front().line) << ",failed,,"
           << csv_field(issues.empty() ? "failed" : issues.front().diagnostics) << "\r\n";
  }
  result.close();
  const fs::path target = fs::path(feed.folder) / (summary.failure ? "failed" : "done");
  std::error_code ec;
  fs::rename(result_part, target / (stamped + ".result.csv"), ec);
  fs::rename(file, target / stamped, ec);
  if (ec) {
    stuck_.insert(file);  // not taken again and again; its result file says what happened
    std::cerr << "fhirgate: cannot move feed file " << file << ": " << ec.message() << std::endl;
  }
  std::string counts;
  for (const auto& [status, n] : summary.by_status) counts += " " + status + "=" + std::to_string(n);
  std::cerr << "fhirgate: feed " << feed.partner << "/" << feed.id << " took " << name << ": " << summary.rows
            << " rows" << counts << (summary.failure ? " (FAILED: see the result file)" : "") << std::endl;
}

}  // namespace fhirgate::gateway
