// read and vread (R4 http.html#read, #vread): the stored version, when the gate lets the caller see it.
// What the caller may not see is "not known" (404), exactly as what does not exist; a deletion is 410 only
// to whoever could see the version before it. Every read names the version and its patient in the
// AuditEvent, refused ones too.
#include "fhir/operation_outcome.hpp"
#include "gateway/rest/router.hpp"

namespace fhirgate::gateway::rest {
namespace {

class Read final : public Interaction {
 public:
  Read(std::string type, std::string id, std::string version)
      : type_(std::move(type)), id_(std::move(id)), version_(std::move(version)) {}

  const char* interaction() const override { return version_.empty() ? "read" : "vread"; }

  void prepare(RestJob& job) override {
    auto& ex = job.ex;
    const std::string what = type_ + "/" + id_ + (version_.empty() ? "" : "/_history/" + version_);
    Result<std::optional<store::VersionRecord>> rec = std::optional<store::VersionRecord>();
    if (version_.empty()) {
      rec = job.services.store.read(type_, id_);
    } else {
      const auto number = parse_etag(version_);
      if (!number)
        return ex.fail(Error::make(ErrorCode::invalid_input, "'" + version_ + "' is not a version number"));
      rec = job.services.store.vread(type_, id_, *number);
    }
    if (!rec) return ex.fail(rec.error());
    if (!*rec) return ex.fail(Error::make(ErrorCode::not_found, what + " is not known"));
    auto shown = job.readable(**rec);
    if (!shown) return ex.fail(shown.error());
    if (!*shown) {
      if (ex.audit) ex.audit->outcome_desc = "consent: not shared with " + job.caller_id();
      return ex.fail(Error::make(ErrorCode::not_found, what + " is not known"));
    }
    if ((*rec)->deleted) {
      deleted_version_ = (*rec)->version;
      return ex.fail(Error::make(
          ErrorCode::gone, version_.empty() ? what + " was deleted"
                                            : type_ + "/" + id_ + " version " + version_ + " is a deletion"));
    }
    record_ = std::move(**rec);
  }

  HttpResponse respond(RestJob& job) override {
    Prefer representation;
    std::swap(job.prefer, representation);  // a read always returns the resource
    HttpResponse r = job.resource_response(200, record_, false);
    std::swap(job.prefer, representation);
    return r;
  }

  // A read of a deletion answers 410 with the deletion's ETag.
  void on_failure(RestJob&, HttpResponse& r) override {
    if (deleted_version_ && version_.empty()) r.set_header("ETag", etag(deleted_version_));
  }

 private:
  std::string type_, id_, version_;
  store::VersionRecord record_;
  std::int64_t deleted_version_ = 0;
};

}  // namespace

std::unique_ptr<Interaction> make_read(std::string type, std::string id, std::string version) {
  return std::make_unique<Read>(std::move(type), std::move(id), std::move(version));
}

}  // namespace fhirgate::gateway::rest
