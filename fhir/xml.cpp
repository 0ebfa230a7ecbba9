#include "fhir/xml.hpp"

#include <libxml/SAX2.h>
#include <libxml/parser.h>
#include <libxml/xmlerror.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <climits>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "fhir/element_path.hpp"
#include "fhir/utf8.hpp"

// Reading. The document is checked for a DOCTYPE in its prolog before libxml2 sees it, then parsed by a
// private parser context with SAX2 callbacks and no tree: forced UTF-8, no network, no entity
// substitution, no DTD loading, CDATA delivered as text, comments and processing instructions not
// delivered at all, errors collected by a structured handler on the context (the first error gives the
// line and column; nothing reaches libxml2's global handlers). The internalSubset callback stops the
// parser as well, so a DOCTYPE the byte scan cannot see still never gets its subset read. Without a DTD
// the only entities are the five predefined ones and character references, so there is nothing to
// expand. The depth limit is checked in the startElementNs callback, which stops the parser. No DOM is
// built: a first version that walked libxml2's tree spent 40% of its time building and freeing it.
//
// Well-formedness comes before any FHIR-level complaint. libxml2 reports events as it goes and finds a
// document cut short only at its end (it even reports the start tag of a bare `<Patient`), so when a
// handler refuses an event the parser is not stopped: the handler gets no more events, and the rest of
// the document is still read. A document that is not well-formed is then invalid_input with the
// parser's line and column, whatever the handler said; only a well-formed one gets the handler's error.
//
// The reader keeps a stack of frames, one per open element, each knowing its TypeDef, and one stack of
// children: every element gets its entry there when it opens (filled in as it is read), and its own
// children are the entries above that one. When an element closes, its children are sorted into model
// order (attributes first: the JSON of Extension puts `url` before its `extension`, as the official
// examples do; a stable sort, and only when the input was out of order), grouped, and turned into JSON
// members with `_name` right after `name` and arrays from the element's cardinality; then they are
// dropped. Locations are rendered from the frame stack only when something is wrong.
//
// The Narrative div is the one place where markup is carried. Its events go to a small XHTML serializer
// shared by both directions, so a div read from XML and one written to XML look alike: the XHTML
// namespace declared on the div, elements unprefixed, `<e/>` for empty elements, comments and processing
// instructions dropped, `&`, `<`, `>` and `"` escaped in text (the official JSON examples keep `&quot;`
// and write `'` as is).
//
// Writing. One recursive pass over the JSON tree appending to a string. Members are mapped to elements,
// sorted into model order, and written attributes first; pretty output indents by two spaces except
// inside the div, whose text is kept as it is. A div string goes through the same hardened parser into
// the XHTML serializer, so only well-formed XHTML reaches the output.

namespace fhirgate::fhir {
namespace {

constexpr std::string_view kFhirNamespace = "http://hl7.org/fhir";
constexpr std::string_view kXhtmlNamespace = "http://www.w3.org/1999/xhtml";
constexpr std::string_view kXsiNamespace = "http://www.w3.org/2001/XMLSchema-instance";
constexpr std::string_view kXmlNamespace = "http://www.w3.org/XML/1998/namespace";
constexpr std::string_view kDeclaration = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";
constexpr std::string_view kBom = "\xEF\xBB\xBF";
constexpr int kParseOptions = XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_IGNORE_ENC;

std::string_view view(const xmlChar* s) {
  return s == nullptr ? std::string_view() : std::string_view(reinterpret_cast<const char*>(s));
}

bool is_xml_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool is_blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), is_xml_space);
}

// A location in the resource, kept on the stack and rendered FHIRPath-style (Patient.name[0].given[1]).
struct Location {
  const Location* parent = nullptr;
  std::string_view name;
  std::size_t index = kNoIndex;
};

Error make_error(ErrorCode code, std::string diagnostics, const Location* at = nullptr) {
  Error e = Error::make(code, std::move(diagnostics), path_text(at));
  e.internal = "xml: " + e.issues.front().diagnostics;
  if (!e.issues.front().expression.empty()) e.internal += " at " + e.issues.front().expression;
  return e;
}

// JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
bool is_json_number(std::string_view s) {
  std::size_t i = 0;
  const auto digits = [&] {
    const std::size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i > start;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (i < s.size() && s[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == s.size();
}

// Bytes the escaper has to look at: 1 = control character, 2 = markup character, 3 = non-ASCII.
constexpr std::array<std::uint8_t, 256> kEscapeClass = [] {
  std::array<std::uint8_t, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = 1;
  for (const char c : {'&', '<', '>', '"'}) t[static_cast<unsigned char>(c)] = 2;
  for (int c = 0x80; c < 0x100; ++c) t[c] = 3;
  return t;
}();

// Appends s escaped for an attribute value (tab, newline and carriage return as character references, so
// attribute normalization keeps them) or for text. False when s holds a character XML 1.0 cannot carry
// (a control character, malformed UTF-8, U+FFFE/U+FFFF); out is then incomplete.
bool append_escaped(std::string& out, std::string_view s, bool attribute) {
  std::size_t run = 0;
  for (std::size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const std::uint8_t cls = kEscapeClass[c];
    if (cls == 0) {
      ++i;
      continue;
    }
    if (cls == 3) {
      const std::size_t len = xml_utf8_length(s, i);
      if (len == 0) return false;
      i += len;
      continue;
    }
    out.append(s.data() + run, i - run);
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\r':
        out += "&#13;";
        break;
      case '\n':
        out += attribute ? "&#10;" : "\n";
        break;
      case '\t':
        out += attribute ? "&#9;" : "\t";
        break;
      default:
        return false;
    }
    run = ++i;
  }
  out.append(s.data() + run, s.size() - run);
  return true;
}

// A SAX2 attribute value. With entity substitution off libxml2 hands `&` over as "&#38;" (to be
// decoded by its tree builder); every other reference is already decoded. The raw text when there is
// nothing to decode, else the decoded text in `scratch`.
std::string_view attribute_value(const xmlChar* const* attribute, std::string& scratch) {
  const std::string_view raw(reinterpret_cast<const char*>(attribute[3]),
                             static_cast<std::size_t>(attribute[4] - attribute[3]));
  if (raw.find('&') == std::string_view::npos) return raw;
  scratch.clear();
  scratch.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size();) {
    if (raw.compare(i, 5, "&#38;") == 0) {
      scratch += '&';
      i += 5;
    } else {
      scratch += raw[i++];
    }
  }
  return scratch;
}

std::string attribute_text(const xmlChar* const* attribute) {
  std::string scratch;
  const std::string_view value = attribute_value(attribute, scratch);
  return value.data() == scratch.data() ? std::move(scratch) : std::string(value);
}

// The DOCTYPE check. Offset of a `<!DOCTYPE` in the prolog (after the BOM, XML declaration, comments,
// processing instructions and whitespace), or npos.
std::size_t doctype_offset(std::string_view xml) {
  std::size_t i = xml.starts_with(kBom) ? kBom.size() : 0;
  while (i < xml.size()) {
    if (is_xml_space(xml[i])) {
      ++i;
      continue;
    }
    const std::string_view rest = xml.substr(i);
    if (rest.starts_with("<?")) {
      const std::size_t end = xml.find("?>", i + 2);
      if (end == std::string_view::npos) return std::string_view::npos;
      i = end + 2;
    } else if (rest.starts_with("<!--")) {
      const std::size_t end = xml.find("-->", i + 4);
      if (end == std::string_view::npos) return std::string_view::npos;
      i = end + 3;
    } else {
      return rest.starts_with("<!DOCTYPE") ? i : std::string_view::npos;
    }
  }
  return std::string_view::npos;
}

// SAX plumbing shared by the reader and the div writer. A Handler has
//   bool start(xmlParserCtxt*, std::string_view name, std::string_view ns, int attribute_count,
//              const xmlChar** attributes);  // attributes as libxml2's SAX2 5-tuples
//   bool end(xmlParserCtxt*, std::string_view name);
//   bool text(xmlParserCtxt*, std::string_view text);
//   Error take_error();  // after one of the callbacks returned false
struct SaxState {
  void* handler = nullptr;
  std::size_t max_depth = 0;
  bool stopped = false;
  bool dtd = false;
  bool too_deep = false;
  bool handler_failed = false;
  bool failed = false;
  std::string message;
  int line = 0;
  int column = 0;
};

SaxState& state_of(void* user) {
  return *static_cast<SaxState*>(static_cast<xmlParserCtxt*>(user)->_private);
}

void stop(xmlParserCtxt* ctxt, SaxState& state) {
  state.stopped = true;
  state.line = xmlSAX2GetLineNumber(ctxt);
  state.column = xmlSAX2GetColumnNumber(ctxt);
  xmlStopParser(ctxt);
}

void on_parse_error(void* user, xmlErrorPtr error) {
  SaxState& state = state_of(user);
  if (error == nullptr || error->level < XML_ERR_ERROR || state.failed || state.stopped) return;
  state.failed = true;
  state.message = error->message == nullptr ? "unknown error" : error->message;
  while (!state.message.empty() && is_xml_space(state.message.back())) state.message.pop_back();
  std::replace(state.message.begin(), state.message.end(), '\n', ' ');
  state.line = error->line;
  state.column = error->int2;
}

void on_internal_subset(void* user, const xmlChar*, const xmlChar*, const xmlChar*) {
  SaxState& state = state_of(user);
  state.dtd = true;
  stop(static_cast<xmlParserCtxt*>(user), state);
}

// libxml2 calls this before pushing the element, so nameNr counts its open ancestors.
// After a handler refused an event it gets no more, but the parser reads on (see the top of the file).
template <class Handler>
void on_start(void* user, const xmlChar* local_name, const xmlChar*, const xmlChar* uri, int, const xmlChar**,
              int attribute_count, int, const xmlChar** attributes) {
  auto* ctxt = static_cast<xmlParserCtxt*>(user);
  SaxState& state = state_of(user);
  if (state.stopped) return;
  if (static_cast<std::size_t>(ctxt->nameNr) + 1 > state.max_depth) {
    state.too_deep = true;
    stop(ctxt, state);
    return;
  }
  if (state.handler_failed) return;
  auto& handler = *static_cast<Handler*>(state.handler);
  if (!handler.start(ctxt, view(local_name), view(uri), attribute_count, attributes))
    state.handler_failed = true;
}

template <class Handler>
void on_end(void* user, const xmlChar* local_name, const xmlChar*, const xmlChar*) {
  auto* ctxt = static_cast<xmlParserCtxt*>(user);
  SaxState& state = state_of(user);
  if (state.stopped || state.handler_failed) return;
  if (!static_cast<Handler*>(state.handler)->end(ctxt, view(local_name))) state.handler_failed = true;
}

template <class Handler>
void on_text(void* user, const xmlChar* text, int length) {
  auto* ctxt = static_cast<xmlParserCtxt*>(user);
  SaxState& state = state_of(user);
  if (state.stopped || state.handler_failed) return;
  const std::string_view chunk(reinterpret_cast<const char*>(text), static_cast<std::size_t>(length));
  if (!static_cast<Handler*>(state.handler)->text(ctxt, chunk)) state.handler_failed = true;
}

struct ContextFree {
  void operator()(xmlParserCtxt* c) const { xmlFreeParserCtxt(c); }
};

void init_libxml2() {
  static const bool initialized = [] {
    xmlInitParser();
    return true;
  }();
  (void)initialized;
}

Error positioned(Error e, int line, int column) {
  e.issues.front().line = line;
  e.issues.front().column = column;
  return e;
}

// Parses a whole document into `handler` with the hardening described at the top. Errors: invalid_input
// for input that is too large, too deep, has a DOCTYPE or is not well-formed (whatever the handler
// said); else the handler's own error when it refused an event.
template <class Handler>
Status sax_parse(std::string_view xml, const XmlLimits& limits, Handler& handler) {
  if (xml.size() > limits.max_bytes || xml.size() > static_cast<std::size_t>(INT_MAX)) {
    return make_error(ErrorCode::invalid_input,
                      "XML document is larger than " + std::to_string(limits.max_bytes) + " bytes");
  }
  if (is_blank(xml)) return make_error(ErrorCode::invalid_input, "XML document is empty");
  if (const std::size_t at = doctype_offset(xml); at != std::string_view::npos) {
    const std::string_view before = xml.substr(0, at);
    const std::size_t line_start = before.rfind('\n') + 1;
    return positioned(make_error(ErrorCode::invalid_input, "DTDs are not allowed in FHIR XML"),
                      static_cast<int>(std::count(before.begin(), before.end(), '\n')) + 1,
                      static_cast<int>(at - line_start) + 1);
  }
  init_libxml2();
  std::unique_ptr<xmlParserCtxt, ContextFree> ctxt(xmlNewParserCtxt());
  if (ctxt == nullptr || ctxt->sax == nullptr)
    return make_error(ErrorCode::internal, "cannot create an XML parser");
  xmlSAXHandler sax{};
  sax.initialized = XML_SAX2_MAGIC;
  sax.startElementNs = on_start<Handler>;
  sax.endElementNs = on_end<Handler>;
  sax.characters = on_text<Handler>;
  sax.ignorableWhitespace = on_text<Handler>;
  sax.internalSubset = on_internal_subset;
  sax.serror = on_parse_error;
  *ctxt->sax = sax;
  SaxState state;
  state.handler = &handler;
  state.max_depth = limits.max_depth;
  ctxt->_private = &state;
  if (xmlDoc* doc = xmlCtxtReadMemory(ctxt.get(), xml.data(), static_cast<int>(xml.size()), nullptr, "UTF-8",
                                      kParseOptions)) {
    xmlFreeDoc(doc);
  }
  if (state.dtd) {
    return positioned(make_error(ErrorCode::invalid_input, "DTDs are not allowed in FHIR XML"), state.line,
                      state.column);
  }
  if (state.too_deep) {
    return positioned(
        make_error(ErrorCode::invalid_input,
                   "XML is nested deeper than " + std::to_string(limits.max_depth) + " elements"),
        state.line, state.column);
  }
  if (state.failed || !ctxt->wellFormed) {
    return positioned(
        make_error(ErrorCode::invalid_input,
                   "XML is not well-formed: " + (state.message.empty() ? "no root element" : state.message)),
        state.line, state.column);
  }
  if (state.handler_failed) return handler.take_error();
  return Ok{};
}

// How an element is represented, from its definition (and the type a choice member names).
enum class Shape : std::uint8_t { primitive, complex, resource, xhtml };

struct ElementType {
  Shape shape = Shape::complex;
  const TypeDef* type = nullptr;  // the primitive or complex type; null for resource and xhtml
};

std::optional<ElementType> element_type(const Model& model, const ElementDef& element,
                                        std::string_view choice) {
  if (element.xhtml) return ElementType{Shape::xhtml, nullptr};
  if (choice.empty() && element.inline_type != nullptr)
    return ElementType{Shape::complex, element.inline_type};
  std::string_view code = choice;
  if (code.empty()) {
    if (element.types.size() != 1) return std::nullopt;
    code = element.types.front().code;
  }
  if (code == "Resource") return ElementType{Shape::resource, nullptr};
  const TypeDef* type = model.type(code);
  if (type == nullptr) return std::nullopt;
  return ElementType{type->kind == TypeDef::Kind::primitive ? Shape::primitive : Shape::complex, type};
}

std::string model_gap(const ElementDef& element) {
  return "the type model has no usable type for " + element.path;
}

// Writes the events of a narrative div as XHTML text (see the top of the file).
class XhtmlSink {
 public:
  explicit XhtmlSink(std::string& out) : out_(out) {}

  // Null when written, else why the element is not acceptable narrative.
  const char* start(std::string_view name, std::string_view ns, int attribute_count,
                    const xmlChar** attributes, bool root) {
    if (ns != kXhtmlNamespace) return "the narrative may contain only XHTML elements";
    close_start_tag();
    out_ += '<';
    out_ += name;
    if (root) {
      out_ += " xmlns=\"";
      out_ += kXhtmlNamespace;
      out_ += '"';
    }
    for (int k = 0; k < attribute_count; ++k) {
      const xmlChar* const* attribute = attributes + 5 * k;
      const std::string_view attribute_ns = view(attribute[2]);
      if (!attribute_ns.empty() && attribute_ns != kXmlNamespace) {
        return "the narrative may contain only XHTML attributes";
      }
      out_ += ' ';
      if (!attribute_ns.empty()) out_ += "xml:";
      out_ += view(attribute[0]);
      out_ += "=\"";
      append_escaped(out_, attribute_text(attribute), true);
      out_ += '"';
    }
    open_ = true;
    return nullptr;
  }

  void end(std::string_view name) {
    if (open_) {
      out_ += "/>";
      open_ = false;
      return;
    }
    out_ += "</";
    out_ += name;
    out_ += '>';
  }

  void text(std::string_view text) {
    if (text.empty()) return;
    close_start_tag();
    append_escaped(out_, text, false);
  }

 private:
  void close_start_tag() {
    if (!open_) return;
    out_ += '>';
    open_ = false;
  }

  std::string& out_;
  bool open_ = false;  // a start tag waits for its '>' or '/>'
};

// XML -> JSON tree, as SAX callbacks (see the top of the file).
class XmlReader {
 public:
  explicit XmlReader(const Model& model)
      : model_(model), extension_(model.type("Extension")), sink_(div_text_) {
    frames_.reserve(32);
    children_.reserve(512);
  }

  Result<Node> read(std::string_view xml, const XmlLimits& limits) {
    if (extension_ == nullptr) return make_error(ErrorCode::internal, "the type model has no Extension type");
    if (Status status = sax_parse(xml, limits, *this); !status) return std::move(status).error();
    return std::move(result_);
  }

  bool start(xmlParserCtxt* ctxt, std::string_view name, std::string_view ns, int attribute_count,
             const xmlChar** attributes) {
    const int line = xmlSAX2GetLineNumber(ctxt);
    if (div_depth_ > 0) {
      if (const char* wrong = sink_.start(name, ns, attribute_count, attributes, false)) {
        return fail(line, wrong, location());
      }
      ++div_depth_;
      return true;
    }
    if (frames_.empty()) return start_resource(name, ns, attribute_count, attributes, line);
    const Frame& parent = frames_.back();
    switch (parent.kind) {
      case FrameKind::wrapper:
        if (children_.size() > parent.slot + 1) {
          return fail(line, "<" + std::string(name_of(parent)) + "> must contain exactly one resource",
                      location());
        }
        return start_resource(name, ns, attribute_count, attributes, line);
      case FrameKind::primitive:
        if (ns != kFhirNamespace || name != "extension") {
          return fail(line,
                      "unknown element <" + std::string(name) + "> in primitive <" +
                          std::string(name_of(parent)) + ">",
                      location(name));
        }
        open(FrameKind::complex, extension_, name, 0, true, line);
        return attributes_of(*extension_, attribute_count, attributes, line);
      case FrameKind::resource:
      case FrameKind::complex:
        return start_element(*parent.type, name, ns, attribute_count, attributes, line);
      case FrameKind::div:
        break;
    }
    return true;
  }

  bool end(xmlParserCtxt*, std::string_view name) {
    if (div_depth_ > 0) {
      sink_.end(name);
      if (--div_depth_ > 0) return true;
      children_[frames_.back().slot].node = Node::string(std::move(div_text_));
      div_text_.clear();
      return close();
    }
    const Frame& frame = frames_.back();
    Child& slot = children_[frame.slot];
    switch (frame.kind) {
      case FrameKind::resource:
      case FrameKind::complex:
        if (!build_object(frame, slot.node)) return false;
        if (slot.node.members().empty()) {
          return fail(slot.line, "<" + std::string(slot.name) + "> has no attributes or child elements",
                      location());
        }
        break;
      case FrameKind::primitive:
        if (children_.size() > frame.slot + 1) {
          Node extensions = Node::array();
          extensions.items().reserve(children_.size() - frame.slot - 1);
          for (std::size_t k = frame.slot + 1; k < children_.size(); ++k)
            extensions.push(std::move(children_[k].node));
          slot.node.members().emplace_back("extension", std::move(extensions));
        }
        if (slot.value.is_null() && slot.node.members().empty()) {
          return fail(slot.line, "<" + std::string(slot.name) + "> has neither a value nor extensions",
                      location());
        }
        break;
      case FrameKind::wrapper:
        if (children_.size() == frame.slot + 1) {
          return fail(slot.line, "<" + std::string(slot.name) + "> must contain exactly one resource",
                      location());
        }
        slot.node = std::move(children_.back().node);
        break;
      case FrameKind::div:
        break;
    }
    return close();
  }

  bool text(xmlParserCtxt* ctxt, std::string_view text) {
    if (div_depth_ > 0) {
      sink_.text(text);
      return true;
    }
    if (frames_.empty() || is_blank(text)) return true;
    const Frame& frame = frames_.back();
    std::string diagnostics = "text is not allowed directly inside <" + std::string(name_of(frame)) + ">";
    if (frame.kind == FrameKind::primitive) diagnostics += ": a primitive value goes in its value attribute";
    return fail(xmlSAX2GetLineNumber(ctxt), std::move(diagnostics), location());
  }

  Error take_error() { return std::move(*error_); }

 private:
  enum class FrameKind : std::uint8_t { resource, complex, primitive, wrapper, div };

  // An open element. Its own entry in children_ is `slot`; its children are the entries above it.
  struct Frame {
    FrameKind kind;
    bool array;
    const TypeDef* type;  // null for wrapper and div
    std::size_t slot;
  };

  // An element (or attribute) of the enclosing element, filled in while it is open.
  struct Child {
    std::uint32_t index;  // of the element in the parent's type
    bool attribute;
    Shape shape;
    std::string_view name;   // libxml2's dictionary owns it
    std::uint32_t position;  // among the parent's earlier children for the same element
    int line;
    Node value;  // a primitive's value; null when it has none
    Node node;   // an attribute's string, an object, a resource, a div string, or a primitive's `_name`
  };

  static bool child_less(const Child& a, const Child& b) {
    if (a.attribute != b.attribute) return a.attribute;
    return a.index < b.index;
  }

  static Shape shape_of(FrameKind kind) {
    switch (kind) {
      case FrameKind::primitive:
        return Shape::primitive;
      case FrameKind::wrapper:
        return Shape::resource;
      case FrameKind::div:
        return Shape::xhtml;
      case FrameKind::resource:
      case FrameKind::complex:
        break;
    }
    return Shape::complex;
  }

  std::string_view name_of(const Frame& frame) const { return children_[frame.slot].name; }

  bool fail(int line, std::string diagnostics, std::string expression,
            ErrorCode code = ErrorCode::unprocessable) {
    Error e = Error::make(code, std::move(diagnostics), std::move(expression));
    e.issues.front().line = line;
    e.internal = "xml: " + e.issues.front().diagnostics + " at " + e.issues.front().expression;
    error_ = std::move(e);
    return false;
  }

  // FHIRPath-style location of the innermost open element, or of its child `child`.
  std::string location(std::string_view child = {}) const {
    std::string out;
    for (std::size_t k = 0; k < frames_.size(); ++k) {
      const Frame& frame = frames_[k];
      if (frame.kind == FrameKind::resource && k > 0) continue;
      if (!out.empty()) out += '.';
      out += name_of(frame);
      if (frame.array) {
        out += '[';
        out += std::to_string(children_[frame.slot].position);
        out += ']';
      }
    }
    if (!child.empty()) {
      out += '.';
      out += child;
    }
    return out;
  }

  std::uint32_t position_of(std::uint32_t index) const {
    if (frames_.empty()) return 0;
    const std::size_t first = frames_.back().slot + 1;
    if (children_.size() > first && !children_.back().attribute && children_.back().index == index) {
      return children_.back().position + 1;
    }
    std::uint32_t count = 0;
    for (std::size_t k = first; k < children_.size(); ++k) {
      if (!children_[k].attribute && children_[k].index == index) ++count;
    }
    return count;
  }

  Child& open(FrameKind kind, const TypeDef* type, std::string_view name, std::uint32_t index, bool array,
              int line) {
    const std::uint32_t position = position_of(index);
    frames_.push_back(Frame{kind, array, type, children_.size()});
    const bool object =
        kind == FrameKind::resource || kind == FrameKind::complex || kind == FrameKind::primitive;
    return children_.emplace_back(
        Child{index, false, shape_of(kind), name, position, line, Node(), object ? Node::object() : Node()});
  }

  // Closes the innermost element: its children are dropped, its entry stays with its parent's children.
  bool close() {
    const std::size_t slot = frames_.back().slot;
    frames_.pop_back();
    children_.resize(slot + 1);
    if (frames_.empty()) {
      result_ = std::move(children_.back().node);
      children_.clear();
    }
    return true;
  }

  bool start_resource(std::string_view name, std::string_view ns, int attribute_count,
                      const xmlChar** attributes, int line) {
    const std::string here = frames_.empty() ? std::string(name) : location();
    if (ns != kFhirNamespace) {
      return fail(line,
                  "element <" + std::string(name) + "> is not in the FHIR namespace (" +
                      std::string(kFhirNamespace) + ")",
                  here);
    }
    if (!model_.is_resource(name))
      return fail(line, "<" + std::string(name) + "> is not a FHIR resource type", here);
    const TypeDef* type = model_.type(name);
    Child& slot = open(FrameKind::resource, type, name, 0, false, line);
    slot.node.members().emplace_back("resourceType", Node::string(std::string(name)));
    return attributes_of(*type, attribute_count, attributes, line);
  }

  bool attributes_of(const TypeDef& type, int attribute_count, const xmlChar** attributes, int line) {
    for (int k = 0; k < attribute_count; ++k) {
      const xmlChar* const* attribute = attributes + 5 * k;
      const std::string_view ns = view(attribute[2]);
      if (ns == kXsiNamespace) continue;
      const std::string_view name = view(attribute[0]);
      const ElementDef* def = ns.empty() ? type.element(name) : nullptr;
      if (def == nullptr || !def->xml_attribute) {
        return fail(
            line,
            "unknown attribute '" + std::string(name) + "' on <" + std::string(name_of(frames_.back())) + ">",
            location(name));
      }
      std::string value = attribute_text(attribute);
      if (value.empty()) return fail(line, "attribute '" + std::string(name) + "' is empty", location(name));
      children_.emplace_back(Child{static_cast<std::uint32_t>(def - type.elements.data()), true,
                                   Shape::primitive, name, 0, line, Node(), Node::string(std::move(value))});
    }
    return true;
  }

  bool start_element(const TypeDef& type, std::string_view name, std::string_view ns, int attribute_count,
                     const xmlChar** attributes, int line) {
    const bool xhtml = ns == kXhtmlNamespace;
    if (ns != kFhirNamespace && !xhtml) {
      return fail(line,
                  "element <" + std::string(name) + "> is not in the FHIR namespace (" +
                      std::string(kFhirNamespace) + ")",
                  location(name));
    }
    std::string_view choice;
    const ElementDef* def = type.resolve(name, &choice);
    if (def == nullptr || def->xml_attribute) {
      return fail(line, "unknown element <" + std::string(name) + ">", location(name));
    }
    if (def->xhtml != xhtml) {
      return fail(line,
                  "element <" + std::string(name) + "> must be in the " +
                      std::string(def->xhtml ? kXhtmlNamespace : kFhirNamespace) + " namespace",
                  location(name));
    }
    const std::optional<ElementType> element = element_type(model_, *def, choice);
    if (!element) return fail(line, model_gap(*def), location(name), ErrorCode::internal);
    const auto index = static_cast<std::uint32_t>(def - type.elements.data());
    switch (element->shape) {
      case Shape::xhtml:
        open(FrameKind::div, nullptr, name, index, def->is_array(), line);
        if (const char* wrong = sink_.start(name, ns, attribute_count, attributes, true)) {
          return fail(line, wrong, location());
        }
        div_depth_ = 1;
        return true;
      case Shape::resource:
        open(FrameKind::wrapper, nullptr, name, index, def->is_array(), line);
        if (attribute_count > 0) {
          return fail(line, "<" + std::string(name) + "> takes no attributes, only a resource", location());
        }
        return true;
      case Shape::complex:
        open(FrameKind::complex, element->type, name, index, def->is_array(), line);
        return attributes_of(*element->type, attribute_count, attributes, line);
      case Shape::primitive:
        open(FrameKind::primitive, element->type, name, index, def->is_array(), line);
        return primitive_attributes(*element->type, attribute_count, attributes, line);
    }
    return true;
  }

  bool primitive_attributes(const TypeDef& type, int attribute_count, const xmlChar** attributes, int line) {
    Child& slot = children_.back();
    for (int k = 0; k < attribute_count; ++k) {
      const xmlChar* const* attribute = attributes + 5 * k;
      const std::string_view ns = view(attribute[2]);
      const std::string_view name = view(attribute[0]);
      if (ns == kXsiNamespace) continue;
      if (ns.empty() && name == "value") {
        std::string text = attribute_text(attribute);
        if (text.empty()) return fail(line, "attribute 'value' is empty", location());
        if (!json_value(type, std::move(text), slot.value, line)) return false;
      } else if (ns.empty() && name == "id") {
        std::string id = attribute_text(attribute);
        if (id.empty()) return fail(line, "attribute 'id' is empty", location());
        slot.node.members().emplace_back("id", Node::string(std::move(id)));
      } else {
        return fail(line, "unknown attribute '" + std::string(name) + "' on <" + std::string(slot.name) + ">",
                    location());
      }
    }
    return true;
  }

  bool json_value(const TypeDef& type, std::string&& text, Node& out, int line) {
    switch (Model::json_primitive(type.name)) {
      case JsonPrimitive::boolean:
        if (text != "true" && text != "false") {
          return fail(line, "value is not a valid boolean (true or false)", location());
        }
        out = Node::boolean(text == "true");
        return true;
      case JsonPrimitive::number:
        if (!is_json_number(text)) return fail(line, "value is not a valid " + type.name, location());
        out = Node::number(std::move(text));
        return true;
      case JsonPrimitive::string:
        out = Node::string(std::move(text));
        return true;
    }
    return true;
  }

  // Appends the members of a resource or complex element from its children, in model order.
  bool build_object(const Frame& frame, Node& out) {
    const std::size_t first = frame.slot + 1;
    const std::size_t end = children_.size();
    const auto begin = children_.begin() + static_cast<std::ptrdiff_t>(first);
    if (!std::is_sorted(begin, children_.end(), child_less))
      std::stable_sort(begin, children_.end(), child_less);
    out.members().reserve(out.members().size() + (end - first));
    for (std::size_t i = first; i < end;) {
      Child& child = children_[i];
      std::size_t j = i + 1;
      while (j < end && children_[j].index == child.index && children_[j].attribute == child.attribute &&
             children_[j].name == child.name) {
        ++j;
      }
      const ElementDef& def = frame.type->elements[child.index];
      const bool after_same = i > first && !child.attribute && children_[i - 1].index == child.index;
      if ((j - i > 1 || after_same) && !def.is_array()) {
        const Child& again = children_[after_same ? i : i + 1];
        return fail(
            again.line,
            "<" + std::string(again.name) + "> appears more than once but " + def.path + " does not repeat",
            location(again.name));
      }
      if (child.shape == Shape::primitive && !child.attribute) {
        primitive_members(i, j, def.is_array(), out);
      } else if (child.attribute || !def.is_array()) {
        out.members().emplace_back(std::string(child.name), std::move(child.node));
      } else {
        Node items = Node::array();
        items.items().reserve(j - i);
        for (std::size_t k = i; k < j; ++k) items.push(std::move(children_[k].node));
        out.members().emplace_back(std::string(child.name), std::move(items));
      }
      i = j;
    }
    return true;
  }

  // `name` and `_name` for the primitive children_[i, j): values and id/extension objects, with null
  // placeholders in arrays; either is left out when it would hold nothing.
  void primitive_members(std::size_t i, std::size_t j, bool array, Node& out) {
    const std::string name(children_[i].name);
    if (!array) {
      Child& child = children_[i];
      if (!child.value.is_null()) out.members().emplace_back(name, std::move(child.value));
      if (!child.node.members().empty()) out.members().emplace_back("_" + name, std::move(child.node));
      return;
    }
    bool any_value = false;
    bool any_extra = false;
    for (std::size_t k = i; k < j; ++k) {
      any_value = any_value || !children_[k].value.is_null();
      any_extra = any_extra || !children_[k].node.members().empty();
    }
    if (any_value) {
      Node values = Node::array();
      values.items().reserve(j - i);
      for (std::size_t k = i; k < j; ++k) values.push(std::move(children_[k].value));
      out.members().emplace_back(name, std::move(values));
    }
    if (any_extra) {
      Node extras = Node::array();
      extras.items().reserve(j - i);
      for (std::size_t k = i; k < j; ++k) {
        Node& extra = children_[k].node;
        extras.push(extra.members().empty() ? Node::null() : std::move(extra));
      }
      out.members().emplace_back("_" + name, std::move(extras));
    }
  }

  const Model& model_;
  const TypeDef* extension_;
  std::vector<Frame> frames_;
  std::vector<Child> children_;
  std::string div_text_;
  XhtmlSink sink_;
  std::size_t div_depth_ = 0;
  Node result_;
  std::optional<Error> error_;
};

// Serializes a narrative div string, parsed with the hardened parser, into an XML document being written.
class DivWriter {
 public:
  explicit DivWriter(std::string& out) : sink_(out) {}

  bool start(xmlParserCtxt*, std::string_view name, std::string_view ns, int attribute_count,
             const xmlChar** attributes) {
    if (depth_ == 0 && (name != "div" || ns != kXhtmlNamespace)) {
      return fail("the narrative must be a <div> element in the XHTML namespace");
    }
    if (const char* wrong = sink_.start(name, ns, attribute_count, attributes, depth_ == 0))
      return fail(wrong);
    ++depth_;
    return true;
  }

  bool end(xmlParserCtxt*, std::string_view name) {
    sink_.end(name);
    --depth_;
    return true;
  }

  bool text(xmlParserCtxt*, std::string_view text) {
    sink_.text(text);
    return true;
  }

  Error take_error() { return std::move(*error_); }

 private:
  bool fail(std::string diagnostics) {
    error_ = Error::make(ErrorCode::unprocessable, std::move(diagnostics));
    return false;
  }

  XhtmlSink sink_;
  std::size_t depth_ = 0;
  std::optional<Error> error_;
};

// The parser's events for an XmlMarkupVisitor. A visitor that stops listening is not an error (it knows
// why), so the reader itself never refuses an event.
class MarkupReader {
 public:
  explicit MarkupReader(XmlMarkupVisitor& visitor) : visitor_(visitor) {}

  bool start(xmlParserCtxt*, std::string_view name, std::string_view ns, int attribute_count,
             const xmlChar** attributes) {
    if (!listening_) return true;
    const auto count = static_cast<std::size_t>(attribute_count);
    attributes_.resize(count);
    if (scratch_.size() < count) scratch_.resize(count);
    for (std::size_t k = 0; k < count; ++k) {
      const xmlChar* const* attribute = attributes + 5 * k;
      attributes_[k] =
          XmlAttribute{view(attribute[2]), view(attribute[0]), attribute_value(attribute, scratch_[k])};
    }
    listening_ = visitor_.element(ns, name, attributes_);
    return true;
  }

  bool end(xmlParserCtxt*, std::string_view) { return true; }

  bool text(xmlParserCtxt*, std::string_view text) {
    if (listening_) listening_ = visitor_.text(text);
    return true;
  }

  Error take_error() {
    assert(false && "MarkupReader refuses no event");
    return Error::make(ErrorCode::internal, "the XML markup reader failed");
  }

 private:
  XmlMarkupVisitor& visitor_;
  bool listening_ = true;
  std::vector<XmlAttribute> attributes_;
  std::vector<std::string> scratch_;  // decoded attribute values, one per attribute
};

// Records where each element of a FHIR XML document starts, under its FHIRPath-style location with an
// index on every step (Bundle.entry[0].resource.subject[0]); a resource inside an element (entry.resource,
// contained, parameter.resource) adds no step of its own, as in the JSON tree. The narrative's XHTML is
// not descended into.
class PositionRecorder {
 public:
  bool start(xmlParserCtxt* ctxt, std::string_view name, std::string_view ns, int, const xmlChar**) {
    const bool xhtml = ns == kXhtmlNamespace || (!frames_.empty() && frames_.back().skip);
    Frame frame;
    frame.skip = xhtml;
    if (!xhtml) {
      if (frames_.empty()) {
        frame.path.assign(name);
      } else {
        Frame& parent = frames_.back();
        const bool resource = !name.empty() && name.front() >= 'A' && name.front() <= 'Z';
        if (resource) {
          frame.path = parent.path;  // the resource in entry.resource, contained, parameter.resource
        } else {
          const std::size_t index = parent.children[std::string(name)]++;
          frame.path = parent.path + "." + std::string(name) + "[" + std::to_string(index) + "]";
        }
      }
      // A resource shares its wrapper's location and takes it over.
      positions.insert_or_assign(frame.path,
                                 std::pair{xmlSAX2GetLineNumber(ctxt), xmlSAX2GetColumnNumber(ctxt)});
    }
    frames_.push_back(std::move(frame));
    return true;
  }
  bool end(xmlParserCtxt*, std::string_view) {
    if (!frames_.empty()) frames_.pop_back();
    return true;
  }
  bool text(xmlParserCtxt*, std::string_view) { return true; }
  Error take_error() { return Error::make(ErrorCode::internal, "the XML position recorder failed"); }

  std::unordered_map<std::string, std::pair<int, int>> positions;

 private:
  struct Frame {
    std::string path;
    std::unordered_map<std::string, std::size_t> children;  // how many of each name so far
    bool skip = false;
  };
  std::vector<Frame> frames_;
};

// An issue location with an index on every step after the first: name -> name[0].
std::string indexed_location(std::string_view expression) {
  std::string out;
  std::size_t start = 0;
  bool first = true;
  while (start <= expression.size()) {
    const std::size_t dot = expression.find('.', start);
    const std::string_view step =
        expression.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (!first) out.push_back('.');
    out.append(step);
    if (!first && !step.empty() && step.back() != ']') out.append("[0]");
    first = false;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return out;
}

// JSON tree -> XML text.
class XmlWriter {
 public:
  XmlWriter(const Model& model, bool pretty)
      : model_(model), pretty_(pretty), extension_(model.type("Extension")) {
    entries_.reserve(64);
  }

  Result<std::string> write(const Node& resource, bool declaration) {
    if (extension_ == nullptr) return make_error(ErrorCode::internal, "the type model has no Extension type");
    if (declaration) out_ += kDeclaration;
    const std::string_view type =
        resource.is_object() ? resource.string_at("resourceType") : std::string_view();
    const Location at{nullptr, type.empty() ? std::string_view("Resource") : type};
    if (!this->resource(resource, at, 0, true)) return std::move(*error_);
    if (pretty_) out_ += '\n';
    return std::move(out_);
  }

 private:
  struct Entry {
    std::uint32_t index;
    bool attribute;
    std::string_view name;  // the JSON member name without '_'
    std::string_view choice;
    const Node* value;
    const Node* extra;  // the `_name` member
  };

  static bool entry_less(const Entry& a, const Entry& b) {
    if (a.attribute != b.attribute) return a.attribute;
    return a.index < b.index;
  }

  bool fail(std::string diagnostics, const Location* at, ErrorCode code = ErrorCode::unprocessable) {
    error_ = make_error(code, std::move(diagnostics), at);
    return false;
  }

  void indent(std::size_t level) {
    if (!pretty_) return;
    if (!out_.empty()) out_ += '\n';
    out_.append(level * 2, ' ');
  }

  bool escaped(std::string_view text, const Location& at) {
    if (append_escaped(out_, text, true)) return true;
    return fail("value has a character that XML cannot represent (a control character or invalid UTF-8)",
                &at);
  }

  bool attribute(std::string_view name, const Node& value, const Location& at) {
    if (value.is_object() || value.is_array() || value.is_null()) {
      return fail("'" + std::string(name) + "' must be a primitive value", &at);
    }
    out_ += ' ';
    out_ += name;
    out_ += "=\"";
    if (!escaped(value.text(), at)) return false;
    out_ += '"';
    return true;
  }

  bool resource(const Node& resource, const Location& at, std::size_t level, bool root) {
    if (!resource.is_object()) return fail("a resource must be a JSON object", &at);
    const std::string_view type = resource.string_at("resourceType");
    if (!model_.is_resource(type)) {
      const Location here{&at, "resourceType"};
      return fail(type.empty() ? std::string("resource has no resourceType")
                               : "'" + std::string(type) + "' is not a FHIR resource type",
                  &here);
    }
    return complex(*model_.type(type), resource, type, at, level, root, true);
  }

  bool complex(const TypeDef& type, const Node& object, std::string_view xml_name, const Location& at,
               std::size_t level, bool root, bool is_resource) {
    if (!object.is_object()) return fail("'" + std::string(xml_name) + "' must be a JSON object", &at);
    const std::size_t base = entries_.size();
    const bool ok = gather(type, object, at, is_resource) && element(type, base, xml_name, at, level, root);
    entries_.resize(base);
    return ok;
  }

  bool gather(const TypeDef& type, const Node& object, const Location& at, bool is_resource) {
    const std::size_t base = entries_.size();
    for (const auto& [key, value] : object.members()) {
      if (is_resource && key == "resourceType") continue;
      const bool extra = key.size() > 1 && key.front() == '_';
      const std::string_view name = extra ? std::string_view(key).substr(1) : std::string_view(key);
      std::string_view choice;
      const ElementDef* def = type.resolve(name, &choice);
      if (def == nullptr) {
        const Location here{&at, key};
        return fail("unknown member '" + key + "'", &here);
      }
      const auto found = std::find_if(entries_.begin() + static_cast<std::ptrdiff_t>(base), entries_.end(),
                                      [&](const Entry& e) { return e.name == name; });
      Entry& entry = found != entries_.end()
                         ? *found
                         : entries_.emplace_back(Entry{static_cast<std::uint32_t>(def - type.elements.data()),
                                                       def->xml_attribute, name, choice, nullptr, nullptr});
      (extra ? entry.extra : entry.value) = &value;
    }
    const auto begin = entries_.begin() + static_cast<std::ptrdiff_t>(base);
    if (!std::is_sorted(begin, entries_.end(), entry_less))
      std::stable_sort(begin, entries_.end(), entry_less);
    for (std::size_t k = base + 1; k < entries_.size(); ++k) {
      if (entries_[k].index == entries_[k - 1].index) {
        const Location here{&at, entries_[k].name};
        return fail("more than one value for " + type.elements[entries_[k].index].path, &here);
      }
    }
    return true;
  }

  bool element(const TypeDef& type, std::size_t base, std::string_view xml_name, const Location& at,
               std::size_t level, bool root) {
    const std::size_t end = entries_.size();
    indent(level);
    out_ += '<';
    out_ += xml_name;
    if (root) {
      out_ += " xmlns=\"";
      out_ += kFhirNamespace;
      out_ += '"';
    }
    std::size_t k = base;
    for (; k < end && entries_[k].attribute; ++k) {
      const Entry& entry = entries_[k];
      if (entry.extra != nullptr) {
        const std::string member = "_" + std::string(entry.name);
        const Location extra_here{&at, member};
        return fail("'" + member + "' cannot be represented in XML (" + std::string(entry.name) +
                        " is an XML attribute)",
                    &extra_here);
      }
      const Location here{&at, entry.name};
      if (!attribute(entry.name, *entry.value, here)) return false;
    }
    if (k == end) {
      out_ += "/>";
      return true;
    }
    out_ += '>';
    for (; k < end; ++k) {
      const Entry entry = entries_[k];
      if (!member(type.elements[entry.index], entry, at, level + 1)) return false;
    }
    indent(level);
    out_ += "</";
    out_ += xml_name;
    out_ += '>';
    return true;
  }

  // The items of a member: the array's items for a repeating element, else the value itself.
  struct Items {
    const Node* first = nullptr;
    std::size_t size = 0;
    const Node& operator[](std::size_t k) const { return first[k]; }
  };

  bool items_of(const ElementDef& def, const Node* value, std::string_view key, const Location& at,
                Items& items) {
    if (value == nullptr) return true;
    if (def.is_array()) {
      if (!value->is_array()) return fail("'" + std::string(key) + "' must be a JSON array", &at);
      items = Items{value->items().data(), value->items().size()};
    } else {
      if (value->is_array()) return fail("'" + std::string(key) + "' must not be a JSON array", &at);
      items = Items{value, 1};
    }
    return true;
  }

  bool member(const ElementDef& def, const Entry& entry, const Location& parent, std::size_t level) {
    const Location at{&parent, entry.name};
    const std::optional<ElementType> type = element_type(model_, def, entry.choice);
    if (!type) return fail(model_gap(def), &at, ErrorCode::internal);
    if (type->shape != Shape::primitive && entry.extra != nullptr) {
      const std::string member = "_" + std::string(entry.name);
      const Location here{&parent, member};
      return fail("unknown member '" + member + "'", &here);
    }
    const bool array = def.is_array();
    Items values;
    if (!items_of(def, entry.value, entry.name, at, values)) return false;
    switch (type->shape) {
      case Shape::xhtml:
        return div(values[0], at, level);
      case Shape::resource:
      case Shape::complex:
        for (std::size_t k = 0; k < values.size; ++k) {
          const Location here{&parent, entry.name, array ? k : kNoIndex};
          if (type->shape == Shape::complex) {
            if (!complex(*type->type, values[k], entry.name, here, level, false, false)) return false;
            continue;
          }
          indent(level);
          out_ += '<';
          out_ += entry.name;
          out_ += '>';
          if (!resource(values[k], here, level + 1, false)) return false;
          indent(level);
          out_ += "</";
          out_ += entry.name;
          out_ += '>';
        }
        return true;
      case Shape::primitive:
        break;
    }
    const std::string extra_name = "_" + std::string(entry.name);
    const Location extra_at{&parent, extra_name};
    Items extras;
    if (!items_of(def, entry.extra, extra_name, extra_at, extras)) return false;
    if (values.size != 0 && extras.size != 0 && values.size != extras.size) {
      return fail(
          "arrays " + std::string(entry.name) + " and " + extra_name + " must have the same number of items",
          &extra_at);
    }
    const std::size_t count = std::max(values.size, extras.size);
    for (std::size_t k = 0; k < count; ++k) {
      const Node* value = k < values.size && !values[k].is_null() ? &values[k] : nullptr;
      const Node* extra = k < extras.size && !extras[k].is_null() ? &extras[k] : nullptr;
      const Location here{&parent, entry.name, array ? k : kNoIndex};
      const Location extra_here{&parent, extra_name, array ? k : kNoIndex};
      if (value == nullptr && extra == nullptr) return fail("null without a value or extension", &here);
      if (!primitive(entry.name, value, extra, here, extra_here, level)) return false;
    }
    return true;
  }

  bool primitive(std::string_view name, const Node* value, const Node* extra, const Location& at,
                 const Location& extra_at, std::size_t level) {
    const Node* extensions = nullptr;
    indent(level);
    out_ += '<';
    out_ += name;
    if (extra != nullptr) {
      if (!extra->is_object()) return fail("'_" + std::string(name) + "' must be a JSON object", &extra_at);
      for (const auto& [key, item] : extra->members()) {
        const Location here{&extra_at, key};
        if (key == "id") {
          if (!attribute("id", item, here)) return false;
        } else if (key == "extension") {
          if (!item.is_array()) return fail("'extension' must be a JSON array", &here);
          extensions = &item;
        } else {
          return fail("unknown member '" + key + "'", &here);
        }
      }
    }
    if (value != nullptr && !attribute("value", *value, at)) return false;
    if (extensions == nullptr || extensions->items().empty()) {
      out_ += "/>";
      return true;
    }
    out_ += '>';
    for (std::size_t k = 0; k < extensions->items().size(); ++k) {
      const Location here{&extra_at, "extension", k};
      if (!complex(*extension_, extensions->items()[k], "extension", here, level + 1, false, false))
        return false;
    }
    indent(level);
    out_ += "</";
    out_ += name;
    out_ += '>';
    return true;
  }

  bool div(const Node& value, const Location& at, std::size_t level) {
    if (!value.is_string()) return fail("the narrative div must be a JSON string", &at);
    indent(level);
    DivWriter writer(out_);
    Status status = sax_parse(value.text(), XmlLimits{}, writer);
    if (status) return true;
    Error e = std::move(status).error();
    Issue& issue = e.issues.front();
    if (e.code == ErrorCode::invalid_input)
      issue.diagnostics = "the narrative div is not XHTML: " + issue.diagnostics;
    issue.expression = path_text(&at);
    e.code = ErrorCode::unprocessable;
    e.internal = "xml: " + issue.diagnostics + " at " + issue.expression;
    error_ = std::move(e);
    return false;
  }

  const Model& model_;
  bool pretty_;
  const TypeDef* extension_;
  std::string out_;
  std::vector<Entry> entries_;
  std::optional<Error> error_;
};

}  // namespace

Result<Node> xml_to_json(const Model& model, std::string_view xml, const XmlLimits& limits) {
  XmlReader reader(model);
  return reader.read(xml, limits);
}

Result<std::string> json_to_xml(const Model& model, const Node& resource, bool pretty, bool declaration) {
  XmlWriter writer(model, pretty);
  return writer.write(resource, declaration);
}

Status read_xml_markup(std::string_view xml, XmlMarkupVisitor& visitor, const XmlLimits& limits) {
  MarkupReader reader(visitor);
  return sax_parse(xml, limits, reader);
}

void locate_xml_issues(std::string_view xml, std::vector<Issue>& issues) {
  if (std::none_of(issues.begin(), issues.end(),
                   [](const Issue& i) { return i.line == 0 && !i.expression.empty(); }))
    return;
  PositionRecorder recorder;
  if (!sax_parse(xml, XmlLimits{}, recorder)) return;
  for (Issue& issue : issues) {
    if (issue.line != 0 || issue.expression.empty()) continue;
    std::string at = indexed_location(issue.expression);
    while (!at.empty()) {
      if (const auto it = recorder.positions.find(at); it != recorder.positions.end()) {
        issue.line = it->second.first;
        issue.column = it->second.second;
        break;
      }
      const std::size_t dot = at.rfind('.');
      if (dot == std::string::npos) break;
      at.resize(dot);
    }
  }
}

}  // namespace fhirgate::fhir
