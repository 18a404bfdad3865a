#include "store/column.h"

#include <zstd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "store/coding.h"

namespace mare::store {
namespace {

constexpr uint8_t kNone = 0;
constexpr uint8_t kZstd = 1;
constexpr double kPow10[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};

// Bit packing, LSB first; the packed bytes are followed by 8 zero bytes so that a decoder may
// always load 8 bytes at once.
void Pack(std::span<const uint64_t> values, int width, std::string* out) {
  size_t start = out->size();
  size_t bytes = (values.size() * static_cast<size_t>(width) + 7) / 8;
  out->resize(start + bytes + 8, '\0');
  if (width == 0) return;
  auto* p = reinterpret_cast<uint8_t*>(out->data() + start);
  // Values go into a 64-bit accumulator; whole bytes leave it as it fills.
  uint64_t acc = 0;
  int filled = 0;
  for (uint64_t v : values) {
    acc |= v << filled;
    filled += width;
    if (filled >= 64) {
      std::memcpy(p, &acc, 8);
      p += 8;
      filled -= 64;
      acc = filled > 0 ? v >> (width - filled) : 0;
    }
  }
  while (filled > 0) {
    *p++ = static_cast<uint8_t>(acc);
    acc >>= 8;
    filled -= 8;
  }
}

template <typename F>
void Unpack(const uint8_t* p, size_t n, int width, F&& f) {
  if (width == 0) {
    for (size_t i = 0; i < n; ++i) f(i, 0);
    return;
  }
  const uint64_t mask = width == 64 ? ~0ULL : (1ULL << width) - 1;
  size_t bit = 0;
  for (size_t i = 0; i < n; ++i) {
    uint64_t word;
    std::memcpy(&word, p + bit / 8, 8);
    f(i, (word >> (bit % 8)) & mask);
    bit += static_cast<size_t>(width);
  }
}

int WidthOf(uint64_t max_value) { return max_value == 0 ? 0 : 64 - std::countl_zero(max_value); }

// One zstd context per thread, kept: ZSTD_compress and ZSTD_decompress make and free one per
// call, whose set-up cost more than compressing or decompressing a chunk of a few KB (most of
// a batch recompute's time went there). The bytes are the same as theirs.
struct ZstdContexts {
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_DCtx* d = ZSTD_createDCtx();
  ~ZstdContexts() {
    ZSTD_freeCCtx(c);
    ZSTD_freeDCtx(d);
  }
};
ZstdContexts& Zstd() {
  thread_local ZstdContexts contexts;
  return contexts;
}

// Writes the chunk header and body, compressing the body when that saves at least 1/8.
void Finish(Encoding encoding, const std::string& body, std::string* out) {
  out->push_back(static_cast<char>(encoding));
  if (body.size() >= 64) {
    thread_local std::string compressed;
    compressed.resize(ZSTD_compressBound(body.size()));
    size_t n = ZSTD_compressCCtx(Zstd().c, compressed.data(), compressed.size(), body.data(), body.size(), 1);
    if (!ZSTD_isError(n) && n + n / 7 < body.size()) {
      out->push_back(static_cast<char>(kZstd));
      PutVarint(out, body.size());
      out->append(compressed.data(), n);
      return;
    }
  }
  out->push_back(static_cast<char>(kNone));
  out->append(body);
}

// Bodies up to this size are decompressed in one call into a buffer of their size.
constexpr size_t kOneShotBytes = 1 << 20;

// A larger body's buffer grows with what the frame really holds, so that a damaged frame that
// claims up to 1 GiB costs what it decompresses to, not what it claims.
Status DecompressGrowing(const char* src, size_t src_size, size_t raw_size, std::string* out) {
  ZSTD_DCtx* d = Zstd().d;
  ZSTD_DCtx_reset(d, ZSTD_reset_session_only);
  ZSTD_inBuffer in{src, src_size, 0};
  out->resize(kOneShotBytes);
  ZSTD_outBuffer o{out->data(), out->size(), 0};
  for (;;) {
    const size_t in_before = in.pos, out_before = o.pos;
    size_t left = ZSTD_decompressStream(d, &o, &in);
    if (ZSTD_isError(left)) return Status::Corruption("column chunk: zstd data does not decompress");
    if (left == 0) break;  // the frame is complete
    if (o.pos == o.size && o.size < raw_size) {
      out->resize(std::min<size_t>(raw_size, o.size * 2));
      o = {out->data(), out->size(), o.pos};
    } else if (in.pos == in_before && o.pos == out_before) {
      break;  // no progress: the input is truncated, or the frame holds more than raw_size
    }
  }
  if (o.pos != raw_size || in.pos != in.size) return Status::Corruption("column chunk: zstd data does not decompress");
  out->resize(raw_size);
  return Status::OK();
}

// Splits a chunk into its encoding and (decompressed) body.
Status Open(std::string_view chunk, Encoding expected, std::string* scratch, std::string_view* body) {
  if (chunk.size() < 2) return Status::Corruption("column chunk shorter than its header");
  if (static_cast<Encoding>(chunk[0]) != expected && !(expected == Encoding::kDecimal && chunk[0] == static_cast<char>(Encoding::kDouble))) {
    return Status::Corruption("column chunk has encoding " + std::to_string(static_cast<int>(chunk[0])));
  }
  uint8_t compression = static_cast<uint8_t>(chunk[1]);
  std::string_view rest = chunk.substr(2);
  if (compression == kNone) {
    *body = rest;
    return Status::OK();
  }
  if (compression != kZstd) return Status::Corruption("column chunk has unknown compression");
  Reader r(rest);
  uint64_t raw_size = 0;
  if (!r.Varint(&raw_size) || raw_size > (1u << 30)) return Status::Corruption("column chunk: bad raw size");
  // The frame's header says its size too (the writer's frames do): a damaged size is refused here
  // before anything is allocated for it.
  if (ZSTD_getFrameContentSize(r.position(), r.remaining()) != raw_size) {
    return Status::Corruption("column chunk: zstd frame's size is not the chunk's raw size");
  }
  if (raw_size <= kOneShotBytes) {
    scratch->resize(raw_size);
    size_t n = ZSTD_decompressDCtx(Zstd().d, scratch->data(), raw_size, r.position(), r.remaining());
    if (ZSTD_isError(n) || n != raw_size) return Status::Corruption("column chunk: zstd data does not decompress");
  } else {
    MARE_RETURN_IF_ERROR(DecompressGrowing(r.position(), r.remaining(), raw_size, scratch));
  }
  *body = *scratch;
  return Status::OK();
}

void PutPresence(std::span<const uint8_t> present, size_t rows, std::string* out) {
  size_t count = present.empty() ? rows : static_cast<size_t>(std::count(present.begin(), present.end(), 1));
  PutVarint(out, count);
  if (count == rows) return;
  std::string bits((rows + 7) / 8, '\0');
  for (size_t i = 0; i < rows; ++i) {
    if (present[i]) bits[i / 8] = static_cast<char>(bits[i / 8] | (1 << (i % 8)));
  }
  out->append(bits);
}

// Reads the presence section; fills out->valid when some rows have no value.
Status GetPresence(Reader* r, size_t rows, ColumnValues* out, size_t* count) {
  uint64_t c = 0;
  if (!r->Varint(&c) || c > rows) return Status::Corruption("column chunk: bad value count");
  *count = c;
  out->valid.clear();
  if (c == rows) return Status::OK();
  std::string_view bits;
  if (!r->Bytes((rows + 7) / 8, &bits)) return Status::Corruption("column chunk: truncated presence bitmap");
  out->valid.resize(rows);
  size_t seen = 0;
  for (size_t i = 0; i < rows; ++i) {
    out->valid[i] = (static_cast<uint8_t>(bits[i / 8]) >> (i % 8)) & 1;
    seen += out->valid[i];
  }
  if (seen != c) return Status::Corruption("column chunk: presence bitmap disagrees with its count");
  return Status::OK();
}

// Spreads `count` dense values over the rows that have one.
template <typename T>
void Scatter(std::vector<T>* values, const std::vector<uint8_t>& valid, size_t rows, T empty) {
  if (valid.empty()) return;
  values->resize(rows);
  size_t j = std::count(valid.begin(), valid.end(), 1);
  for (size_t i = rows; i-- > 0;) (*values)[i] = valid[i] ? (*values)[--j] : empty;
}

}  // namespace

int DecimalScale(std::span<const double> values) {
  int scale = 0;
  double limit = 9e15;  // 9e15 / kPow10[scale], divided once a scale (a division a value was most of the time here)
  for (double v : values) {
    if (!std::isfinite(v) || std::fabs(v) > limit) return -1;
    while (true) {
      double scaled = v * kPow10[scale];
      if (std::fabs(scaled) < 9e15) {
        double r = std::nearbyint(scaled);
        if (r / kPow10[scale] == v) break;
      }
      if (++scale > 9) return -1;
      limit = 9e15 / kPow10[scale];
    }
  }
  // A later value may have raised the scale past what an earlier, larger one can take.
  for (double v : values) {
    if (std::fabs(v * kPow10[scale]) >= 9e15) return -1;
  }
  return scale;
}

void EncodeTimestamps(std::span<const int64_t> ts, std::string* out) {
  std::string body;
  body.reserve(ts.size() + 16);
  int64_t prev = 0, prev_delta = 0;
  for (size_t i = 0; i < ts.size(); ++i) {
    if (i == 0) {
      PutVarint(&body, ZigZag(ts[0]));
    } else {
      int64_t delta = ts[i] - prev;
      PutVarint(&body, ZigZag(delta - prev_delta));
      prev_delta = delta;
    }
    prev = ts[i];
  }
  Finish(Encoding::kTimestamps, body, out);
}

Status DecodeTimestamps(std::string_view chunk, size_t rows, std::vector<int64_t>* out) {
  std::string scratch;
  std::string_view body;
  MARE_RETURN_IF_ERROR(Open(chunk, Encoding::kTimestamps, &scratch, &body));
  out->resize(rows);
  Reader r(body);
  // Summed as unsigned, wrapping: a damaged chunk decodes to wrong times, never to a signed
  // overflow; an intact one to the same times (its sums never overflow).
  uint64_t prev = 0, delta = 0;
  for (size_t i = 0; i < rows; ++i) {
    uint64_t v = 0;
    if (!r.Varint(&v)) return Status::Corruption("timestamp chunk is truncated");
    if (i == 0) {
      prev = static_cast<uint64_t>(UnZigZag(v));
    } else {
      delta += static_cast<uint64_t>(UnZigZag(v));
      prev += delta;
    }
    (*out)[i] = static_cast<int64_t>(prev);
  }
  return Status::OK();
}

// Decimal body: presence, scale u8, mode u8 (0: deltas from the first value, 1: offsets from
// the minimum), base (zigzag varint), width u8, packed values (count - 1 deltas or count
// offsets). Double body: presence, then count raw doubles.
//
// Two passes over the values with a value, each carrying part of the summary: the scale
// (DecimalScale's rule) beside the sum, minimum and maximum; the scaled integers beside the
// squared deviations. The sums are chains of dependent additions, one per value, that the
// scale's and the integers' work now hides (apart, they were most of a block's encoding).
void EncodeNumbers(std::span<const double> values, std::span<const uint8_t> present, std::string* out,
                   NumberSummary* summary) {
  std::vector<double> gathered;
  std::span<const double> dense = values;
  if (!present.empty()) {
    gathered.reserve(values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      if (present[i]) gathered.push_back(values[i]);
    }
    dense = gathered;
  }
  const size_t n = dense.size();
  std::string body;
  PutPresence(present, values.size(), &body);
  // Pass 1. DecimalScale, inline: the scale rises until every value so far reads back.
  double lo_v = std::numeric_limits<double>::infinity(), hi_v = -std::numeric_limits<double>::infinity(), sum = 0;
  int scale = 0;
  double limit = 9e15;  // 9e15 / kPow10[scale]
  bool decimal = true;
  for (size_t i = 0; i < n; ++i) {
    const double v = dense[i];
    sum += v;
    lo_v = std::min(lo_v, v);
    hi_v = std::max(hi_v, v);
    if (!decimal) continue;
    if (!std::isfinite(v) || std::fabs(v) > limit) {
      decimal = false;
      continue;
    }
    while (true) {
      double scaled = v * kPow10[scale];
      if (std::fabs(scaled) < 9e15) {
        double r = std::nearbyint(scaled);
        if (r / kPow10[scale] == v) break;
      }
      if (++scale > 9) {
        decimal = false;
        break;
      }
      limit = 9e15 / kPow10[scale];
    }
  }
  // Pass 2. The squared deviations from the mean (the same expression as ever, so the same
  // bits), and, for a decimal column, the integers, their range and their deltas' width; a
  // later value may have raised the scale past what an earlier, larger one can take (then
  // the column is stored as doubles, as DecimalScale's second loop decides).
  const double mean = n == 0 ? 0 : sum / static_cast<double>(n);
  double m2 = 0;
  std::vector<uint64_t> ints;  // two's complement, then packed in place
  int64_t lo = INT64_MAX, hi = INT64_MIN;
  uint64_t max_zz = 0;
  if (decimal && n > 0) {
    ints.resize(n);
    const double p = kPow10[scale];
    bool fits = true;
    int64_t prev = 0;
    for (size_t i = 0; i < n; ++i) {
      const double v = dense[i];
      m2 += (v - mean) * (v - mean);
      const double scaled = v * p;
      // A value that does not fit at the final scale makes the column doubles; its integer is
      // not used, and converting it would be undefined (3.9e11 before a 1e-9: 3.9e20).
      const bool fit = std::fabs(scaled) < 9e15;
      fits &= fit;
      const int64_t x = fit ? static_cast<int64_t>(std::nearbyint(scaled)) : 0;
      ints[i] = static_cast<uint64_t>(x);
      lo = std::min(lo, x);
      hi = std::max(hi, x);
      if (i > 0) max_zz = std::max(max_zz, ZigZag(x - prev));
      prev = x;
    }
    decimal = fits;
  } else {
    for (size_t i = 0; i < n; ++i) m2 += (dense[i] - mean) * (dense[i] - mean);
  }
  if (summary != nullptr) *summary = {.count = n, .min = lo_v, .max = hi_v, .sum = sum, .m2 = n == 0 ? 0 : m2};
  if (n == 0) {
    // DecimalScale of nothing is 0: an empty decimal body.
    decimal = true;
    scale = 0;
  }
  if (decimal) {
    int delta_width = WidthOf(max_zz);
    int offset_width = n == 0 ? 0 : WidthOf(static_cast<uint64_t>(hi - lo));
    bool by_offset = offset_width <= delta_width;
    int width = by_offset ? offset_width : delta_width;
    if (width <= 56) {
      body.push_back(static_cast<char>(scale));
      body.push_back(static_cast<char>(by_offset ? 1 : 0));
      std::span<const uint64_t> packed(ints);
      if (by_offset) {
        PutVarint(&body, ZigZag(n == 0 ? 0 : lo));
        for (uint64_t& v : ints) v -= static_cast<uint64_t>(lo);
      } else {
        PutVarint(&body, ZigZag(static_cast<int64_t>(ints[0])));
        for (size_t i = n; i-- > 1;) ints[i] = ZigZag(static_cast<int64_t>(ints[i]) - static_cast<int64_t>(ints[i - 1]));
        packed = packed.subspan(1);
      }
      body.push_back(static_cast<char>(width));
      Pack(packed, width, &body);
      Finish(Encoding::kDecimal, body, out);
      return;
    }
  }
  for (double v : dense) PutDouble(&body, v);
  Finish(Encoding::kDouble, body, out);
}

Status DecodeNumbers(std::string_view chunk, size_t rows, ColumnValues* out) {
  std::string scratch;
  std::string_view body;
  MARE_RETURN_IF_ERROR(Open(chunk, Encoding::kDecimal, &scratch, &body));
  Reader r(body);
  size_t count;
  MARE_RETURN_IF_ERROR(GetPresence(&r, rows, out, &count));
  out->numbers.resize(count);
  double* v = out->numbers.data();
  if (static_cast<Encoding>(chunk[0]) == Encoding::kDouble) {
    std::string_view raw;
    if (!r.Bytes(count * 8, &raw)) return Status::Corruption("number chunk is truncated");
    if (count > 0) std::memcpy(v, raw.data(), count * 8);  // v is null when no row has a value
  } else {
    uint8_t scale = 0, mode = 0, width = 0;
    uint64_t base_zz = 0;
    if (!r.Byte(&scale) || !r.Byte(&mode) || !r.Varint(&base_zz) || !r.Byte(&width) || scale > 9 || mode > 1 ||
        width > 56) {
      return Status::Corruption("number chunk has a bad header");
    }
    size_t packed_count = mode == 1 ? count : (count == 0 ? 0 : count - 1);
    std::string_view packed;
    if (!r.Bytes((packed_count * width + 7) / 8 + 8, &packed)) return Status::Corruption("number chunk is truncated");
    const auto* p = reinterpret_cast<const uint8_t*>(packed.data());
    const double divisor = kPow10[scale];
    const int64_t base = UnZigZag(base_zz);
    if (mode == 1) {
      Unpack(p, count, width, [&](size_t i, uint64_t x) { v[i] = static_cast<double>(base + static_cast<int64_t>(x)) / divisor; });
    } else if (count > 0) {
      int64_t current = base;
      v[0] = static_cast<double>(base) / divisor;
      Unpack(p, packed_count, width, [&](size_t i, uint64_t x) {
        current += UnZigZag(x);
        v[i + 1] = static_cast<double>(current) / divisor;
      });
    }
  }
  Scatter(&out->numbers, out->valid, rows, 0.0);
  return Status::OK();
}

// Dictionary body: presence, distinct count, the strings, width u8, packed indexes.
void EncodeTexts(std::span<const std::string_view> values, std::span<const uint8_t> present, std::string* out) {
  std::string body;
  PutPresence(present, values.size(), &body);
  // A sorted dictionary: its order is the text order, whatever the number of distinct values.
  std::vector<std::string_view> dictionary;
  std::vector<uint64_t> indexes;
  for (size_t i = 0; i < values.size(); ++i) {
    if (present.empty() || present[i]) dictionary.push_back(values[i]);
  }
  std::sort(dictionary.begin(), dictionary.end());
  dictionary.erase(std::unique(dictionary.begin(), dictionary.end()), dictionary.end());
  for (size_t i = 0; i < values.size(); ++i) {
    if (!present.empty() && !present[i]) continue;
    indexes.push_back(static_cast<uint64_t>(std::lower_bound(dictionary.begin(), dictionary.end(), values[i]) - dictionary.begin()));
  }
  PutVarint(&body, dictionary.size());
  for (auto s : dictionary) PutString(&body, s);
  int width = WidthOf(dictionary.empty() ? 0 : dictionary.size() - 1);
  body.push_back(static_cast<char>(width));
  Pack(indexes, width, &body);
  Finish(Encoding::kDictionary, body, out);
}

Status DecodeTexts(std::string_view chunk, size_t rows, ColumnValues* out) {
  std::string scratch;
  std::string_view body;
  MARE_RETURN_IF_ERROR(Open(chunk, Encoding::kDictionary, &scratch, &body));
  Reader r(body);
  size_t count;
  MARE_RETURN_IF_ERROR(GetPresence(&r, rows, out, &count));
  uint64_t distinct = 0;
  if (!r.Varint(&distinct) || distinct > count) return Status::Corruption("text chunk: bad dictionary size");
  // The views must survive `scratch`: copy the dictionary into the arena first.
  std::vector<std::pair<size_t, size_t>> spans;
  spans.reserve(distinct);
  out->arena.clear();
  for (uint64_t i = 0; i < distinct; ++i) {
    std::string_view s;
    if (!r.String(&s)) return Status::Corruption("text chunk: truncated dictionary");
    spans.emplace_back(out->arena.size(), s.size());
    out->arena.append(s);
  }
  uint8_t width = 0;
  std::string_view packed;
  if (!r.Byte(&width) || width > 56 || !r.Bytes((count * width + 7) / 8 + 8, &packed)) {
    return Status::Corruption("text chunk: truncated indexes");
  }
  out->texts.resize(count);
  bool bad = false;
  Unpack(reinterpret_cast<const uint8_t*>(packed.data()), count, width, [&](size_t i, uint64_t x) {
    if (x >= distinct) {
      bad = true;
      return;
    }
    out->texts[i] = std::string_view(out->arena.data() + spans[x].first, spans[x].second);
  });
  if (bad) return Status::Corruption("text chunk: index outside the dictionary");
  Scatter(&out->texts, out->valid, rows, std::string_view());
  return Status::OK();
}

}  // namespace mare::store
