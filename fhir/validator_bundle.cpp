// Bundle rules, references resolved inside a Bundle or Parameters, contained resources and element ids
// (R4 bundle.html, documents.html, messaging.html, references.html, element.html).
//
// The Bundle rules run once per Bundle, after its entries were validated. A fullUrl must be absolute, and
// one that looks RESTful (http(s)://base/Type/id) must agree with its resource (no id, or another type:
// an error; another id alone: a warning, as R4's own examples do that). The entries are indexed (fullUrl,
// type, id, meta.versionId, and the base of a fullUrl that ends with the entry's own Type/id), the
// References the base walk met in each entry's resource (RuleContext::references) are resolved as
// bundle.html#references says: an absolute reference (http, urn:uuid, urn:oid, any scheme) matches a
// fullUrl; a relative Type/id is made absolute with the base of the referring entry's fullUrl (a
// version-specific one must also match meta.versionId). An entry whose fullUrl disagrees with its
// resource gives its references no base, so they resolve to nothing; one with a urn: fullUrl or none
// ("no rules apply") resolves them only against an entry whose fullUrl agrees with the Type/id, so that
// an unresolved reference is never blamed on a reading the specification leaves open. A reference that
// matches several entries is ambiguous (history bundles aside, where versions of one resource share a
// fullUrl); a resolved urn: reference must point at a type the element allows (a Type/id reference's
// type is checked by the base walk).
//
// Per Bundle.type: a document's Composition (the first entry) must find what it references through
// subject, encounter, author, attester.party, custodian, event.detail and its sections' author, focus and
// entry inside the Bundle, and every entry must be reachable from it by following resolved references
// forwards (backwards only: a warning, Provenance aside; not at all: an error). A message's MessageHeader
// must find its focus inside the Bundle (unreachable entries are warnings). A searchset's results have
// ids, and its matches are of the type the self link searched. The other per-type rules (request,
// response, search, total, fullUrl uniqueness) are the Bundle's own invariants (bdl-1..12).
//
// A Parameters' resources resolve each other's references the same way, with the fullUrl of the
// parameters-fullUrl extension, or by Type/id for those without one. With
// ValidationOptions::resolve_references, a reference inside a Bundle or Parameters that resolves to
// nothing there is an error.
//
// Contained resources: dom-3 (a contained resource is referenced from its container, or refers to it)
// is checked here rather than by its FHIRPath expression, so that references from the narrative (an
// <a href="#id"> or <img src="#id">, which FHIRPath cannot see inside the XHTML) count as well. Element
// ids are unique within a resource (the resources nested in it have their own).
//
// Cost: a resource that is not a Bundle or Parameters and has no `contained` gets one allocation-free
// walk of its JSON (the element ids); a Bundle's references are resolved through a fullUrl index.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "fhir/validator.hpp"
#include "fhir/validator_rules.hpp"

namespace fhirgate::fhir {

namespace {

constexpr std::string_view kHistory = "/_history/";

bool has_scheme(std::string_view url) {
  if (url.empty() || std::isalpha(static_cast<unsigned char>(url.front())) == 0) return false;
  for (std::size_t i = 1; i < url.size(); ++i) {
    const char c = url[i];
    if (c == ':') return true;
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '+' && c != '-' && c != '.') return false;
  }
  return false;
}

bool is_http(std::string_view url) {
  return url.starts_with("http://") || url.starts_with("https://");
}

// A reference or fullUrl without its `/_history/version` tail, and that version.
struct Versioned {
  std::string_view url;
  std::string_view version;
};

Versioned split_history(std::string_view url) {
  const auto at = url.find(kHistory);
  if (at == std::string_view::npos) return {url, {}};
  return {url.substr(0, at), url.substr(at + kHistory.size())};
}

// The last two segments of a URL path, "Type" and "id"; false when there are not two.
bool tail_type_and_id(std::string_view url, std::string_view& type, std::string_view& id) {
  const auto slash = url.rfind('/');
  if (slash == std::string_view::npos || slash == 0) return false;
  id = url.substr(slash + 1);
  const auto before = url.rfind('/', slash - 1);
  type = before == std::string_view::npos ? url.substr(0, slash) : url.substr(before + 1, slash - before - 1);
  return !id.empty() && !type.empty();
}

bool is_id(std::string_view s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '.';
  });
}

std::string quoted(std::string_view s) {
  return "'" + std::string(s) + "'";
}

struct Entry {
  const Node* resource = nullptr;
  std::string_view full_url;
  std::string_view type;
  std::string_view id;
  std::string_view version;  // meta.versionId
  // A fullUrl that ends with the resource's own Type/id gives relative references their base: what
  // comes before (empty for a relative fullUrl "Type/id", which is an error, but one references still
  // resolve against).
  bool has_base = false;
  std::string_view base;
  std::string path;  // relative to the Bundle: entry[2].resource
};

// A Reference found in an entry's resource.
struct FoundReference {
  std::size_t entry;
  std::string_view path;  // relative to the Bundle (entry[2].resource.subject); valid during the call
  std::string_view reference;
  std::string_view declared_type;  // Reference.type
  const ElementDef* def;
};

void append_index(std::string& path, std::size_t index) {
  char digits[24];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, index);
  path.push_back('[');
  path.append(digits, end);
  path.push_back(']');
}

// The entries of a Bundle (or the resources of a Parameters), indexed by fullUrl.
struct Entries {
  std::vector<Entry> list;
  // A Parameters' resources usually have no fullUrl: a relative Type/id then names one by its type and id.
  bool by_type_and_id = false;
  std::unordered_multimap<std::string_view, std::size_t> by_url;
  // Entries by resource id, for the relative references that are resolved by Type/id rather than through a
  // base (so that a Bundle of n such entries costs n look-ups, not n times n comparisons).
  std::unordered_multimap<std::string_view, std::size_t> by_id;

  void index() {
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (list[i].resource == nullptr) continue;
      if (!list[i].full_url.empty()) by_url.emplace(list[i].full_url, i);
      if (!list[i].id.empty()) by_id.emplace(list[i].id, i);
    }
  }
};

// The entries a reference written in `source` resolves to (bundle.html#references), in `out`.
// False when the reference is not one the Bundle can resolve (contained, conditional, malformed).
bool resolve(const Entries& entries, const Entry& source, std::string_view reference,
             std::vector<std::size_t>& out) {
  out.clear();
  if (reference.empty() || reference.front() == '#' || reference.find('?') != std::string_view::npos)
    return false;
  const auto find = [&](std::string_view url, std::string_view version) {
    const auto [from, to] = entries.by_url.equal_range(url);
    for (auto it = from; it != to; ++it)
      if (version.empty() || entries.list[it->second].version == version) out.push_back(it->second);
  };
  if (has_scheme(reference)) {
    const Versioned v = is_http(reference) ? split_history(reference) : Versioned{reference, {}};
    find(v.url, v.version);
    return true;
  }
  const Versioned v = split_history(reference);
  std::string_view type;
  std::string_view id;
  if (!tail_type_and_id(v.url, type, id) || v.url.find('/') != v.url.rfind('/')) return false;
  if (source.has_base) {
    find(source.base.empty() ? std::string(v.url) : std::string(source.base) + "/" + std::string(v.url),
         v.version);
    return true;
  }
  // A fullUrl that disagrees with its resource gives no base; a urn: one (or none) leaves the reading open.
  if (!source.full_url.empty() && !source.full_url.starts_with("urn:")) return true;
  const auto [from, to] = entries.by_id.equal_range(id);
  for (auto it = from; it != to; ++it) {
    const Entry& e = entries.list[it->second];
    if ((e.has_base || (entries.by_type_and_id && e.full_url.empty())) && e.type == type &&
        (v.version.empty() || e.version == v.version))
      out.push_back(it->second);
  }
  std::sort(out.begin(), out.end());  // in entry order, as the reports name them
  return true;
}

// Whether one of the element's Reference target profiles is the core profile of `type` (the common case,
// decided without looking anything up; allowed_targets() then need not be built).
bool names_target(const ElementDef& def, std::string_view type) {
  constexpr std::string_view kCore = "http://hl7.org/fhir/StructureDefinition/";
  for (const TypeRef& ref : def.types) {
    if (ref.code != "Reference") continue;
    for (const std::string& profile : ref.target_profiles) {
      const std::string_view url = profile;
      if (url.size() == kCore.size() + type.size() && url.starts_with(kCore) && url.ends_with(type))
        return true;
    }
  }
  return false;
}

// The resource types an element's Reference may point at; empty when any type is allowed.
std::vector<std::string_view> allowed_targets(const Model& model, const ElementDef& def) {
  constexpr std::string_view kCore = "http://hl7.org/fhir/StructureDefinition/";
  std::vector<std::string_view> allowed;
  for (const TypeRef& ref : def.types) {
    if (ref.code != "Reference") continue;
    for (const std::string& profile : ref.target_profiles) {
      const std::string_view url = profile;
      const std::string_view name = url.substr(url.rfind('/') + 1);
      if (!url.starts_with(kCore) || name == "Resource" || !model.is_resource(name)) return {};
      allowed.push_back(name);
    }
  }
  return allowed;
}

std::string join(const std::vector<std::string_view>& names) {
  std::string list;
  for (const std::string_view name : names) {
    if (!list.empty()) list += ", ";
    list += name;
  }
  return list;
}

// The resource types a searchset's self link searched for; empty when it cannot be told.
std::vector<std::string_view> searched_types(const Model& model, const Node& bundle) {
  std::vector<std::string_view> types;
  const Node* links = bundle.find("link");
  if (links == nullptr || !links->is_array()) return types;
  for (const Node& link : links->items()) {
    if (link.string_at("relation") != "self") continue;
    const std::string_view url = link.string_at("url");
    const auto question = url.find('?');
    const std::string_view path = url.substr(0, question);
    const std::string_view last = path.substr(path.rfind('/') + 1);
    if (model.is_resource(last)) {
      types.push_back(last);
      return types;
    }
    if (question == std::string_view::npos) return types;
    std::string_view query = url.substr(question + 1);
    while (!query.empty()) {
      const auto amp = query.find('&');
      const std::string_view param = query.substr(0, amp);
      query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
      if (!param.starts_with("_type=")) continue;
      std::string_view list = param.substr(6);
      while (!list.empty()) {
        const auto comma = list.find_first_of(",");
        const std::string_view name = list.substr(0, comma);
        list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
        if (!model.is_resource(name)) return {};
        types.push_back(name);
      }
    }
    return types;
  }
  return types;
}

std::string entry_path(std::size_t i) {
  return "entry[" + std::to_string(i) + "]";
}

void check_full_urls(RuleContext& ctx, std::vector<Entry>& entries) {
  for (std::size_t i = 0; i < entries.size(); ++i) {
    Entry& e = entries[i];
    if (e.resource == nullptr || e.full_url.empty()) continue;
    if (!has_scheme(e.full_url)) {
      ctx.error("invalid", "The fullUrl must be an absolute URL (not " + quoted(e.full_url) + ")",
                entry_path(i));
      e.has_base = !e.id.empty() && e.full_url.size() == e.type.size() + e.id.size() + 1 &&
                   e.full_url.starts_with(e.type) && e.full_url[e.type.size()] == '/' &&
                   e.full_url.ends_with(e.id);
      continue;
    }
    if (!is_http(e.full_url)) continue;
    const std::string_view url = split_history(e.full_url).url;
    std::string_view type;
    std::string_view id;
    if (!tail_type_and_id(url, type, id) || !ctx.model.is_resource(type) || !is_id(id)) continue;
    if (e.id.empty()) {
      ctx.error("invalid",
                "The fullUrl " + quoted(e.full_url) +
                    " looks like a RESTful server URL, but the resource has no id",
                entry_path(i));
    } else if (type != e.type || id != e.id) {
      // A different id alone is a warning: R4's own examples have fullUrls like .../Observation/lri-x for
      // the resource x.
      ctx.report(type != e.type ? "error" : "warning", "invalid",
                 "The fullUrl " + quoted(e.full_url) +
                     " looks like a RESTful server URL, so it must end with the resource's type and id (/" +
                     std::string(e.type) + "/" + std::string(e.id) + ")",
                 entry_path(i));
    } else if (url.size() > type.size() + id.size() + 2) {
      e.has_base = true;
      e.base = url.substr(0, url.size() - type.size() - id.size() - 2);
    }
  }
}

void check_searchset(RuleContext& ctx, const Node& entry_list, const std::vector<Entry>& entries) {
  const std::vector<std::string_view> expected = searched_types(ctx.model, ctx.resource);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    if (e.resource == nullptr) continue;
    const Node* search = entry_list.items()[i].find("search");
    const std::string_view mode = search == nullptr ? std::string_view() : search->string_at("mode");
    if (mode == "outcome" || (mode.empty() && e.type == "OperationOutcome")) continue;
    const std::string at = entry_path(i) + ".resource";
    if (e.id.empty()) ctx.error("invalid", "A search result must have an id", at);
    if (mode == "match" && !expected.empty() &&
        std::find(expected.begin(), expected.end(), e.type) == expected.end()) {
      ctx.error("invalid",
                "The resource type " + std::string(e.type) +
                    " does not match the search in the self link (expecting " + join(expected) + ")",
                at);
    }
  }
}

bool required_in_document(std::string_view path) {
  static constexpr std::string_view kPaths[] = {
      "Composition.subject",        "Composition.encounter",     "Composition.author",
      "Composition.attester.party", "Composition.custodian",     "Composition.event.detail",
      "Composition.section.author", "Composition.section.focus", "Composition.section.entry"};
  return std::find(std::begin(kPaths), std::end(kPaths), path) != std::end(kPaths);
}

// Which entries the first one reaches by following resolved references forwards, and which it reaches
// only by going backwards too: entries reported as not reachable.
void check_reachability(RuleContext& ctx, const std::vector<Entry>& entries,
                        const std::vector<std::vector<std::size_t>>& links, bool document) {
  const std::size_t n = entries.size();
  std::vector<char> forward(n, 0);
  std::vector<std::size_t> queue{0};
  forward[0] = 1;
  while (!queue.empty()) {
    const std::size_t at = queue.back();
    queue.pop_back();
    for (const std::size_t to : links[at]) {
      if (forward[to] == 0) {
        forward[to] = 1;
        queue.push_back(to);
      }
    }
  }
  std::vector<char> any(forward);
  for (std::size_t i = 0; i < n; ++i)
    if (any[i] != 0) queue.push_back(i);
  while (!queue.empty()) {
    const std::size_t at = queue.back();
    queue.pop_back();
    for (std::size_t from = 0; from < n; ++from) {
      if (any[from] != 0) continue;
      if (std::find(links[from].begin(), links[from].end(), at) == links[from].end()) continue;
      any[from] = 1;
      queue.push_back(from);
    }
    for (const std::size_t to : links[at]) {
      if (any[to] == 0) {
        any[to] = 1;
        queue.push_back(to);
      }
    }
  }
  const std::string_view first = document ? "Composition" : "MessageHeader";
  for (std::size_t i = 1; i < n; ++i) {
    const Entry& e = entries[i];
    if (e.resource == nullptr || forward[i] != 0) continue;
    const std::string name =
        quoted(e.full_url.empty() ? std::string(e.type) + "/" + std::string(e.id) : std::string(e.full_url));
    if (any[i] == 0) {
      ctx.report(document ? "error" : "warning", "informational",
                 "Entry " + name +
                     " is not reachable by following references (forwards or backwards) from the " +
                     std::string(first),
                 entry_path(i));
    } else if (!(document && e.type == "Provenance")) {
      ctx.report(document ? "warning" : "information", "informational",
                 "Entry " + name + " is reachable from the " + std::string(first) +
                     " only by following references backwards" +
                     (document ? " (only a Provenance may be included this way)" : ""),
                 entry_path(i));
    }
  }
}

// Resolves the references of the entries' resources: an ambiguous one is an error (unless versions of
// one resource may share a fullUrl, as in a history), and so is a urn: reference to a resource of a type
// the element does not allow. `on_resolved(reference, matches)` then sees each resolvable reference.
template <typename OnResolved>
void resolve_references(RuleContext& ctx, const Entries& entries, bool versions_share_urls,
                        OnResolved&& on_resolved) {
  std::vector<std::size_t> found;
  const auto on_reference = [&](const FoundReference& ref) {
    if (!resolve(entries, entries.list[ref.entry], ref.reference, found)) return;
    if (found.empty() && ctx.options.resolve_references) {
      ctx.error(
          "structure",
          "Unable to resolve the reference " + quoted(ref.reference) + " inside the " + std::string(ctx.type),
          ref.path);
    }
    if (found.size() > 1 && !versions_share_urls) {
      ctx.error("forbidden",
                "The reference " + quoted(ref.reference) + " matches " + std::to_string(found.size()) +
                    " resources of the " + std::string(ctx.type),
                ref.path);
    }
    // references.html: "if both the type and a reference is provided, the reference SHALL resolve to a
    // resource of the same type as that specified".
    if (found.size() == 1 && !ref.declared_type.empty() &&
        ref.declared_type.substr(ref.declared_type.rfind('/') + 1) != entries.list[found.front()].type) {
      ctx.error("invalid",
                "The reference " + quoted(ref.reference) + " resolves to a " +
                    std::string(entries.list[found.front()].type) + ", not the " +
                    std::string(ref.declared_type) + " its type says",
                ref.path);
    }
    if (found.size() == 1 && ref.reference.starts_with("urn:") &&
        !names_target(*ref.def, entries.list[found.front()].type)) {
      const std::string_view target = entries.list[found.front()].type;
      const std::vector<std::string_view> allowed = allowed_targets(ctx.model, *ref.def);
      if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), target) == allowed.end()) {
        ctx.error("structure",
                  "The reference " + quoted(ref.reference) + " resolves to a " + std::string(target) +
                      ", which is not a valid target for this element (must be one of " + join(allowed) + ")",
                  ref.path);
      }
    }
    on_resolved(ref, found);
  };
  // The base walk collected the References (RuleContext::references); those of an entry's own resource
  // are resolved, not those of resources nested in it (contained ones, another Bundle's).
  std::unordered_map<const Node*, std::size_t> entry_of;
  for (std::size_t i = 0; i < entries.list.size(); ++i)
    if (entries.list[i].resource != nullptr) entry_of.emplace(entries.list[i].resource, i);
  const std::size_t prefix = ctx.path.size() + 1;  // "Bundle."
  for (const SeenReference& seen : ctx.references) {
    if (!ctx.spend()) return;
    const auto entry = entry_of.find(seen.owner);
    const std::string_view path = ctx.path_of(seen);
    if (entry == entry_of.end() || path.size() <= prefix) continue;
    on_reference(
        FoundReference{entry->second, path.substr(prefix), seen.reference, seen.declared_type, seen.def});
  }
}

Entry make_entry(const Model& model, const Node* resource, std::string_view full_url, std::string path) {
  Entry e;
  e.full_url = full_url;
  e.path = std::move(path);
  if (resource == nullptr || !resource->is_object()) return e;
  e.type = resource->string_at("resourceType");
  if (!model.is_resource(e.type)) return e;
  e.resource = resource;
  e.id = resource->string_at("id");
  if (const Node* meta = resource->find("meta"); meta != nullptr) e.version = meta->string_at("versionId");
  return e;
}

void check_bundle(RuleContext& ctx) {
  const Node* entry_list = ctx.resource.find("entry");
  if (entry_list == nullptr || !entry_list->is_array() || entry_list->items().empty()) return;
  const std::string_view bundle_type = ctx.resource.string_at("type");
  Entries entries;
  entries.list.reserve(entry_list->items().size());
  for (std::size_t i = 0; i < entry_list->items().size(); ++i) {
    const Node& item = entry_list->items()[i];
    entries.list.push_back(item.is_object()
                               ? make_entry(ctx.model, item.find("resource"), item.string_at("fullUrl"),
                                            entry_path(i) + ".resource")
                               : Entry{});
  }
  check_full_urls(ctx, entries.list);
  entries.index();
  if (bundle_type == "searchset") check_searchset(ctx, *entry_list, entries.list);

  const bool document = bundle_type == "document" && entries.list.front().type == "Composition";
  const bool message = bundle_type == "message" && entries.list.front().type == "MessageHeader";
  std::vector<std::vector<std::size_t>> links(entries.list.size());
  resolve_references(
      ctx, entries, bundle_type == "history",
      [&](const FoundReference& ref, const std::vector<std::size_t>& found) {
        if (!document && !message) return;
        if (found.size() == 1 && std::find(links[ref.entry].begin(), links[ref.entry].end(), found.front()) ==
                                     links[ref.entry].end())
          links[ref.entry].push_back(found.front());
        if (ref.entry != 0) return;
        const std::string_view element = ref.def->path;
        if (document ? !required_in_document(element) : element != "MessageHeader.focus") return;
        if (found.empty()) {
          ctx.error("invalid",
                    "The resource referenced by " + quoted(ref.reference) + " (" + std::string(element) +
                        ") is not in the Bundle, as a " + (document ? "document" : "message") + " requires",
                    ref.path);
        } else if (found.size() > 1) {
          ctx.error("invalid",
                    "The reference " + quoted(ref.reference) + " (" + std::string(element) +
                        ") must identify one entry of the " + (document ? "document" : "message") +
                        ", but matches " + std::to_string(found.size()),
                    ref.path);
        }
      });
  if (document || message) check_reachability(ctx, entries.list, links, document);
}

// A Parameters' resources resolve each other's references as a Bundle's entries do, with the fullUrl
// of the parameters-fullUrl extension.
void add_parameters(const Model& model, const Node& parameters, std::string path, Entries& entries) {
  if (!parameters.is_array()) return;
  for (std::size_t i = 0; i < parameters.items().size(); ++i) {
    const Node& parameter = parameters.items()[i];
    if (!parameter.is_object()) continue;
    std::string at = path;
    append_index(at, i);
    if (const Node* resource = parameter.find("resource"); resource != nullptr) {
      std::string_view full_url;
      if (const Node* extensions = parameter.find("extension");
          extensions != nullptr && extensions->is_array()) {
        for (const Node& extension : extensions->items()) {
          if (extension.string_at("url") == "http://hl7.org/fhir/StructureDefinition/parameters-fullUrl")
            full_url = extension.string_at("valueUri");
        }
      }
      entries.list.push_back(make_entry(model, resource, full_url, at + ".resource"));
    }
    if (const Node* parts = parameter.find("part"); parts != nullptr)
      add_parameters(model, *parts, at + ".part", entries);
  }
}

void check_parameters(RuleContext& ctx) {
  const Node* parameters = ctx.resource.find("parameter");
  if (parameters == nullptr) return;
  Entries entries;
  entries.by_type_and_id = true;
  add_parameters(ctx.model, *parameters, "parameter", entries);
  if (entries.list.empty()) return;
  for (Entry& e : entries.list) {
    std::string_view type;
    std::string_view id;
    const std::string_view url = e.full_url;
    if (is_http(url) && tail_type_and_id(url, type, id) && type == e.type && id == e.id &&
        url.size() > type.size() + id.size() + 2) {
      e.has_base = true;
      e.base = url.substr(0, url.size() - type.size() - id.size() - 2);
    }
  }
  entries.index();
  resolve_references(ctx, entries, false, [](const FoundReference&, const std::vector<std::size_t>&) {});
}

// Whether any string in `node` (the narrative's links included) refers to `#id`.
// Collects the local references ("#id", and "#" for the container) made anywhere in `node`: every string
// that is one, and in the narrative (`div`) every quoted attribute value that is one (an href or src).
void collect_local_references(const Node& node, std::unordered_set<std::string_view>& out,
                              bool narrative = false) {
  if (node.is_string()) {
    const std::string_view text = node.text();
    if (text.starts_with('#')) out.insert(text);
    if (!narrative) return;
    for (auto at = text.find('#'); at != std::string_view::npos; at = text.find('#', at + 1)) {
      if (at == 0 || (text[at - 1] != '"' && text[at - 1] != '\'')) continue;
      const auto end = text.find(text[at - 1], at);
      if (end == std::string_view::npos) break;
      out.insert(text.substr(at, end - at));
    }
    return;
  }
  if (node.is_object()) {
    for (const auto& [key, value] : node.members()) collect_local_references(value, out, key == "div");
  } else if (node.is_array()) {
    for (const Node& item : node.items()) collect_local_references(item, out, narrative);
  }
}

// Whether the set holds "#" + id.
bool contains_key(const std::unordered_set<std::string_view>& referenced, std::string_view id) {
  std::string key;
  key.reserve(id.size() + 1);
  key.push_back('#');
  key.append(id);
  return referenced.count(key) != 0;
}

// dom-3, in one walk of the container and one of each contained resource (its FHIRPath expression, and a
// search of the container per contained resource, grow with the square of the number contained).
void check_contained(RuleContext& ctx, const Node& contained) {
  std::unordered_set<std::string_view> referenced;
  collect_local_references(ctx.resource, referenced);
  std::unordered_set<std::string_view> own;
  for (std::size_t i = 0; i < contained.items().size(); ++i) {
    if (!ctx.spend()) return;
    const Node& resource = contained.items()[i];
    if (!resource.is_object()) continue;
    const std::string_view id = resource.string_at("id");
    if (id.empty()) continue;
    if (contains_key(referenced, id)) continue;
    own.clear();
    collect_local_references(resource, own);  // a contained resource may refer to its container: "#"
    if (own.count("#") != 0) continue;
    ctx.error(
        "invariant",
        "dom-3: If the resource is contained in another resource, it SHALL be referred to from elsewhere "
        "in the resource or SHALL refer to the containing resource",
        "contained[" + std::to_string(i) + "]");
  }
}

// Element ids (Element.id, for references inside a resource) are unique within a resource; the ids of
// the resources nested in it are their own. The first walk only looks; a second one, with locations,
// runs when there is a duplicate.
class ElementIds {
 public:
  explicit ElementIds(RuleContext& ctx) : ctx_(ctx) {}

  void check() {
    if (!walk(ctx_.resource, true, false)) return;
    seen_.clear();
    walk(ctx_.resource, true, true);
  }

 private:
  // True when a duplicate was found (`report`: all of them reported, with `path_` kept).
  bool walk(const Node& node, bool root, bool report) {
    bool duplicate = false;
    if (node.is_array()) {
      for (std::size_t i = 0; i < node.items().size(); ++i) {
        const std::size_t mark = path_.size();
        if (report) path_.append("[" + std::to_string(i) + "]");
        duplicate = walk(node.items()[i], false, report) || duplicate;
        path_.resize(mark);
        if (duplicate && !report) return true;
      }
      return duplicate;
    }
    if (!node.is_object() || (!root && node.find("resourceType") != nullptr)) return false;
    for (const auto& [key, value] : node.members()) {
      if (key == "id" && !root && value.is_string()) {
        const std::string_view id = value.text();
        if (!seen_.insert(id).second) {
          if (!report) return true;
          duplicate = true;
          ctx_.error("business-rule",
                     "Duplicate element id " + quoted(id) + " (ids are unique within a resource)", path_);
        }
        continue;
      }
      if (!value.is_object() && !value.is_array()) continue;
      // A StructureDefinition's snapshot and differential are two views of the same element ids.
      if (root && ctx_.type == "StructureDefinition" && (key == "snapshot" || key == "differential"))
        continue;
      const std::size_t mark = path_.size();
      if (report) {
        if (!path_.empty()) path_.push_back('.');
        path_.append(key.starts_with('_') ? std::string_view(key).substr(1) : std::string_view(key));
      }
      duplicate = walk(value, false, report) || duplicate;
      path_.resize(mark);
      if (duplicate && !report) return true;
    }
    return duplicate;
  }

  RuleContext& ctx_;
  std::unordered_set<std::string_view> seen_;
  std::string path_;
};

}  // namespace

void check_bundle_and_references(RuleContext& ctx) {
  if (ctx.has_element_ids) ElementIds(ctx).check();
  if (ctx.type == "Bundle") check_bundle(ctx);
  if (ctx.type == "Parameters") check_parameters(ctx);
  if (ctx.contained || !ctx.options.check_invariants) return;
  const Node* contained = ctx.resource.find("contained");
  if (contained != nullptr && contained->is_array()) check_contained(ctx, *contained);
}

}  // namespace fhirgate::fhir
