#pragma once
// Metrics for /metrics: counters, gauges and histograms, rendered in the Prometheus text exposition format
// 0.0.4.
//
// A family (name, help, type, label names) is declared once, at set-up; the label names are fixed then.
// A series is one combination of label values within a family. It is made on first use and kept for the
// life of the registry -- there is no removal -- so label values must come from small, fixed sets
// (interaction, resource type, status code), never from ids. Values computed when scraped, or whose label
// values come and go (queue depth per destination, open connections), come from collectors instead: a
// collector runs at each render() and reports samples through a Sink for counter or gauge families
// declared up front as usual. If a collector and a direct update give the same label values, the
// collector's sample is shown.
//
// Threads: every member is safe to call from any thread. Finding a series takes a shared lock on its
// family's table (exclusive only the first time a combination is seen); updating a series is lock-free.
// A hot path may keep the reference with() returns: it stays valid as long as the Metrics does. A whole
// counter increment is one atomic add; a gauge change, a fractional counter add and a histogram
// observation use compare-and-swap on a double. render() reads without stopping writers: a histogram's
// _sum may miss an observation in flight that its buckets already count; its _count is always the +Inf
// bucket. Collectors run on the thread that calls render(); they must be quick (read an atomic or a cached
// value, never block on I/O) and must not throw.
//
// Errors: misuse is a programming error and throws std::logic_error where it happens: a name that is not a
// valid Prometheus metric or label name, the same name declared again with another type, label names or
// buckets, buckets not strictly increasing and finite, the wrong number of label values, a counter
// increment that is negative or NaN, a sample for another registry's family.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace fhirgate::gateway {

class Metrics;

// Label values for one update, in the order of the family's label names. Borrowed for the duration of
// the call: pass it as a braced list (`{"read", "Patient", "200"}`, `{}` for none) or a span.
class LabelValues {
 public:
  LabelValues() = default;
  LabelValues(std::initializer_list<std::string_view> values) : values_(values.begin(), values.size()) {}
  LabelValues(std::span<const std::string_view> values) : values_(values) {}
  std::span<const std::string_view> values() const { return values_; }
  std::size_t size() const { return values_.size(); }

 private:
  std::span<const std::string_view> values_;
};

enum class MetricType { counter, gauge, histogram };

// One counter series. 64-byte aligned so that series updated by different threads do not share a cache
// line.
class alignas(64) Counter {
 public:
  void inc(std::uint64_t n = 1) { whole_.fetch_add(n, std::memory_order_relaxed); }
  // A whole amount goes to the integer total; anything else to a double. Throws for negative or NaN.
  void add(double amount);
  double value() const;

 private:
  friend class CounterFamily;
  std::atomic<std::uint64_t> whole_{0};
  std::atomic<double> fractional_{0};
};

// One gauge series.
class alignas(64) Gauge {
 public:
  void set(double value) { value_.store(value, std::memory_order_relaxed); }
  void inc(double amount = 1) { value_.fetch_add(amount, std::memory_order_relaxed); }
  void dec(double amount = 1) { value_.fetch_sub(amount, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// One histogram series: a count per bucket (not cumulative; the last is +Inf) and the sum. An observation
// goes to the first bucket whose upper bound is >= it; NaN goes to +Inf.
class Histogram {
 public:
  explicit Histogram(std::span<const double> bounds);
  void observe(double value);
  std::uint64_t count() const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  friend class HistogramFamily;
  std::span<const double> bounds_;  // the family's
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;
  std::atomic<double> sum_{0};
};

namespace metrics_detail {

// A collector's sample.
struct Sample {
  std::vector<std::string> values;
  double value = 0;
};

// A family's series by label values: shared lock to find, exclusive to add. Series never move or go.
template <class Series>
class SeriesTable {
 public:
  Series* find(LabelValues labels) const;
  // Adds `series` unless another thread added the same label values first; returns the one kept.
  Series& insert(LabelValues labels, std::unique_ptr<Series> series);
  // Label values and series, sorted by label values.
  std::vector<std::pair<const std::vector<std::string>*, const Series*>> sorted() const;

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::span<const std::string_view> values) const;
    std::size_t operator()(const std::vector<std::string>& values) const;
  };
  struct Equal {
    using is_transparent = void;
    bool operator()(const std::vector<std::string>& a, const std::vector<std::string>& b) const;
    bool operator()(std::span<const std::string_view> a, const std::vector<std::string>& b) const;
    bool operator()(const std::vector<std::string>& a, std::span<const std::string_view> b) const;
  };
  mutable std::shared_mutex mutex_;
  std::unordered_map<std::vector<std::string>, std::unique_ptr<Series>, Hash, Equal> series_;
};

}  // namespace metrics_detail

// What all families share. Families are made only by Metrics and live as long as it does.
class Family {
 public:
  Family(const Family&) = delete;
  Family& operator=(const Family&) = delete;
  virtual ~Family() = default;

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  MetricType type() const { return type_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

 protected:
  Family(const Metrics& owner, std::string name, std::string help, MetricType type,
         std::vector<std::string> label_names);
  // Throws unless there is one value per label name.
  void check(LabelValues labels) const;

 private:
  friend class Metrics;
  // Appends the series lines (not HELP and TYPE); `collected` are the collectors' samples for this family.
  virtual void render(std::string& out, std::vector<metrics_detail::Sample>& collected) const = 0;

  const Metrics& owner_;
  std::string name_;
  std::string help_;
  MetricType type_;
  std::vector<std::string> label_names_;
};

class CounterFamily final : public Family {
 public:
  Counter& with(LabelValues labels = {});
  void inc(LabelValues labels, std::uint64_t n = 1) { with(labels).inc(n); }
  void add(LabelValues labels, double amount) { with(labels).add(amount); }

 private:
  friend class Metrics;
  CounterFamily(const Metrics& owner, std::string name, std::string help,
                std::vector<std::string> label_names);
  void render(std::string& out, std::vector<metrics_detail::Sample>& collected) const override;
  metrics_detail::SeriesTable<Counter> series_;
};

class GaugeFamily final : public Family {
 public:
  Gauge& with(LabelValues labels = {});
  void set(LabelValues labels, double value) { with(labels).set(value); }
  void inc(LabelValues labels, double amount = 1) { with(labels).inc(amount); }
  void dec(LabelValues labels, double amount = 1) { with(labels).dec(amount); }

 private:
  friend class Metrics;
  GaugeFamily(const Metrics& owner, std::string name, std::string help, std::vector<std::string> label_names);
  void render(std::string& out, std::vector<metrics_detail::Sample>& collected) const override;
  metrics_detail::SeriesTable<Gauge> series_;
};

class HistogramFamily final : public Family {
 public:
  Histogram& with(LabelValues labels = {});
  void observe(LabelValues labels, double value) { with(labels).observe(value); }
  // Upper bounds of the buckets, without the implied +Inf.
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  friend class Metrics;
  HistogramFamily(const Metrics& owner, std::string name, std::string help,
                  std::vector<std::string> label_names, std::vector<double> bounds);
  void render(std::string& out, std::vector<metrics_detail::Sample>& collected) const override;
  std::vector<double> bounds_;
  metrics_detail::SeriesTable<Histogram> series_;
};

class Metrics {
 public:
  // Where a collector reports, during one render(). A family must belong to this registry.
  class Sink {
   public:
    void sample(const CounterFamily& family, LabelValues labels, double value);
    void sample(const GaugeFamily& family, LabelValues labels, double value);

   private:
    friend class Metrics;
    explicit Sink(const Metrics& owner);
    void add(const Family& family, LabelValues labels, double value);
    const Metrics& owner_;
    std::unordered_map<const Family*, std::vector<metrics_detail::Sample>> samples_;
  };
  using Collector = std::function<void(Sink&)>;

  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Declares a family, or returns the one already declared with this name when type, label names (and
  // buckets) are the same; the first declaration's help is kept. Rendered in order of first declaration.
  CounterFamily& counter(std::string_view name, std::string_view help,
                         std::vector<std::string> label_names = {});
  GaugeFamily& gauge(std::string_view name, std::string_view help, std::vector<std::string> label_names = {});
  // `bounds`: the buckets' upper bounds, strictly increasing and finite; +Inf is implied. "le" is not a
  // label name a histogram may have.
  HistogramFamily& histogram(std::string_view name, std::string_view help,
                             std::vector<std::string> label_names, std::vector<double> bounds);

  void add_collector(Collector collector);

  // The text exposition (Content-Type: text/plain; version=0.0.4): per family # HELP, # TYPE and its
  // series sorted by label values. Runs the collectors.
  std::string render() const;

  // For collectors. Resident set size from /proc/self/statm; NaN when it cannot be read.
  static double process_resident_bytes();
  // Open file descriptors, counted in /proc/self/fd; NaN when it cannot be read.
  static double process_open_fds();

 private:
  template <class F, class... Args>
  F& declare(std::string_view name, std::string_view help, MetricType type,
             std::vector<std::string> label_names, Args&&... args);

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Family>> families_;
  std::vector<Collector> collectors_;
};

}  // namespace fhirgate::gateway
