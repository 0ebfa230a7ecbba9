#pragma once
// Watched inbound folders for partner feeds. Every `poll_ms` the watcher looks in each feed's folder
// for regular files (names starting with '.' or ending in .part or .tmp are still being written and
// are left alone; senders write under such a name and rename when done; a file is also only taken once
// its size and time are the same on two sweeps in a row), oldest first, and ingests each through the
// feed's mapping (feed_ingest.hpp). Then the file moves to <folder>/done/ (or to
// <folder>/failed/ when it could not be taken as a whole or the store failed) under
// <UTC time>-<name>, next to <that name>.result.csv: one line per data row with its line, status,
// resource and reason. A file is only moved once its result is complete; stopping or crashing
// part-way leaves it in place, and taking it again changes nothing (ingestion is idempotent).
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "gateway/inbound/feed_ingest.hpp"

namespace fhirgate::gateway {

class FeedFolders {
 public:
  FeedFolders(const FeedService& service, unsigned poll_ms);
  ~FeedFolders();
  FeedFolders(const FeedFolders&) = delete;
  FeedFolders& operator=(const FeedFolders&) = delete;

  // Creates the folders (and done/, failed/) and starts watching. Throws std::runtime_error when a
  // folder cannot be created.
  void start();
  void stop();  // finishes the file in hand, then returns

 private:
  void loop();
  void sweep();
  void take(const PartnerFeed& feed, const std::filesystem::path& file);

  struct Sighting {
    std::uintmax_t size = 0;
    std::filesystem::file_time_type modified;
    bool operator==(const Sighting&) const = default;
  };

  const FeedService& service_;
  unsigned poll_ms_;
  std::map<std::filesystem::path, Sighting> seen_;  // files and how they looked on the last sweep
  std::set<std::filesystem::path> stuck_;           // taken but could not be moved away
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace fhirgate::gateway
