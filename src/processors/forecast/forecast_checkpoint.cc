#include "processors/forecast/forecast_checkpoint.h"

#include <fmt/format.h>
#include <zlib.h>

#include <cstring>

#include "log/file.h"

namespace mare::forecast {

namespace {

constexpr char kMagic[8] = {'M', 'A', 'R', 'E', 'F', 'C', 'S', 'T'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderSize = 24;  // magic, version, body length, body crc

uint32_t Crc(std::string_view b) {
  uLong crc = ::crc32(0L, Z_NULL, 0);
  while (!b.empty()) {  // zlib takes uInt lengths
    size_t n = std::min<size_t>(b.size(), 1u << 30);
    crc = ::crc32(crc, reinterpret_cast<const Bytef*>(b.data()), static_cast<uInt>(n));
    b.remove_prefix(n);
  }
  return static_cast<uint32_t>(crc);
}

template <typename T>
void Put(std::string* out, T v) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));
  out->append(bytes, sizeof(T));
}

void PutString32(std::string* out, std::string_view s) {
  Put<uint32_t>(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

class Reader {
 public:
  explicit Reader(std::string_view b) : b_(b) {}
  template <typename T>
  bool Get(T* v) {
    if (b_.size() < sizeof(T)) return false;
    std::memcpy(v, b_.data(), sizeof(T));
    b_.remove_prefix(sizeof(T));
    return true;
  }
  bool GetBytes(size_t n, std::string* out) {
    if (b_.size() < n) return false;
    out->assign(b_.data(), n);
    b_.remove_prefix(n);
    return true;
  }
  bool done() const { return b_.empty(); }
  size_t left() const { return b_.size(); }

 private:
  std::string_view b_;
};

}  // namespace

void EncodeForecastCheckpoint(const ForecastCheckpoint& c, std::string* out) {
  out->assign(kHeaderSize, '\0');
  Put<uint32_t>(out, c.horizon);
  Put<uint32_t>(out, c.history_days);
  Put<uint32_t>(out, c.refit_hours);
  Put<uint32_t>(out, static_cast<uint32_t>(c.next_offsets.size()));
  for (int64_t o : c.next_offsets) Put<int64_t>(out, o);
  Put<uint64_t>(out, c.series.size());
  for (const SeriesCheckpoint& s : c.series) {
    Put<uint64_t>(out, s.sensor_id);
    Put<uint16_t>(out, static_cast<uint16_t>(s.field.size()));
    out->append(s.field);
    Put<int32_t>(out, s.partition);
    Put<int64_t>(out, s.history.first_hour);
    Put<uint32_t>(out, static_cast<uint32_t>(s.history.values.size()));
    for (double v : s.history.values) Put<double>(out, v);
    PutString32(out, s.latest);
    PutString32(out, s.latest_day_ahead);
  }
  std::string_view body(out->data() + kHeaderSize, out->size() - kHeaderSize);
  uint64_t length = body.size();
  uint32_t crc = Crc(body);
  std::memcpy(out->data(), kMagic, 8);
  std::memcpy(out->data() + 8, &kVersion, 4);
  std::memcpy(out->data() + 12, &length, 8);
  std::memcpy(out->data() + 20, &crc, 4);
}

Status DecodeForecastCheckpoint(std::string_view b, const std::string& where, ForecastCheckpoint* c) {
  if (b.size() < kHeaderSize || std::memcmp(b.data(), kMagic, 8) != 0) {
    return Status::Corruption(where + ": not a forecast checkpoint (bad magic or too short)");
  }
  uint32_t version, crc;
  uint64_t length;
  std::memcpy(&version, b.data() + 8, 4);
  std::memcpy(&length, b.data() + 12, 8);
  std::memcpy(&crc, b.data() + 20, 4);
  if (version != kVersion) return Status::Corruption(fmt::format("{}: unknown checkpoint version {}", where, version));
  if (length != b.size() - kHeaderSize) {
    return Status::Corruption(fmt::format("{}: body is {} bytes, header says {}", where, b.size() - kHeaderSize, length));
  }
  std::string_view body = b.substr(kHeaderSize);
  if (uint32_t actual = Crc(body); actual != crc) {
    return Status::Corruption(fmt::format("{}: checksum mismatch (stored {:#010x}, computed {:#010x})", where, crc, actual));
  }
  Status truncated = Status::Corruption(where + ": body ends early");
  Reader r(body);
  *c = ForecastCheckpoint{};
  uint32_t partitions;
  if (!r.Get(&c->horizon) || !r.Get(&c->history_days) || !r.Get(&c->refit_hours) || !r.Get(&partitions)) return truncated;
  if (partitions > r.left() / 8) return truncated;
  c->next_offsets.resize(partitions);
  for (int64_t& o : c->next_offsets) {
    if (!r.Get(&o)) return truncated;
  }
  uint64_t n;
  if (!r.Get(&n)) return truncated;
  for (uint64_t i = 0; i < n; ++i) {
    SeriesCheckpoint s;
    uint16_t field_length;
    uint32_t values, latest_length;
    if (!r.Get(&s.sensor_id) || !r.Get(&field_length) || !r.GetBytes(field_length, &s.field) || !r.Get(&s.partition) ||
        !r.Get(&s.history.first_hour) || !r.Get(&values)) {
      return truncated;
    }
    if (values > r.left() / 8) return truncated;
    s.history.values.resize(values);
    for (double& v : s.history.values) r.Get(&v);
    if (!r.Get(&latest_length) || !r.GetBytes(latest_length, &s.latest)) return truncated;
    if (!r.Get(&latest_length) || !r.GetBytes(latest_length, &s.latest_day_ahead)) return truncated;
    c->series.push_back(std::move(s));
  }
  if (!r.done()) return Status::Corruption(where + ": trailing bytes after the last series");
  return Status::OK();
}

Status ReadForecastCheckpoint(const std::string& path, ForecastCheckpoint* out) {
  auto bytes = log::file::ReadAll(path);
  if (!bytes.ok()) return bytes.status();
  return DecodeForecastCheckpoint(*bytes, path, out);
}

Status WriteForecastCheckpoint(const std::string& path, const ForecastCheckpoint& checkpoint, std::string* scratch) {
  EncodeForecastCheckpoint(checkpoint, scratch);
  return log::file::WriteAtomically(path, *scratch);
}

}  // namespace mare::forecast
