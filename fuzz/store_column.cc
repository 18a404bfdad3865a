// Fuzz target: the store's column chunk decoders (timestamps, numbers, texts) on arbitrary
// chunks, and each encoder's output decoding back to its input.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "store/block.h"
#include "store/column.h"
#include "fuzz_check.h"

namespace store = mare::store;

using mare::fuzz::Check;

namespace {

// Input: [mode u8][rows u16][rest]. Modes 0-2 decode `rest` as a chunk; 3-5 encode values made
// from `rest` and decode them back.
void Decode(uint8_t mode, size_t rows, std::string_view chunk) {
  if (mode == 0) {
    std::vector<int64_t> ts;
    if (store::DecodeTimestamps(chunk, rows, &ts).ok()) Check(ts.size() == rows, "one timestamp per row");
    return;
  }
  store::ColumnValues v;
  if (mode == 1 && store::DecodeNumbers(chunk, rows, &v).ok()) {
    Check(v.numbers.size() == rows, "one number per row");
    Check(v.valid.empty() || v.valid.size() == rows, "presence per row");
  }
  if (mode == 2 && store::DecodeTexts(chunk, rows, &v).ok()) {
    Check(v.texts.size() == rows, "one text per row");
    Check(v.valid.empty() || v.valid.size() == rows, "presence per row");
  }
}

void RoundTrip(uint8_t mode, std::string_view rest) {
  std::string chunk;
  if (mode == 3) {
    std::vector<int64_t> ts(rest.size() / 8);
    if (!ts.empty()) std::memcpy(ts.data(), rest.data(), ts.size() * 8);
    // Block timestamps: sorted, within one hour's neighbourhood of each other as blocks are.
    for (auto& t : ts) t = 1'705'831'200'000'000 + t % store::kHourMicros;
    std::sort(ts.begin(), ts.end());
    store::EncodeTimestamps(ts, &chunk);
    std::vector<int64_t> back;
    Check(store::DecodeTimestamps(chunk, ts.size(), &back).ok() && back == ts, "timestamps decode as encoded");
    return;
  }
  if (mode == 4) {
    size_t n = rest.size() / 9;
    std::vector<double> values(n);
    std::vector<uint8_t> present(n);
    for (size_t i = 0; i < n; ++i) {
      std::memcpy(&values[i], rest.data() + 9 * i, 8);
      present[i] = rest[9 * i + 8] & 1;
      if (!std::isfinite(values[i])) present[i] = 0;  // readings' numbers are finite
    }
    store::EncodeNumbers(values, present, &chunk);
    store::ColumnValues back;
    Check(store::DecodeNumbers(chunk, n, &back).ok(), "encoded numbers decode");
    for (size_t i = 0; i < n; ++i) {
      bool has = back.valid.empty() || back.valid[i];
      Check(has == static_cast<bool>(present[i]), "presence decodes as encoded");
      if (has) Check(back.numbers[i] == values[i], "numbers decode as encoded");
    }
    return;
  }
  std::vector<std::string_view> texts;
  std::vector<uint8_t> present;
  for (size_t at = 0; at < rest.size();) {
    size_t len = std::min<size_t>(static_cast<uint8_t>(rest[at]) % 16, rest.size() - at - 1);
    texts.push_back(rest.substr(at + 1, len));
    present.push_back(len % 3 != 2);
    at += 1 + len;
  }
  store::EncodeTexts(texts, present, &chunk);
  store::ColumnValues back;
  Check(store::DecodeTexts(chunk, texts.size(), &back).ok(), "encoded texts decode");
  for (size_t i = 0; i < texts.size(); ++i) {
    bool has = back.valid.empty() || back.valid[i];
    Check(has == static_cast<bool>(present[i]), "presence decodes as encoded");
    if (has) Check(back.texts[i] == texts[i], "texts decode as encoded");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  uint8_t mode = data[0] % 6;
  size_t rows = (data[1] | (data[2] << 8)) % (store::kMaxBlockRows + 1);
  std::string_view rest(reinterpret_cast<const char*>(data) + 3, size - 3);
  if (mode < 3) Decode(mode, rows, rest);
  else RoundTrip(mode, rest);
  return 0;
}
