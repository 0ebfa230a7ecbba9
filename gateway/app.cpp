#include "gateway/app.hpp"

#include <malloc.h>

#include <filesystem>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "fhir/files.hpp"
#include "fhir/json.hpp"
#include "gateway/ids.hpp"
#include "gateway/net/http_server.hpp"
#include "gateway/rest/api.hpp"
#include "gateway/store/store.hpp"
#include "gateway/store/writer.hpp"

namespace fhirgate::gateway {
namespace {

// Loads the seed files into a new database: Bundles (their entries' resources) or single resources.
// Resources keep their ids. Failures are start-up errors.
void seed(store::Store& store, const Config& config) {
  std::size_t loaded = 0;
  for (const auto& file : config.seed_files) {
    auto text = fhir::read_file(file);
    if (!text) throw std::runtime_error("cannot read seed file " + file);
    auto doc = fhir::parse_json(*text);
    if (!doc) throw std::runtime_error(file + ": " + doc.error().issues.front().diagnostics);
    std::vector<fhir::Node> resources;
    if (doc->string_at("resourceType") == "Bundle") {
      if (const auto* entries = doc->find("entry")) {
        for (const auto& entry : entries->items()) {
          if (const auto* r = entry.find("resource")) resources.push_back(*r);
        }
      }
    } else {
      resources.push_back(std::move(*doc));
    }
    for (auto& resource : resources) {
      if (auto ok = fhir::check_resource_json(resource); !ok) {
        throw std::runtime_error(file + ": " + ok.error().issues.front().diagnostics);
      }
      const std::string type(resource.string_at("resourceType"));
      if (std::find(config.cached_types.begin(), config.cached_types.end(), type) == config.cached_types.end()) {
        throw std::runtime_error(file + ": resource type " + type + " is not in cachedTypes");
      }
      std::string id(resource.string_at("id"));
      if (id.empty()) id = new_resource_id();
      Status stored = store.writer().run([&](store::WriteTxn& txn) -> Status {
        txn.put(type, id, std::move(resource), "PUT");
        return Ok{};
      });
      if (!stored) throw std::runtime_error(file + ": " + stored.error().issues.front().diagnostics);
      ++loaded;
    }
  }
  if (loaded) std::cerr << "fhirgate: loaded " << loaded << " sample resources into the new database\n";
}

}  // namespace

fhir::SearchParamRegistry load_search_params(const Config& config) {
  const std::string path = config.profiles_dir + "/r4/search-parameters.json.gz";
  auto text = fhir::read_file(path);
  if (!text) throw std::runtime_error("cannot read " + path + " (is profilesDir right?)");
  auto bundle = fhir::parse_json(*text);
  if (!bundle) throw std::runtime_error(path + ": " + bundle.error().issues.front().diagnostics);
  auto registry = fhir::SearchParamRegistry::load(*bundle, config.cached_types);
  if (!registry) throw std::runtime_error(path + ": " + registry.error().issues.front().diagnostics);
  return std::move(*registry);
}

std::shared_ptr<const fhir::Model> load_model(const Config& config) {
  auto model = fhir::Model::load_from(config.profiles_dir);
  if (!model) {
    throw std::runtime_error("cannot load the R4 StructureDefinitions from " + config.profiles_dir + "/r4: " +
                             model.error().issues.front().diagnostics);
  }
  return std::move(*model);
}

int convert_files(const fhir::Model& model, fhir::Format to, bool pretty, const std::vector<std::string>& files,
                  std::ostream& out, std::ostream& err) {
  int status = 0;
  for (const auto& file : files) {
    Result<std::string> text = std::string();
    if (file == "-") {
      std::ostringstream ss;
      ss << std::cin.rdbuf();
      text = ss.str();
    } else {
      text = fhir::read_file(file);
    }
    if (!text) {
      err << file << ": cannot read\n";
      status = 1;
      continue;
    }
    auto resource = fhir::parse_resource(model, *text, fhir::detect_format(*text));
    auto written = resource ? fhir::write_resource(model, *resource, to, pretty) : Result<std::string>(resource.error());
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

int serve(const Config& config) {
  const auto model = load_model(config);
  const auto registry = load_search_params(config);
  if (const auto dir = std::filesystem::path(config.database_path).parent_path(); !dir.empty()) {
    std::filesystem::create_directories(dir);
  }
  store::Store store(config.database_path, registry);
  if (store.created()) seed(store, config);
  // Loading the definitions parsed ~40 MB of JSON that is freed now; give those pages back to the OS.
  malloc_trim(0);

  rest::ApiOptions options;
  options.cached_types = config.cached_types;
  options.base_url = config.base_url;
  options.default_count = config.default_page_size;
  options.max_count = config.max_page_size;
  options.software_version = FHIRGATE_VERSION;
  rest::Api api(options, *model, registry, store);

  HttpServer server(config.server, api, store.writer());
  const auto port = server.listen();
  const std::string host = config.server.bind == "0.0.0.0" ? "127.0.0.1" : config.server.bind;
  std::cout << "fhirgate listening on http://" << host << ":" << port << "/ (database " << config.database_path
            << ")" << std::endl;
  server.run();
  store.writer().stop();
  std::cerr << "fhirgate: stopped cleanly" << std::endl;
  return 0;
}

}  // namespace fhirgate::gateway
