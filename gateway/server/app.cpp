#include "gateway/server/app.hpp"

#include <malloc.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "fhir/datetime.hpp"
#include "fhir/files.hpp"
#include "fhir/json.hpp"
#include "fhir/json_locate.hpp"
#include "fhir/profiles.hpp"
#include "gateway/audit/audit_trail.hpp"
#include "gateway/common/ids.hpp"
#include "gateway/inbound/feed_folders.hpp"
#include "gateway/net/http_server.hpp"
#include "gateway/net/mllp_server.hpp"
#include "gateway/ops/observability.hpp"
#include "gateway/routing/delivery.hpp"
#include "gateway/security/tokens.hpp"
#include "gateway/server/gateway.hpp"
#include "gateway/store/audit_file.hpp"
#include "gateway/store/sqlite.hpp"
#include "gateway/store/store.hpp"
#include "gateway/store/writer.hpp"
#include "mappers/adt_patient.hpp"
#include "mappers/hl7v2.hpp"

namespace fhirgate::gateway {
namespace {

std::int64_t fhir_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace

fhir::SearchParamRegistry load_search_params(const Config& config) {
  const std::string path = config.profiles_dir + "/r4/search-parameters.json.gz";
  auto bundle = fhir::read_json_file(path);
  if (!bundle) throw std::runtime_error(path + ": " + bundle.error().issues.front().diagnostics);
  auto registry = fhir::SearchParamRegistry::load(*bundle, config.cached_types);
  if (!registry) throw std::runtime_error(path + ": " + registry.error().issues.front().diagnostics);
  return std::move(*registry);
}

std::shared_ptr<const fhir::Model> load_model(const Config& config) {
  auto model = fhir::Model::load_from(config.profiles_dir);
  if (!model) {
    throw std::runtime_error("cannot load the R4 StructureDefinitions from " + config.profiles_dir +
                             "/r4: " + model.error().issues.front().diagnostics);
  }
  return std::move(*model);
}

std::shared_ptr<fhir::Terminology> load_terminology(const Config& config) {
  auto terminology = fhir::Terminology::load_from(config.profiles_dir);
  if (!terminology) {
    throw std::runtime_error("cannot load the R4 terminology from " + config.profiles_dir +
                             "/r4: " + terminology.error().issues.front().diagnostics);
  }
  return std::move(*terminology);
}

void load_project_profiles(fhir::Validator& validator, const fhir::Model& model, const Config& config) {
  const std::string dir = config.profiles_dir + "/partnership";
  if (std::filesystem::is_directory(dir)) {
    if (auto loaded = fhir::load_profiles_dir(validator, model, dir); !loaded) {
      throw std::runtime_error(dir + ": " + loaded.error().issues.front().diagnostics);
    }
  }
  for (const auto& [type, urls] : config.profiles) {
    for (const auto& url : urls) {
      if (!validator.knows_profile(url)) {
        throw std::runtime_error("profiles." + type + ": the profile " + url + " is not known (not in " +
                                 dir + ")");
      }
    }
  }
}

namespace {

Result<std::string> read_input(const std::string& file) {
  if (file != "-") return fhir::read_file(file);
  std::ostringstream ss;
  ss << std::cin.rdbuf();
  return ss.str();
}

// `file[:line[:column]]: severity: message [location]`; `first_line` is where the document starts in the
// file (ndjson), positions inside the document are added to it.
void print_issue(std::ostream& out, const std::string& file, int first_line, bool line_known,
                 const Issue& issue) {
  out << file;
  if (issue.line > 0) {
    out << ":" << first_line + issue.line - 1 << ":" << issue.column;
  } else if (line_known) {
    out << ":" << first_line;
  }
  out << ": " << (issue.severity.empty() ? "error" : issue.severity) << ": " << issue.diagnostics;
  if (!issue.expression.empty()) out << " [" << issue.expression << "]";
  out << "\n";
}

}  // namespace

int validate_files(const fhir::Model& model, const fhir::Validator& validator,
                   const fhir::ValidationOptions& options, const std::vector<std::string>& files,
                   std::ostream& out) {
  std::size_t resources = 0, errors = 0, warnings = 0, unreadable = 0;
  for (const auto& file : files) {
    auto text = read_input(file);
    if (!text) {
      out << file << ": error: cannot read the file\n";
      ++unreadable;
      continue;
    }
    // ndjson: one resource per line; otherwise one JSON or XML document.
    struct Document {
      int first_line;
      std::string text;
    };
    std::vector<Document> documents;
    const bool ndjson = file.size() > 7 && file.compare(file.size() - 7, 7, ".ndjson") == 0;
    if (ndjson) {
      int line_no = 0;
      std::size_t pos = 0;
      while (pos <= text->size()) {
        const auto end = std::min(text->find('\n', pos), text->size());
        ++line_no;
        std::string line = text->substr(pos, end - pos);
        if (line.find_first_not_of(" \t\r") != std::string::npos)
          documents.push_back({line_no, std::move(line)});
        pos = end + 1;
      }
    } else {
      documents.push_back({1, std::move(*text)});
    }
    for (const auto& doc : documents) {
      ++resources;
      auto resource = fhir::parse_resource(model, doc.text, fhir::detect_format(doc.text));
      if (!resource) {
        auto issues = resource.error().issues;
        fhir::locate_issues(doc.text, fhir::detect_format(doc.text), issues);
        for (const auto& issue : issues) print_issue(out, file, doc.first_line, ndjson, issue);
        ++errors;
        continue;
      }
      auto result = validator.validate(*resource, options);
      fhir::locate_issues(doc.text, fhir::detect_format(doc.text), result.issues);
      for (const auto& issue : result.issues) {
        print_issue(out, file, doc.first_line, ndjson, issue);
        if (issue.severity == "error" || issue.severity == "fatal")
          ++errors;
        else if (issue.severity == "warning")
          ++warnings;
      }
    }
  }
  out << resources << " resource(s) validated: " << errors << " error(s), " << warnings << " warning(s)";
  if (unreadable) out << ", " << unreadable << " unreadable file(s)";
  out << "\n";
  if (unreadable) return 2;
  return errors ? 1 : 0;
}

namespace {

bool is_hl7v2(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  const auto first = text.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && text.substr(first, 3) == "MSH";
}

// One input document converted to the target: FHIR JSON/XML in either direction, an HL7 v2 ADT message to
// the Patient it maps to, or a Patient to ADT^A31.
Result<std::string> convert_one(const fhir::Model& model, const std::string& text, ConvertTarget to,
                                bool pretty) {
  const mappers::PartnerMapping mapping;  // no partner on the command line: the default NHS authority
  Result<fhir::Node> resource = fhir::Node();
  if (is_hl7v2(text)) {
    auto message = mappers::Message::parse(text);
    if (!message) return std::move(message).error();
    if (to == ConvertTarget::hl7v2) return std::string(message->serialize());
    resource = mappers::adt_to_patient(*message, mapping);
  } else {
    resource = fhir::parse_resource(model, text, fhir::detect_format(text));
  }
  if (!resource) return std::move(resource).error();
  switch (to) {
    case ConvertTarget::json:
      return fhir::write_resource(model, *resource, fhir::Format::json, pretty);
    case ConvertTarget::xml:
      return fhir::write_resource(model, *resource, fhir::Format::xml, pretty);
    case ConvertTarget::hl7v2: {
      mappers::AdtHeader header;
      header.sending_application = "FHIRGATE";
      header.control_id = new_resource_id().substr(0, 20);
      header.timestamp = fhir::format_instant(fhir_now_ms()).substr(0, 19);
      for (char c : std::string("-T:")) std::erase(header.timestamp, c);
      auto adt = mappers::patient_to_adt(*resource, "A31", header, mapping);
      if (!adt) return adt;
      std::string lines = std::move(*adt);
      std::replace(lines.begin(), lines.end(), '\r', '\n');  // a terminal shows CR-terminated segments badly
      return lines;
    }
  }
  return Error::make(ErrorCode::internal, "unknown conversion target");
}

}  // namespace

int convert_files(const fhir::Model& model, ConvertTarget to, bool pretty,
                  const std::vector<std::string>& files, std::ostream& out, std::ostream& err) {
  int status = 0;
  for (const auto& file : files) {
    auto text = read_input(file);
    if (!text) {
      err << file << ": cannot read\n";
      status = 1;
      continue;
    }
    auto written = convert_one(model, *text, to, pretty);
    if (!written) {
      for (const auto& issue : written.error().issues) {
        err << file;
        if (issue.line > 0) err << ":" << issue.line << ":" << issue.column;
        err << ": " << issue.diagnostics;
        if (!issue.expression.empty()) err << " (at " << issue.expression << ")";
        err << "\n";
      }
      status = 1;
      continue;
    }
    out << *written;
    if (written->empty() || written->back() != '\n') out << '\n';
  }
  return status;
}

namespace {

std::filesystem::path prepare_database_folder(const Config& config) {
  const auto dir = std::filesystem::path(config.database_path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace

int add_token(const Config& config, const std::string& holder, std::ostream& out) {
  if (!find_partner(config, holder)) {
    std::string known;
    for (const auto& p : config.partners) known += (known.empty() ? "" : ", ") + p.id;
    throw std::runtime_error("no partner or role '" + holder + "' in " + config.source_path +
                             " (known: " + known + ")");
  }
  const auto registry = load_search_params(config);
  prepare_database_folder(config);
  store::Store store(config.database_path, registry, config.security.audit_key_file);
  NewToken token = make_token(holder);
  const Status stored = store.writer().run([credential = token.credential](store::WriteTxn& txn) -> Status {
    txn.add_credential(credential);
    return Ok{};
  });
  if (!stored)
    throw std::runtime_error("cannot store the token: " + stored.error().issues.front().diagnostics);
  out << "New bearer token for " << holder
      << " (only its hash is stored; keep it now, it is not shown again):\n"
      << token.token << std::endl;
  return 0;
}

namespace {

// The dashboard's static files by name; none without an index.html.
std::map<std::string, std::string> load_dashboard(const std::string& dir) {
  std::map<std::string, std::string> files;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (!entry.is_regular_file()) continue;
    if (auto text = fhir::read_file(entry.path().string())) files[entry.path().filename().string()] = *text;
  }
  if (!files.contains("index.html")) files.clear();  // no dashboard: /_ops/ is 404
  return files;
}

}  // namespace

int ops_deliveries(const Config& config, const std::string& status, const std::string& destination,
                   const std::string& action, std::int64_t id, std::ostream& out) {
  const auto registry = load_search_params(config);
  store::Store store(config.database_path, registry, config.security.audit_key_file);
  if (!action.empty()) {
    Result<store::Delivery> done = Error::make(ErrorCode::internal, "not run");
    const Status ran = store.writer().run([&](store::WriteTxn& txn) -> Status {
      done = txn.act_on_delivery(id, action == "retry");
      return done ? Status(Ok{}) : Status(done.error());
    });
    if (!ran) {
      out << "delivery " << id << ": " << ran.error().issues.front().diagnostics << std::endl;
      return 1;
    }
    out << "delivery " << id << " is " << done->status << std::endl;
    return 0;
  }
  store::DeliveryQuery query;
  query.status = status;
  query.destination = destination;
  query.count = 1000;
  auto rows = store.deliveries(query);
  if (!rows) throw std::runtime_error(rows.error().issues.front().diagnostics);
  for (const auto& d : *rows) {
    out << d.id << '\t' << fhir::format_instant(d.created_ms) << '\t' << d.destination << '\t' << d.status
        << '\t' << store::delivered_reference(d) << '\t' << d.attempts << " attempt(s)"
        << (d.last_error.empty() ? "" : "\t" + d.last_error) << '\n';
  }
  out << rows->size() << " deliveries" << std::endl;
  return 0;
}

int verify_audit(const Config& config, std::ostream& out) {
  // Read-only: it changes nothing on disk (no database, key or log file is created, nothing is moved),
  // so it can run on evidence, and beside a serving gateway.
  const std::string& db_path = config.database_path;
  auto cannot = [&](const std::string& why) {
    std::cerr << "fhirgate: audit verify: " << why << std::endl;
    return 2;
  };
  std::error_code ec;
  if (!std::filesystem::is_regular_file(db_path, ec)) return cannot("no database at " + db_path);
  if (const std::string links = store::hard_link_problem(db_path); !links.empty()) return cannot(links);
  if (const std::string replaced = store::replaced_file_problem(db_path); !replaced.empty())
    return cannot(replaced);
  const std::string key_path = config.security.audit_key_file.empty()
                                   ? store::real_database_path(db_path) + ".audit-key"
                                   : config.security.audit_key_file;
  std::optional<store::AuditKey> key;
  std::optional<store::ChainCheck> check;
  try {
    key = store::AuditKey::load(key_path);
    if (!key)
      return cannot("no audit key at " + key_path +
                    ": the trail cannot be checked without the key it was chained with (restore it from the "
                    "backup taken with the database)");
    // The log files' reader is taken before the tables' snapshot: from then on nothing leaves the files.
    store::AuditLogReader log(store::audit_log_paths(db_path));
    store::Connection db(db_path, store::Connection::Mode::read_only);
    check = store::verify_audit_chain(db, *key, derive_audit_columns, [&] { return log.read(); });
  } catch (const store::StepError& e) {
    return cannot("cannot read " + db_path + ": " + e.message);
  } catch (const std::runtime_error& e) {
    return cannot(e.what());
  }
  if (check->intact) {
    out << "audit chain intact: " << check->rows << " AuditEvents" << std::endl;
    return 0;
  }
  out << "audit chain BROKEN at AuditEvent " << check->first_bad_seq << ": " << check->problem << " ("
      << check->rows << " rows read)" << std::endl;
  return 1;
}

int serve(const Config& config) {
  // Every connection is a descriptor: allow as many as the hard limit does (10,000 idle clients).
  if (rlimit files{}; getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  Gateway gateway(config);
  if (!config.security.enabled) {
    std::cout
        << "fhirgate: SECURITY OFF (no configuration file or security.enabled false): no authentication, "
           "no consent enforcement, no audit"
        << std::endl;
  }
  store::Store& store = gateway.store();
  GatewayObservers& observers = gateway.observers();
  gateway.rest_services().options.dashboard = load_dashboard(config.dashboard_dir);
  // The journal's housekeeping: payloads, old entries, and the feed folders' taken files.
  std::vector<std::string> feed_folders;
  for (const auto& feed : gateway.feeds().feeds)
    if (!feed.folder.empty()) feed_folders.push_back(feed.folder);
  JournalKeeper journal_keeper(config.journal, store.writer(), std::move(feed_folders));
  FeedFolders folders(gateway.feeds(), config.feed_poll_ms);

  std::unique_ptr<MllpServer> mllp;
  if (!config.mllp.listeners.empty()) {
    mllp = std::make_unique<MllpServer>(config.mllp, gateway.v2(), store.writer());
    const auto ports = mllp->listen();
    for (std::size_t i = 0; i < ports.size(); ++i) {
      const auto& l = config.mllp.listeners[i];
      const std::string host = l.bind == "0.0.0.0" ? "127.0.0.1" : l.bind;
      std::cout << "fhirgate MLLP listening on " << host << ":" << ports[i] << " (partner "
                << (l.partner.empty() ? "by MSH-4" : l.partner) << ")" << std::endl;
    }
  }

  folders.start();  // before the listening line: a client that saw it finds the folders
  DeliveryWorker deliveries(config, store, gateway.gate());
  deliveries.set_observer(
      [&observers](const store::Delivery& d) { observers.on_delivery(d, d.correlation_id); });
  HttpServer server(config.server, gateway.rest(), store.writer());
  observers.watch_connections([&server] { return server.open_connections(); });
  const auto port = server.listen();
  const std::string host = config.server.bind == "0.0.0.0" ? "127.0.0.1" : config.server.bind;
  if (!config.routes.empty())
    deliveries.start(!config.base_url.empty() ? config.base_url
                                              : "http://" + host + ":" + std::to_string(port));
  std::cout << "fhirgate listening on http://" << host << ":" << port << "/ (database "
            << config.database_path << ")" << std::endl;
  if (mllp) mllp->start();
  server.run();
  folders.stop();
  deliveries.stop();
  if (mllp) mllp->stop();
  store.writer().stop();
  std::cerr << "fhirgate: stopped cleanly" << std::endl;
  return 0;
}

namespace {

// One journal entry as a line: time, id, direction, partner, transport/format, type, status, total time
// and error.
std::string journal_line(const store::JournalEntry& e) {
  std::string ms;
  if (auto stages = fhir::parse_json(e.stages); stages && stages->is_array() && !stages->items().empty())
    ms = stages->items().back().find("ms") ? stages->items().back().find("ms")->text() + " ms" : "";
  std::ostringstream line;
  line << fhir::format_instant(e.received_ms) << "  #" << e.id << "  " << e.direction << "  "
       << (e.partner.empty() ? "-" : e.partner) << "  " << e.transport << "/" << e.format << "  " << e.type
       << "  " << store::to_string(e.status);
  if (!ms.empty()) line << "  " << ms;
  if (!e.error.empty()) line << "  " << e.error;
  return line.str();
}

}  // namespace

int ops_tail(const Config& config, const std::string& partner, const std::string& status, long long limit,
             std::ostream& out) {
  const auto registry = load_search_params(config);
  store::Store store(config.database_path, registry, config.security.audit_key_file);
  store::JournalQuery q;
  q.partner = partner;
  if (!status.empty()) {
    q.status = store::parse_journal_status(status);
    if (!q.status) {
      out << "journal: unknown status '" << status << "'" << std::endl;
      return 1;
    }
  }
  q.count = 10;
  long long printed = 0;
  for (bool first = true;; first = false) {
    auto rows = store.journal(q);
    if (!rows) {
      out << "journal: " << rows.error().issues.front().diagnostics << std::endl;
      return 1;
    }
    for (auto it = rows->rbegin(); it != rows->rend(); ++it) {  // oldest first
      out << journal_line(*it) << std::endl;
      q.after_id = std::max(q.after_id, it->id);
      if (limit && ++printed >= limit) return 0;
    }
    if (first) q.count = 1000;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

int ops_stats(const Config& config, long long window_seconds, std::ostream& out) {
  const auto registry = load_search_params(config);
  store::Store store(config.database_path, registry, config.security.audit_key_file);
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  const std::int64_t from = now - window_seconds * 1000;
  auto counts = store.journal_counts(from, window_seconds * 1000 + 1, 1);
  store::JournalQuery problems;
  problems.problems = true;
  problems.since_ms = from;
  problems.count = 5;
  auto latest = store.journal(problems);
  auto queues = store.queues();
  if (!counts || !latest || !queues) {
    out << "journal: cannot be read" << std::endl;
    return 1;
  }
  out << "last " << window_seconds << " s, since " << fhir::format_instant(from) << "\n";
  out << "partner\tin\tout\n";
  for (const auto& p : counts->partners)
    out << (p.partner.empty() ? "-" : p.partner) << '\t' << p.in.front() << '\t' << p.out.front() << '\n';
  out << "status\tentries\n";
  for (const auto& [s, n] : counts->by_status) out << s << '\t' << n << '\n';
  out << "queue\tpending\toldest\n";
  for (const auto& q : *queues)
    out << q.destination << '\t' << q.depth << '\t' << (now - q.oldest_ms) / 1000 << " s\n";
  out << "latest errors\n";
  for (const auto& e : *latest) out << journal_line(e) << '\n';
  out << std::flush;
  return 0;
}

}  // namespace fhirgate::gateway
