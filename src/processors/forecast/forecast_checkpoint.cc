#include "processors/forecast/forecast_checkpoint.h"

#include <fmt/format.h>
#include <zlib.h>
#include <zstd.h>

#include <cstring>
#include <memory>

#include "log/file.h"

namespace mare::forecast {

namespace {

constexpr char kMagic[8] = {'M', 'A', 'R', 'E', 'F', 'C', 'S', 'T'};
// 1: no series state; 2: every series uncompressed (both still read). 3: each series' record
// compressed alone, its numbers in byte planes, only what a restore with its models reads.
constexpr uint32_t kVersion = kForecastCheckpointVersion;
// Bounds a damaged or hostile file cannot pass: the models and horizon mare has (168 at most).
constexpr uint32_t kMaxBooks = 64;
constexpr uint32_t kMaxLeads = 168;
constexpr size_t kHeaderSize = 24;  // magic, version, body length, body crc
// A series' record once decompressed, at most: 10 years of hours and a full state are far less.
constexpr uint64_t kMaxRecord = 64ull << 20;
// zstd's level: 1 compresses these records about as well as 3 (their doubles' low bytes are
// noise either way) in less time.
constexpr int kZstdLevel = 1;

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

void PutState(std::string* out, const SeriesState& s) {
  Put<int64_t>(out, s.last_closed);
  Put<int64_t>(out, s.replay_from);
  Put<int64_t>(out, s.holt_winters_fit);
  Put<uint8_t>(out, s.holt_winters_fitted ? 1 : 0);
  for (double v : {s.holt_winters.alpha, s.holt_winters.beta, s.holt_winters.gamma, s.holt_winters.phi}) Put<double>(out, v);
  Put<uint32_t>(out, static_cast<uint32_t>(s.errors.size()));
  Put<uint32_t>(out, static_cast<uint32_t>(s.errors.empty() ? 0 : s.errors[0].size()));
  for (const auto& by_lead : s.errors) {
    for (const SeriesState::Errors& errors : by_lead) {
      Put<uint32_t>(out, static_cast<uint32_t>(errors.size()));
      for (const auto& [origin, error] : errors) {
        Put<int64_t>(out, origin);
        Put<double>(out, error);
      }
    }
  }
  Put<uint32_t>(out, static_cast<uint32_t>(s.pending.size()));
  for (const SeriesState::Pending& p : s.pending) {
    Put<int64_t>(out, p.origin);
    for (const auto& means : p.means) {
      for (double v : means) Put<double>(out, v);
    }
  }
}

// False when the bytes end early or break a bound; the caller names the file.
bool GetState(Reader& r, SeriesState* s) {
  uint8_t fitted;
  uint32_t books, leads, pending;
  if (!r.Get(&s->last_closed) || !r.Get(&s->replay_from) || !r.Get(&s->holt_winters_fit) || !r.Get(&fitted) ||
      fitted > 1 || !r.Get(&s->holt_winters.alpha) || !r.Get(&s->holt_winters.beta) || !r.Get(&s->holt_winters.gamma) ||
      !r.Get(&s->holt_winters.phi) || !r.Get(&books) || !r.Get(&leads)) {
    return false;
  }
  s->holt_winters_fitted = fitted == 1;
  if (books > kMaxBooks || leads > kMaxLeads || (books == 0) != (leads == 0)) return false;
  s->errors.assign(books, std::vector<SeriesState::Errors>(leads));
  for (auto& by_lead : s->errors) {
    for (SeriesState::Errors& errors : by_lead) {
      uint32_t n;
      if (!r.Get(&n) || n > r.left() / 16) return false;
      errors.resize(n);
      for (size_t i = 0; i < n; ++i) {
        r.Get(&errors[i].first);
        r.Get(&errors[i].second);
        if (i > 0 && errors[i].first < errors[i - 1].first) return false;  // origins never go back
      }
    }
  }
  if (!r.Get(&pending) || (books > 0 && pending > r.left() / (8 + 8ull * books * leads))) return false;
  if (books == 0 && pending > 0) return false;
  s->pending.resize(pending);
  for (SeriesState::Pending& p : s->pending) {
    if (!r.Get(&p.origin)) return false;
    p.means.assign(books, std::vector<double>(leads));
    for (auto& means : p.means) {
      for (double& v : means) {
        if (!r.Get(&v)) return false;
      }
    }
  }
  return true;
}

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

uint64_t ZigZag(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }
int64_t UnZigZag(uint64_t u) { return static_cast<int64_t>((u >> 1) ^ (0 - (u & 1))); }

// A version 3 series record: its numbers (f64) apart, stored as 8 byte planes (the lowest byte
// of every number, then the next, ...) so that the exponents' and signs' bytes, alike from one
// number to the next, sit together for zstd; the rest (the shape) reads them in order.
class RecordWriter {
 public:
  void Clear() {
    numbers_.clear();
    shape_.clear();
  }
  void Number(double v) { numbers_.push_back(v); }
  template <typename T>
  void Fixed(T v) {
    Put<T>(&shape_, v);
  }
  void Varint(uint64_t v) { PutVarint(&shape_, v); }
  void Bytes(std::string_view b) {
    Put<uint32_t>(&shape_, static_cast<uint32_t>(b.size()));
    shape_.append(b);
  }
  void Finish(std::string* out) const {
    out->clear();
    const size_t n = numbers_.size();
    Put<uint32_t>(out, static_cast<uint32_t>(n));
    size_t at = out->size();
    out->resize(at + 8 * n);
    for (size_t i = 0; i < n; ++i) {
      uint64_t bits;
      std::memcpy(&bits, &numbers_[i], 8);
      for (size_t k = 0; k < 8; ++k) (*out)[at + k * n + i] = static_cast<char>(bits >> (8 * k));
    }
    out->append(shape_);
  }

 private:
  std::vector<double> numbers_;
  std::string shape_;
};

class RecordReader {
 public:
  // False when the record is too short for the numbers it says it holds.
  bool Open(std::string_view record) {
    Reader r(record);
    uint32_t n;
    if (!r.Get(&n) || n > r.left() / 8) return false;
    n_ = n;
    planes_ = reinterpret_cast<const unsigned char*>(record.data()) + 4;
    shape_ = Reader(record.substr(4 + 8 * static_cast<size_t>(n)));
    return true;
  }
  bool Number(double* v) {
    if (next_ >= n_) return false;
    uint64_t bits = 0;
    for (size_t k = 0; k < 8; ++k) bits |= static_cast<uint64_t>(planes_[k * n_ + next_]) << (8 * k);
    std::memcpy(v, &bits, 8);
    ++next_;
    return true;
  }
  size_t numbers_left() const { return n_ - next_; }
  template <typename T>
  bool Fixed(T* v) {
    return shape_.Get(v);
  }
  bool Varint(uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b;
      if (!shape_.Get(&b)) return false;
      if (shift == 63 && b > 1) return false;  // past 64 bits
      *v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }
  bool Bytes(std::string* out) {
    uint32_t n;
    return shape_.Get(&n) && shape_.GetBytes(n, out);
  }
  bool done() const { return next_ == n_ && shape_.done(); }

 private:
  size_t n_ = 0, next_ = 0;
  const unsigned char* planes_ = nullptr;
  Reader shape_{std::string_view()};
};

void WriteRecord(const SeriesCheckpoint& s, RecordWriter* w) {
  w->Clear();
  w->Fixed<int64_t>(s.history.first_hour);
  w->Fixed<uint32_t>(static_cast<uint32_t>(s.history.values.size()));
  for (double v : s.history.values) w->Number(v);
  w->Bytes(s.latest);
  w->Bytes(s.latest_day_ahead);
  w->Fixed<uint8_t>(s.state ? 1 : 0);
  if (!s.state) return;
  const SeriesState& st = *s.state;
  w->Fixed<int64_t>(st.last_closed);
  w->Fixed<int64_t>(st.replay_from);
  w->Fixed<int64_t>(st.holt_winters_fit);
  w->Fixed<uint8_t>(st.holt_winters_fitted ? 1 : 0);
  for (double v : {st.holt_winters.alpha, st.holt_winters.beta, st.holt_winters.gamma, st.holt_winters.phi}) w->Number(v);
  w->Fixed<uint32_t>(static_cast<uint32_t>(st.errors.size()));
  w->Fixed<uint32_t>(static_cast<uint32_t>(st.errors.empty() ? 0 : st.errors[0].size()));
  for (const auto& by_lead : st.errors) {
    for (const SeriesState::Errors& errors : by_lead) {
      w->Varint(errors.size());
      for (size_t i = 0; i < errors.size(); ++i) {
        // Daily origins: the first one whole, then steps of 24 hours, a byte each.
        if (i == 0) {
          w->Varint(ZigZag(errors[i].first));
        } else {
          w->Varint(static_cast<uint64_t>(errors[i].first) - static_cast<uint64_t>(errors[i - 1].first));
        }
        w->Number(errors[i].second);
      }
    }
  }
  w->Fixed<uint32_t>(static_cast<uint32_t>(st.pending.size()));
  for (const SeriesState::Pending& p : st.pending) {
    w->Fixed<int64_t>(p.origin);
    for (const auto& means : p.means) {
      for (double v : means) w->Number(v);
    }
  }
}

// False when the record breaks the layout or a bound; the caller names the file and series.
bool ReadRecord(RecordReader& r, SeriesCheckpoint* s) {
  uint32_t values, books, leads, pending;
  uint8_t has_state, fitted;
  if (!r.Fixed(&s->history.first_hour) || !r.Fixed(&values) || values > r.numbers_left()) return false;
  s->history.values.resize(values);
  for (double& v : s->history.values) r.Number(&v);
  if (!r.Bytes(&s->latest) || !r.Bytes(&s->latest_day_ahead) || !r.Fixed(&has_state) || has_state > 1) return false;
  if (has_state == 0) return r.done();
  SeriesState& st = s->state.emplace();
  if (!r.Fixed(&st.last_closed) || !r.Fixed(&st.replay_from) || !r.Fixed(&st.holt_winters_fit) || !r.Fixed(&fitted) ||
      fitted > 1 || !r.Number(&st.holt_winters.alpha) || !r.Number(&st.holt_winters.beta) ||
      !r.Number(&st.holt_winters.gamma) || !r.Number(&st.holt_winters.phi) || !r.Fixed(&books) || !r.Fixed(&leads)) {
    return false;
  }
  st.holt_winters_fitted = fitted == 1;
  if (books > kMaxBooks || leads > kMaxLeads || (books == 0) != (leads == 0)) return false;
  st.errors.assign(books, std::vector<SeriesState::Errors>(leads));
  for (auto& by_lead : st.errors) {
    for (SeriesState::Errors& errors : by_lead) {
      uint64_t n, step;
      if (!r.Varint(&n) || n > r.numbers_left()) return false;
      errors.resize(n);
      for (size_t i = 0; i < n; ++i) {
        if (!r.Varint(&step)) return false;
        if (i == 0) {
          errors[i].first = UnZigZag(step);
        } else {
          uint64_t at = static_cast<uint64_t>(errors[i - 1].first) + step;
          errors[i].first = static_cast<int64_t>(at);
          if (errors[i].first < errors[i - 1].first) return false;  // origins never go back
        }
        r.Number(&errors[i].second);
      }
    }
  }
  if (!r.Fixed(&pending) || (books == 0 && pending > 0)) return false;
  if (books > 0 && pending > r.numbers_left() / (static_cast<size_t>(books) * leads)) return false;
  st.pending.resize(pending);
  for (SeriesState::Pending& p : st.pending) {
    if (!r.Fixed(&p.origin)) return false;
    p.means.assign(books, std::vector<double>(leads));
    for (auto& means : p.means) {
      for (double& v : means) r.Number(&v);
    }
  }
  return r.done();
}

struct ZstdContexts {
  std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> c{nullptr, ZSTD_freeCCtx};
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> d{nullptr, ZSTD_freeDCtx};
};

void EncodeV2Series(const SeriesCheckpoint& s, std::string* out) {
  Put<int64_t>(out, s.history.first_hour);
  Put<uint32_t>(out, static_cast<uint32_t>(s.history.values.size()));
  for (double v : s.history.values) Put<double>(out, v);
  PutString32(out, s.latest);
  PutString32(out, s.latest_day_ahead);
  Put<uint8_t>(out, s.state ? 1 : 0);
  if (s.state) PutState(out, *s.state);
}

}  // namespace

void EncodeForecastCheckpoint(const ForecastCheckpoint& c, std::string* out, uint32_t version) {
  out->assign(kHeaderSize, '\0');
  Put<uint32_t>(out, c.horizon);
  Put<uint32_t>(out, c.history_days);
  Put<uint32_t>(out, c.refit_hours);
  Put<uint32_t>(out, static_cast<uint32_t>(c.next_offsets.size()));
  for (int64_t o : c.next_offsets) Put<int64_t>(out, o);
  Put<uint64_t>(out, c.series.size());
  ZstdContexts zstd;
  RecordWriter writer;
  std::string record;
  if (version >= 3) zstd.c.reset(ZSTD_createCCtx());
  for (const SeriesCheckpoint& s : c.series) {
    Put<uint64_t>(out, s.sensor_id);
    Put<uint16_t>(out, static_cast<uint16_t>(s.field.size()));
    out->append(s.field);
    Put<int32_t>(out, s.partition);
    if (version < 3) {
      EncodeV2Series(s, out);
      continue;
    }
    WriteRecord(s, &writer);
    writer.Finish(&record);
    size_t at = out->size();
    out->resize(at + 4 + ZSTD_compressBound(record.size()));
    size_t packed = ZSTD_compressCCtx(zstd.c.get(), out->data() + at + 4, out->size() - at - 4, record.data(), record.size(),
                                      kZstdLevel);
    // Only a bad argument fails: the bound is zstd's own, the level a constant.
    if (ZSTD_isError(packed)) std::abort();
    uint32_t length = static_cast<uint32_t>(packed);
    std::memcpy(out->data() + at, &length, 4);
    out->resize(at + 4 + packed);
  }
  std::string_view body(out->data() + kHeaderSize, out->size() - kHeaderSize);
  uint64_t length = body.size();
  uint32_t crc = Crc(body);
  std::memcpy(out->data(), kMagic, 8);
  std::memcpy(out->data() + 8, &version, 4);
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
  if (version < 1 || version > kVersion) return Status::Corruption(fmt::format("{}: unknown checkpoint version {}", where, version));
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
  c->version = version;
  uint32_t partitions;
  if (!r.Get(&c->horizon) || !r.Get(&c->history_days) || !r.Get(&c->refit_hours) || !r.Get(&partitions)) return truncated;
  if (partitions > r.left() / 8) return truncated;
  c->next_offsets.resize(partitions);
  for (int64_t& o : c->next_offsets) {
    if (!r.Get(&o)) return truncated;
  }
  uint64_t n;
  if (!r.Get(&n)) return truncated;
  ZstdContexts zstd;
  std::string record;
  for (uint64_t i = 0; i < n; ++i) {
    SeriesCheckpoint s;
    uint16_t field_length;
    uint32_t values, latest_length;
    if (!r.Get(&s.sensor_id) || !r.Get(&field_length) || !r.GetBytes(field_length, &s.field) || !r.Get(&s.partition)) {
      return truncated;
    }
    if (version >= 3) {
      uint32_t packed_length;
      std::string packed;
      if (!r.Get(&packed_length) || !r.GetBytes(packed_length, &packed)) return truncated;
      auto damaged = [&](std::string_view what) {
        return Status::Corruption(fmt::format("{}: series {}/{}: {}", where, s.sensor_id, s.field, what));
      };
      unsigned long long size = ZSTD_getFrameContentSize(packed.data(), packed.size());
      if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > kMaxRecord) {
        return damaged("not a zstd frame of a known size up to 64 MiB");
      }
      if (!zstd.d) zstd.d.reset(ZSTD_createDCtx());
      record.resize(size);
      size_t got = ZSTD_decompressDCtx(zstd.d.get(), record.data(), record.size(), packed.data(), packed.size());
      if (ZSTD_isError(got) || got != size) return damaged("its zstd frame does not decompress");
      RecordReader rr;
      if (!rr.Open(record) || !ReadRecord(rr, &s)) return damaged("its record is damaged");
      c->series.push_back(std::move(s));
      continue;
    }
    if (!r.Get(&s.history.first_hour) || !r.Get(&values)) return truncated;
    if (values > r.left() / 8) return truncated;
    s.history.values.resize(values);
    for (double& v : s.history.values) r.Get(&v);
    if (!r.Get(&latest_length) || !r.GetBytes(latest_length, &s.latest)) return truncated;
    if (!r.Get(&latest_length) || !r.GetBytes(latest_length, &s.latest_day_ahead)) return truncated;
    if (version >= 2) {
      uint8_t has_state;
      if (!r.Get(&has_state)) return truncated;
      if (has_state > 1) return Status::Corruption(fmt::format("{}: series {}/{}: bad state flag {}", where, s.sensor_id, s.field, has_state));
      if (has_state == 1) {
        s.state.emplace();
        if (!GetState(r, &*s.state)) {
          return Status::Corruption(fmt::format("{}: series {}/{}: its models' state is damaged", where, s.sensor_id, s.field));
        }
      }
    }
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
