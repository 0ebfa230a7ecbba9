#include "gateway/ops/metrics.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <system_error>

namespace fhirgate::gateway {
namespace {

using metrics_detail::Sample;

bool is_metric_name(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

// A label name: no colon, and names starting "__" are Prometheus's own.
bool is_label_name(std::string_view name) {
  return is_metric_name(name) && name.find(':') == std::string_view::npos && !name.starts_with("__");
}

void check_declaration(std::string_view name, MetricType type, const std::vector<std::string>& label_names) {
  if (!is_metric_name(name))
    throw std::logic_error("metrics: invalid metric name '" + std::string(name) + "'");
  for (std::size_t i = 0; i < label_names.size(); ++i) {
    const std::string& label = label_names[i];
    if (!is_label_name(label) || (type == MetricType::histogram && label == "le"))
      throw std::logic_error("metrics: invalid label name '" + label + "' for " + std::string(name));
    if (std::find(label_names.begin(), label_names.begin() + i, label) != label_names.begin() + i)
      throw std::logic_error("metrics: label name '" + label + "' twice for " + std::string(name));
  }
}

void check_bounds(std::string_view name, const std::vector<double>& bounds) {
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || (i > 0 && !(bounds[i - 1] < bounds[i])))
      throw std::logic_error("metrics: buckets of " + std::string(name) +
                             " not finite and strictly increasing");
  }
}

const char* type_name(MetricType type) {
  switch (type) {
    case MetricType::counter:
      return "counter";
    case MetricType::gauge:
      return "gauge";
    case MetricType::histogram:
      return "histogram";
  }
  return "untyped";
}

// Whole numbers print as integers (42, not 4.2e+01); others in the shortest form that reads back exactly.
void append_number(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "NaN";
    return;
  }
  if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buffer[32];
  std::to_chars_result result;
  if (value == std::trunc(value) && std::fabs(value) < 0x1p63) {
    result = std::to_chars(buffer, buffer + sizeof buffer, static_cast<std::int64_t>(value));
  } else {
    result = std::to_chars(buffer, buffer + sizeof buffer, value);
  }
  out.append(buffer, result.ptr);
}

void append_integer(std::string& out, std::uint64_t value) {
  char buffer[24];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  out.append(buffer, result.ptr);
}

void append_help(std::string& out, std::string_view help) {
  for (const char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

void append_label_value(std::string& out, std::string_view value) {
  for (const char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

// name{a="x",b="y"} -- with le last for a bucket; just the name when there are no labels.
void append_series_name(std::string& out, std::string_view name, std::string_view suffix,
                        const std::vector<std::string>& label_names, const std::vector<std::string>& values,
                        const std::string* le = nullptr) {
  out += name;
  out += suffix;
  if (label_names.empty() && !le) return;
  out += '{';
  for (std::size_t i = 0; i < label_names.size(); ++i) {
    if (i > 0) out += ',';
    out += label_names[i];
    out += "=\"";
    append_label_value(out, values[i]);
    out += '"';
  }
  if (le) {
    if (!label_names.empty()) out += ',';
    out += "le=\"";
    out += *le;
    out += '"';
  }
  out += '}';
}

struct Row {
  const std::vector<std::string>* values;
  std::string number;
};

// `rows`: the stored series, sorted, then the collected samples. A later row replaces an earlier one with
// the same label values.
void append_rows(std::string& out, const Family& family, std::vector<Row>& rows) {
  std::stable_sort(rows.begin(), rows.end(),
                   [](const Row& a, const Row& b) { return *a.values < *b.values; });
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (i + 1 < rows.size() && *rows[i].values == *rows[i + 1].values) continue;
    append_series_name(out, family.name(), "", family.label_names(), *rows[i].values);
    out += ' ';
    out += rows[i].number;
    out += '\n';
  }
}

void add_collected(std::vector<Row>& rows, const std::vector<Sample>& collected) {
  for (const Sample& sample : collected) {
    Row row{&sample.values, {}};
    append_number(row.number, sample.value);
    rows.push_back(std::move(row));
  }
}

}  // namespace

// Series.

void Counter::add(double amount) {
  if (!(amount >= 0)) throw std::logic_error("metrics: counter increment negative or NaN");
  if (amount < 0x1p64 && amount == std::trunc(amount)) {
    whole_.fetch_add(static_cast<std::uint64_t>(amount), std::memory_order_relaxed);
  } else {
    fractional_.fetch_add(amount, std::memory_order_relaxed);
  }
}

double Counter::value() const {
  return static_cast<double>(whole_.load(std::memory_order_relaxed)) +
         fractional_.load(std::memory_order_relaxed);
}

Histogram::Histogram(std::span<const double> bounds)
    : bounds_(bounds), buckets_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds.size() + 1)) {}

void Histogram::observe(double value) {
  const std::size_t bucket =
      std::isnan(value) ? bounds_.size()
                        : static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) -
                                                   bounds_.begin());
  buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

std::uint64_t Histogram::count() const {
  std::uint64_t count = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) count += buckets_[i].load(std::memory_order_relaxed);
  return count;
}

// The series table.

namespace metrics_detail {

template <class Series>
std::size_t SeriesTable<Series>::Hash::operator()(std::span<const std::string_view> values) const {
  std::size_t hash = values.size();
  for (const std::string_view value : values) {
    hash ^= std::hash<std::string_view>{}(value) + 0x9e3779b97f4a7c15ULL + (hash << 6) + (hash >> 2);
  }
  return hash;
}

template <class Series>
std::size_t SeriesTable<Series>::Hash::operator()(const std::vector<std::string>& values) const {
  std::size_t hash = values.size();
  for (const std::string_view value : values) {
    hash ^= std::hash<std::string_view>{}(value) + 0x9e3779b97f4a7c15ULL + (hash << 6) + (hash >> 2);
  }
  return hash;
}

template <class Series>
bool SeriesTable<Series>::Equal::operator()(const std::vector<std::string>& a,
                                            const std::vector<std::string>& b) const {
  return a == b;
}

template <class Series>
bool SeriesTable<Series>::Equal::operator()(std::span<const std::string_view> a,
                                            const std::vector<std::string>& b) const {
  return std::equal(a.begin(), a.end(), b.begin(), b.end());
}

template <class Series>
bool SeriesTable<Series>::Equal::operator()(const std::vector<std::string>& a,
                                            std::span<const std::string_view> b) const {
  return std::equal(a.begin(), a.end(), b.begin(), b.end());
}

template <class Series>
Series* SeriesTable<Series>::find(LabelValues labels) const {
  std::shared_lock lock(mutex_);
  const auto it = series_.find(labels.values());
  return it == series_.end() ? nullptr : it->second.get();
}

template <class Series>
Series& SeriesTable<Series>::insert(LabelValues labels, std::unique_ptr<Series> series) {
  std::vector<std::string> key(labels.values().begin(), labels.values().end());
  std::unique_lock lock(mutex_);
  const auto [it, added] = series_.try_emplace(std::move(key), std::move(series));
  return *it->second;
}

template <class Series>
std::vector<std::pair<const std::vector<std::string>*, const Series*>> SeriesTable<Series>::sorted() const {
  std::vector<std::pair<const std::vector<std::string>*, const Series*>> out;
  {
    std::shared_lock lock(mutex_);
    out.reserve(series_.size());
    for (const auto& [values, series] : series_) out.emplace_back(&values, series.get());
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return *a.first < *b.first; });
  return out;
}

template class SeriesTable<Counter>;
template class SeriesTable<Gauge>;
template class SeriesTable<Histogram>;

}  // namespace metrics_detail

// Families.

Family::Family(const Metrics& owner, std::string name, std::string help, MetricType type,
               std::vector<std::string> label_names)
    : owner_(owner),
      name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)) {}

void Family::check(LabelValues labels) const {
  if (labels.size() != label_names_.size()) {
    throw std::logic_error("metrics: " + name_ + " takes " + std::to_string(label_names_.size()) +
                           " label values, given " + std::to_string(labels.size()));
  }
}

CounterFamily::CounterFamily(const Metrics& owner, std::string name, std::string help,
                             std::vector<std::string> label_names)
    : Family(owner, std::move(name), std::move(help), MetricType::counter, std::move(label_names)) {}

Counter& CounterFamily::with(LabelValues labels) {
  check(labels);
  if (Counter* found = series_.find(labels)) return *found;
  return series_.insert(labels, std::make_unique<Counter>());
}

void CounterFamily::render(std::string& out, std::vector<Sample>& collected) const {
  std::vector<Row> rows;
  for (const auto& [values, counter] : series_.sorted()) {
    Row row{values, {}};
    const double fractional = counter->fractional_.load(std::memory_order_relaxed);
    if (fractional == 0) {
      append_integer(row.number, counter->whole_.load(std::memory_order_relaxed));
    } else {
      append_number(row.number, counter->value());
    }
    rows.push_back(std::move(row));
  }
  add_collected(rows, collected);
  append_rows(out, *this, rows);
}

GaugeFamily::GaugeFamily(const Metrics& owner, std::string name, std::string help,
                         std::vector<std::string> label_names)
    : Family(owner, std::move(name), std::move(help), MetricType::gauge, std::move(label_names)) {}

Gauge& GaugeFamily::with(LabelValues labels) {
  check(labels);
  if (Gauge* found = series_.find(labels)) return *found;
  return series_.insert(labels, std::make_unique<Gauge>());
}

void GaugeFamily::render(std::string& out, std::vector<Sample>& collected) const {
  std::vector<Row> rows;
  for (const auto& [values, gauge] : series_.sorted()) {
    Row row{values, {}};
    append_number(row.number, gauge->value());
    rows.push_back(std::move(row));
  }
  add_collected(rows, collected);
  append_rows(out, *this, rows);
}

HistogramFamily::HistogramFamily(const Metrics& owner, std::string name, std::string help,
                                 std::vector<std::string> label_names, std::vector<double> bounds)
    : Family(owner, std::move(name), std::move(help), MetricType::histogram, std::move(label_names)),
      bounds_(std::move(bounds)) {}

Histogram& HistogramFamily::with(LabelValues labels) {
  check(labels);
  if (Histogram* found = series_.find(labels)) return *found;
  return series_.insert(labels, std::make_unique<Histogram>(bounds_));
}

void HistogramFamily::render(std::string& out, std::vector<Sample>&) const {
  std::vector<std::string> le;
  for (const double bound : bounds_) append_number(le.emplace_back(), bound);
  le.emplace_back("+Inf");
  for (const auto& [values, histogram] : series_.sorted()) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < le.size(); ++i) {
      cumulative += histogram->buckets_[i].load(std::memory_order_relaxed);
      append_series_name(out, name(), "_bucket", label_names(), *values, &le[i]);
      out += ' ';
      append_integer(out, cumulative);
      out += '\n';
    }
    append_series_name(out, name(), "_sum", label_names(), *values);
    out += ' ';
    append_number(out, histogram->sum());
    out += '\n';
    append_series_name(out, name(), "_count", label_names(), *values);
    out += ' ';
    append_integer(out, cumulative);
    out += '\n';
  }
}

// The registry.

Metrics::Sink::Sink(const Metrics& owner) : owner_(owner) {}

void Metrics::Sink::sample(const CounterFamily& family, LabelValues labels, double value) {
  add(family, labels, value);
}

void Metrics::Sink::sample(const GaugeFamily& family, LabelValues labels, double value) {
  add(family, labels, value);
}

void Metrics::Sink::add(const Family& family, LabelValues labels, double value) {
  if (&family.owner_ != &owner_)
    throw std::logic_error("metrics: " + family.name() + " is another registry's");
  family.check(labels);
  samples_[&family].push_back(Sample{{labels.values().begin(), labels.values().end()}, value});
}

Metrics::Metrics() = default;
Metrics::~Metrics() = default;

template <class F, class... Args>
F& Metrics::declare(std::string_view name, std::string_view help, MetricType type,
                    std::vector<std::string> label_names, Args&&... args) {
  check_declaration(name, type, label_names);
  std::lock_guard lock(mutex_);
  for (const auto& family : families_) {
    if (family->name() != name) continue;
    if (family->type() != type || family->label_names() != label_names) {
      throw std::logic_error("metrics: " + std::string(name) + " declared again with another type or labels");
    }
    return static_cast<F&>(*family);
  }
  families_.push_back(std::unique_ptr<F>(new F(*this, std::string(name), std::string(help),
                                               std::move(label_names), std::forward<Args>(args)...)));
  return static_cast<F&>(*families_.back());
}

CounterFamily& Metrics::counter(std::string_view name, std::string_view help,
                                std::vector<std::string> label_names) {
  return declare<CounterFamily>(name, help, MetricType::counter, std::move(label_names));
}

GaugeFamily& Metrics::gauge(std::string_view name, std::string_view help,
                            std::vector<std::string> label_names) {
  return declare<GaugeFamily>(name, help, MetricType::gauge, std::move(label_names));
}

HistogramFamily& Metrics::histogram(std::string_view name, std::string_view help,
                                    std::vector<std::string> label_names, std::vector<double> bounds) {
  check_bounds(name, bounds);
  HistogramFamily& family =
      declare<HistogramFamily>(name, help, MetricType::histogram, std::move(label_names), bounds);
  if (family.bounds() != bounds) {
    throw std::logic_error("metrics: " + std::string(name) + " declared again with other buckets");
  }
  return family;
}

void Metrics::add_collector(Collector collector) {
  std::lock_guard lock(mutex_);
  collectors_.push_back(std::move(collector));
}

std::string Metrics::render() const {
  std::vector<Collector> collectors;
  {
    std::lock_guard lock(mutex_);
    collectors = collectors_;
  }
  Sink sink(*this);
  for (const Collector& collector : collectors) collector(sink);

  std::vector<const Family*> families;
  {
    std::lock_guard lock(mutex_);
    for (const auto& family : families_) families.push_back(family.get());
  }
  std::string out;
  std::vector<Sample> none;
  for (const Family* family : families) {
    out += "# HELP ";
    out += family->name();
    out += ' ';
    append_help(out, family->help());
    out += "\n# TYPE ";
    out += family->name();
    out += ' ';
    out += type_name(family->type());
    out += '\n';
    const auto collected = sink.samples_.find(family);
    family->render(out, collected == sink.samples_.end() ? none : collected->second);
  }
  return out;
}

double Metrics::process_resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  double size_pages = 0;
  double resident_pages = 0;
  if (!(statm >> size_pages >> resident_pages)) return std::numeric_limits<double>::quiet_NaN();
  return resident_pages * static_cast<double>(sysconf(_SC_PAGESIZE));
}

double Metrics::process_open_fds() {
  std::error_code error;
  std::filesystem::directory_iterator it("/proc/self/fd", error);
  if (error) return std::numeric_limits<double>::quiet_NaN();
  double count = 0;
  for (; it != std::filesystem::directory_iterator(); it.increment(error)) {
    if (error) return std::numeric_limits<double>::quiet_NaN();
    ++count;
  }
  if (error) return std::numeric_limits<double>::quiet_NaN();
  return count - 1;  // the descriptor the listing itself holds open
}

}  // namespace fhirgate::gateway
