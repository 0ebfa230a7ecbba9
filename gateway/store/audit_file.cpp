#include "gateway/store/audit_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "fhir/json.hpp"

namespace fhirgate::gateway::store {
namespace {

constexpr off_t kOwnerByte = 0;     // held exclusively by the owning process while the file is open
constexpr off_t kEmptyingByte = 1;  // exclusive to empty the file; shared while a verifier reads it

bool lock_byte(int fd, off_t byte, short type, bool wait) {
  struct flock lock {};
  lock.l_type = type;
  lock.l_whence = SEEK_SET;
  lock.l_start = byte;
  lock.l_len = 1;
  return ::fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &lock) == 0;
}

const char kHex[] = "0123456789abcdef";

std::string columns_json(const AuditColumns& c) {
  fhir::Node patients = fhir::Node::array();
  for (const auto& p : c.patients) patients.push(fhir::Node::string(p));
  fhir::Node o = fhir::Node::object();
  o.set("agent", fhir::Node::string(c.agent));
  o.set("entity", fhir::Node::string(c.entity));
  o.set("action", fhir::Node::string(c.action));
  o.set("outcome", fhir::Node::string(c.outcome));
  o.set("patients", std::move(patients));
  return fhir::write_json(o);
}

void append_frame(std::string& out, const AuditRecord& r) {
  const std::string columns = columns_json(r.columns);
  out += std::to_string(r.seq);
  out += ' ';
  out += std::to_string(r.recorded_ms);
  out += ' ';
  out += r.format;
  out += ' ';
  for (unsigned char c : r.chain) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  out += ' ';
  out += std::to_string(columns.size());
  out += ' ';
  out += std::to_string(r.body.size());
  out += '\n';
  out += columns;
  out += r.body;
  out += '\n';
}

template <class T>
bool number(std::string_view text, T& value) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size();
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// What reading a frame found: a frame, the end of the file, or a frame cut short there (a write the
// crash interrupted: it was never fsynced, so never acknowledged), or damage (a complete frame that does
// not read: changed or corrupted, and the frames after it must not be dropped with it).
enum class FrameRead { frame, end, cut_short, damaged };

// One frame from `data` at `pos` into `out`; advances `pos` past it.
FrameRead parse_frame(std::string_view data, std::size_t& pos, AuditRecord& out, std::string& why) {
  if (pos == data.size()) return FrameRead::end;
  constexpr std::size_t kMaxHeader = 256;
  const std::size_t eol = data.find('\n', pos);
  if (eol == std::string_view::npos) {
    if (data.size() - pos <= kMaxHeader) return FrameRead::cut_short;
    why = "a header line without its end";
    return FrameRead::damaged;
  }
  auto damaged = [&](const char* what) {
    why = what;
    return FrameRead::damaged;
  };
  if (eol - pos > kMaxHeader) return damaged("a header line too long");
  std::vector<std::string_view> fields;
  std::string_view header = data.substr(pos, eol - pos);
  for (std::size_t start = 0; start <= header.size();) {
    const std::size_t space = header.find(' ', start);
    const std::size_t end = space == std::string_view::npos ? header.size() : space;
    fields.push_back(header.substr(start, end - start));
    start = end + 1;
  }
  AuditRecord r;
  std::size_t columns_size = 0, body_size = 0;
  if (fields.size() != 6 || !number(fields[0], r.seq) || !number(fields[1], r.recorded_ms) ||
      fields[3].size() != 64 || !number(fields[4], columns_size) || !number(fields[5], body_size))
    return damaged("a header line that does not read");
  r.format = std::string(fields[2]);
  for (std::size_t i = 0; i < r.chain.size(); ++i) {
    const int hi = hex_digit(fields[3][2 * i]), lo = hex_digit(fields[3][2 * i + 1]);
    if (hi < 0 || lo < 0) return damaged("a chain value that is not hexadecimal");
    r.chain[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  const std::size_t start = eol + 1;
  if (columns_size > data.size() || body_size > data.size() ||
      data.size() < start + columns_size + body_size + 1)
    return FrameRead::cut_short;
  if (data[start + columns_size + body_size] != '\n')
    return damaged("an event whose length is not as its header says");
  auto columns = fhir::parse_json(data.substr(start, columns_size));
  if (!columns || !columns->is_object()) return damaged("search columns that do not read");
  r.columns.agent = std::string(columns->string_at("agent"));
  r.columns.entity = std::string(columns->string_at("entity"));
  r.columns.action = std::string(columns->string_at("action"));
  r.columns.outcome = std::string(columns->string_at("outcome"));
  if (const fhir::Node* patients = columns->find("patients"))
    for (const auto& p : patients->items()) r.columns.patients.push_back(p.text());
  r.body = std::string(data.substr(start + columns_size, body_size));
  pos = start + columns_size + body_size + 1;
  out = std::move(r);
  return FrameRead::frame;
}

std::string read_all(int fd) {
  std::string data;
  char buffer[1 << 16];
  for (off_t offset = 0;;) {
    const ssize_t n = ::pread(fd, buffer, sizeof buffer, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      throw std::runtime_error(std::string("cannot read the audit log file: ") + std::strerror(errno));
    if (n == 0) return data;
    data.append(buffer, static_cast<std::size_t>(n));
    offset += n;
  }
}

// The frames of the file at `path` (its bytes `data`); `complete` is where they end. A frame cut short
// at the end is left out; damage anywhere throws std::runtime_error naming the file, the byte and the
// last good event: what follows it cannot be trusted, nor dropped without a trace.
std::vector<AuditRecord> parse_frames(const std::string& path, std::string_view data, std::size_t& complete) {
  std::vector<AuditRecord> out;
  std::size_t pos = 0;
  for (;;) {
    AuditRecord r;
    std::string why;
    const FrameRead read = parse_frame(data, pos, r, why);
    if (read == FrameRead::frame) {
      out.push_back(std::move(r));
      continue;
    }
    if (read == FrameRead::damaged)
      throw std::runtime_error("the audit log file " + path + " is damaged at byte " + std::to_string(pos) +
                               " (" + why +
                               (out.empty() ? std::string(", at its first event")
                                            : ", after event " + std::to_string(out.back().seq)) +
                               "): it holds AuditEvents not yet in the database; keep a copy for "
                               "investigation (docs/security.md)");
    complete = pos;
    return out;
  }
}

}  // namespace

std::string real_database_path(const std::string& db_path) {
  std::error_code ec;
  const auto real = std::filesystem::weakly_canonical(db_path, ec);
  return ec ? db_path : real.string();
}

std::vector<std::string> audit_log_paths(const std::string& db_path) {
  const std::string base = real_database_path(db_path);
  return {base + ".audit-log", base + ".audit-log.2"};
}

namespace {

constexpr off_t kDatabaseOwnerByte = 0x3FFF0000;  // below SQLite's lock bytes (0x40000000 to +512)

// Whether another open file holds the owner byte of the audit log file at `path` (none: not there).
bool log_file_owned_elsewhere(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct flock probe {};
  probe.l_type = F_WRLCK;
  probe.l_whence = SEEK_SET;
  probe.l_start = kOwnerByte;
  probe.l_len = 1;
  const bool held = ::fcntl(fd, F_OFD_GETLK, &probe) == 0 && probe.l_type != F_UNLCK;
  ::close(fd);
  return held;
}

}  // namespace

std::string replaced_file_problem(const std::string& db_path) {
  const int fd = ::open(db_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  struct flock probe {};
  probe.l_type = F_WRLCK;
  probe.l_whence = SEEK_SET;
  probe.l_start = kDatabaseOwnerByte;
  probe.l_len = 1;
  const bool locked = ::fcntl(fd, F_OFD_GETLK, &probe) == 0 && probe.l_type != F_UNLCK;
  struct stat st {};
  const bool empty = ::fstat(fd, &st) == 0 && st.st_size == 0;
  ::close(fd);
  std::error_code ec;
  if (empty && std::filesystem::exists(db_path + "-wal", ec))
    return "the database file " + db_path +
           " is empty but has a write-ahead log: it was replaced or separated "
           "from its files";
  bool logs_owned_elsewhere = false;
  for (const auto& log : audit_log_paths(db_path))
    logs_owned_elsewhere = logs_owned_elsewhere || log_file_owned_elsewhere(log);
  if (!locked && logs_owned_elsewhere)
    return "the database file " + db_path +
           " is not the file the fhirgate process serving it has open (it was replaced or moved while that "
           "gateway runs)";
  return {};
}

std::string hard_link_problem(const std::string& db_path) {
  struct stat st {};
  if (::stat(db_path.c_str(), &st) != 0 || st.st_nlink <= 1) return {};
  return "the database file " + db_path + " has " + std::to_string(st.st_nlink) +
         " names (hard links). SQLite keeps a write-ahead log per name, so a second name would see, and "
         "could overwrite, another database; remove the other links (or copy the database) first";
}

DatabaseLock::DatabaseLock(const std::string& db_path, bool must_own) {
  // Every check is made before this process opens SQLite on the file: a refused start changes nothing.
  if (const std::string problem = hard_link_problem(db_path); !problem.empty())
    throw std::runtime_error(problem);
  fd_ = ::open(db_path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd_ < 0 && errno == ENOENT) {
    // A new database, unless its write-ahead log is there without it (the file moved away under a serving
    // gateway): an empty file made here would be opened in its place, and SQLite would delete that log.
    std::error_code ec;
    if (std::filesystem::exists(db_path + "-wal", ec))
      throw std::runtime_error(
          "the database file " + db_path + " is missing but its write-ahead log " + db_path +
          "-wal is there (moved away while a gateway serves it?): put the file back before "
          "anything opens this path");
    fd_ = ::open(db_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  }
  if (fd_ < 0)
    throw std::runtime_error("cannot open the database " + db_path + " for writing: " + std::strerror(errno));
  owned_ = lock_byte(fd_, kDatabaseOwnerByte, F_WRLCK, false);
  bool logs_owned_elsewhere = false;
  for (const auto& log : audit_log_paths(db_path))
    logs_owned_elsewhere = logs_owned_elsewhere || log_file_owned_elsewhere(log);
  std::string refusal;
  if (owned_ && logs_owned_elsewhere)
    refusal =
        "the database file " + db_path +
        " is not the file the fhirgate process serving it has open (it was replaced or moved while that "
        "gateway runs): stop that gateway before anything opens this file";
  else if (!owned_ && must_own)
    refusal =
        "the database " + db_path +
        " is in use by another fhirgate process (it holds the database's lock, through this path or another)";
  if (!refusal.empty()) {
    ::close(fd_);  // no SQLite connection of this process has the file open yet
    fd_ = -1;
    throw std::runtime_error(refusal);
  }
  owned_ = owned_ && !logs_owned_elsewhere;
}

DatabaseLock::~DatabaseLock() {
  if (fd_ >= 0) ::close(fd_);
}

std::unique_ptr<AuditLogFile> AuditLogFile::open_owned(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0)
    throw std::runtime_error("cannot open the audit log file " + path + ": " + std::strerror(errno));
  if (!lock_byte(fd, kOwnerByte, F_WRLCK, false)) {
    ::close(fd);
    return nullptr;
  }
  return std::unique_ptr<AuditLogFile>(new AuditLogFile(path, fd));
}

AuditLogFile::~AuditLogFile() {
  ::close(fd_);  // releases the locks
}

std::vector<AuditRecord> AuditLogFile::recover() {
  const std::string data = read_all(fd_);
  std::size_t complete = 0;
  auto records = parse_frames(path_, data, complete);
  if (complete < data.size() && ::ftruncate(fd_, static_cast<off_t>(complete)) != 0)
    throw std::runtime_error("cannot cut the unfinished end off the audit log file " + path_ + ": " +
                             std::strerror(errno));
  size_ = static_cast<long long>(complete);
  return records;
}

Status AuditLogFile::append(const std::vector<AuditRecord>& records) {
  std::string frames;
  frames.reserve(records.size() * 512);
  for (const auto& r : records) append_frame(frames, r);
  std::size_t done = 0;
  int error = 0;
  while (done < frames.size()) {
    const ssize_t n = ::write(fd_, frames.data() + done, frames.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = n < 0 ? errno : EIO;
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  if (error == 0 && ::fdatasync(fd_) != 0) error = errno;
  if (error != 0) {
    [[maybe_unused]] const int cut = ::ftruncate(fd_, static_cast<off_t>(size_));
    Error e = Error::make(ErrorCode::busy, "The access could not be recorded; try again");
    e.internal = std::string("audit log file: ") + std::strerror(error);
    return e;
  }
  size_ += static_cast<long long>(frames.size());
  return Ok{};
}

bool AuditLogFile::empty_if_free() {
  if (size_ == 0) return true;
  if (!lock_byte(fd_, kEmptyingByte, F_WRLCK, false)) return false;
  const bool emptied = ::ftruncate(fd_, 0) == 0;
  if (emptied) size_ = 0;
  lock_byte(fd_, kEmptyingByte, F_UNLCK, false);
  return emptied;
}

AuditLogReader::AuditLogReader(const std::vector<std::string>& paths) {
  for (const auto& path : paths) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    fds_.push_back(fd);
    paths_.push_back(path);
    if (!lock_byte(fd, kEmptyingByte, F_RDLCK, true)) {
      const std::string error = std::strerror(errno);
      for (int open_fd : fds_) ::close(open_fd);
      throw std::runtime_error("cannot lock the audit log file " + path + ": " + error);
    }
  }
}

AuditLogReader::~AuditLogReader() {
  for (int fd : fds_) ::close(fd);
}

std::vector<AuditRecord> AuditLogReader::read() const {
  std::vector<AuditRecord> out;
  for (std::size_t i = 0; i < fds_.size(); ++i) {
    const std::string data = read_all(fds_[i]);
    std::size_t complete = 0;
    for (auto& r : parse_frames(paths_[i], data, complete)) out.push_back(std::move(r));
  }
  std::sort(out.begin(), out.end(), [](const AuditRecord& a, const AuditRecord& b) { return a.seq < b.seq; });
  return out;
}

}  // namespace fhirgate::gateway::store
