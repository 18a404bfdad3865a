#include "query/arrow_writer.h"

#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>

#include <flatbuffers/flatbuffers.h>

namespace mare::query {
namespace {

// Body buffers are copied from memory as they are: Arrow's little-endian layout is the machine's.
static_assert(std::endian::native == std::endian::little, "the Arrow writer copies little-endian arrays");

// Flatbuffers metadata, by the ids of the Arrow specification's Schema.fbs and Message.fbs
// (format/Schema.fbs, format/Message.fbs; docs/formats/arrow.md lists what is used). A table's
// field with id n sits at vtable offset 4 + 2n; a union takes two ids, its type then its value.
constexpr flatbuffers::voffset_t Slot(int id) { return static_cast<flatbuffers::voffset_t>(4 + 2 * id); }

// union Type (Schema.fbs)
enum class ArrowType : uint8_t { kNull = 1, kInt = 2, kFloatingPoint = 3, kUtf8 = 5, kBool = 6, kTimestamp = 10, kDuration = 18 };
// union MessageHeader (Message.fbs)
constexpr uint8_t kHeaderSchema = 1;
constexpr uint8_t kHeaderRecordBatch = 3;
// enum MetadataVersion: V5 is 4.
constexpr int16_t kMetadataV5 = 4;
// enum TimeUnit: MICROSECOND is 2 (Duration's unit defaults to MILLISECOND, 1).
constexpr int16_t kMicrosecond = 2;
constexpr int16_t kDurationUnitDefault = 1;
// enum Precision: DOUBLE is 2.
constexpr int16_t kPrecisionDouble = 2;

// table Message { version; header (union: 1, 2); bodyLength; custom_metadata }
constexpr auto kMessageVersion = Slot(0), kMessageHeaderType = Slot(1), kMessageHeader = Slot(2), kMessageBodyLength = Slot(3);
// table Schema { endianness; fields; custom_metadata; features }
constexpr auto kSchemaEndianness = Slot(0), kSchemaFields = Slot(1);
// table Field { name; nullable; type (union: 2, 3); dictionary; children; custom_metadata }
constexpr auto kFieldName = Slot(0), kFieldNullable = Slot(1), kFieldTypeType = Slot(2), kFieldType = Slot(3),
               kFieldChildren = Slot(5);
// table Int { bitWidth; is_signed }, FloatingPoint { precision }, Timestamp { unit; timezone },
// Duration { unit }
constexpr auto kIntBitWidth = Slot(0), kIntIsSigned = Slot(1), kFloatingPointPrecision = Slot(0), kTimestampUnit = Slot(0),
               kTimestampTimezone = Slot(1), kDurationUnit = Slot(0);
// table RecordBatch { length; nodes; buffers; compression; variadicBufferCounts }
constexpr auto kBatchLength = Slot(0), kBatchNodes = Slot(1), kBatchBuffers = Slot(2);

// struct FieldNode { length: long; null_count: long }
struct FieldNode {
  int64_t length;
  int64_t null_count;
};
// struct Buffer { offset: long; length: long }: where a buffer lies in the message body.
struct BodyBuffer {
  int64_t offset;
  int64_t length;
};

// Marks an encapsulated message's start; a zero length after it ends the stream.
constexpr uint32_t kContinuation = 0xFFFFFFFF;

constexpr size_t Padded(size_t n) { return (n + 7) & ~size_t{7}; }

void AppendU32(std::string* out, uint32_t v) {
  char b[4];
  std::memcpy(b, &v, 4);
  out->append(b, 4);
}

// An encapsulated message: the continuation marker, the metadata's length, the Message
// flatbuffer padded so that the body after it starts 8-byte aligned.
void AppendMessage(const flatbuffers::FlatBufferBuilder& fbb, std::string* out) {
  size_t padded = Padded(fbb.GetSize());
  AppendU32(out, kContinuation);
  AppendU32(out, static_cast<uint32_t>(padded));
  out->append(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
  out->append(padded - fbb.GetSize(), '\0');
}

flatbuffers::Offset<void> FinishTable(flatbuffers::FlatBufferBuilder& fbb, flatbuffers::uoffset_t start) {
  return flatbuffers::Offset<void>(fbb.EndTable(start));
}

flatbuffers::Offset<void> MessageOf(flatbuffers::FlatBufferBuilder& fbb, uint8_t header_type, flatbuffers::Offset<void> header,
                                    int64_t body_length) {
  auto start = fbb.StartTable();
  fbb.AddElement<int64_t>(kMessageBodyLength, body_length, 0);
  fbb.AddOffset(kMessageHeader, header);
  fbb.AddElement<int16_t>(kMessageVersion, kMetadataV5, 0);
  fbb.AddElement<uint8_t>(kMessageHeaderType, header_type, 0);
  return FinishTable(fbb, start);
}

ArrowType ArrowTypeOf(Type t) {
  switch (t) {
    case Type::kNull: return ArrowType::kNull;
    case Type::kBoolean: return ArrowType::kBool;
    case Type::kInteger: return ArrowType::kInt;
    case Type::kDouble: return ArrowType::kFloatingPoint;
    case Type::kTimestamp: return ArrowType::kTimestamp;
    case Type::kInterval: return ArrowType::kDuration;
    case Type::kText: return ArrowType::kUtf8;
  }
  return ArrowType::kNull;
}

// The type table of a Field (Int, FloatingPoint, ...); an empty table for types without
// parameters (Null, Bool, Utf8), which readers still expect to be there.
flatbuffers::Offset<void> TypeTableOf(flatbuffers::FlatBufferBuilder& fbb, Type t) {
  flatbuffers::Offset<flatbuffers::String> utc;
  if (t == Type::kTimestamp) utc = fbb.CreateString("UTC");
  auto start = fbb.StartTable();
  switch (t) {
    case Type::kInteger:
      fbb.AddElement<int32_t>(kIntBitWidth, 64, 0);
      fbb.AddElement<uint8_t>(kIntIsSigned, 1, 0);
      break;
    case Type::kDouble:
      fbb.AddElement<int16_t>(kFloatingPointPrecision, kPrecisionDouble, 0);
      break;
    case Type::kTimestamp:
      fbb.AddOffset(kTimestampTimezone, utc);
      fbb.AddElement<int16_t>(kTimestampUnit, kMicrosecond, 0);
      break;
    case Type::kInterval:
      fbb.AddElement<int16_t>(kDurationUnit, kMicrosecond, kDurationUnitDefault);
      break;
    default:
      break;
  }
  return FinishTable(fbb, start);
}

// The body of one batch is laid out before it is written: the metadata names each buffer's
// place, and the buffers are then copied straight into those places.
struct ColumnPlan {
  int64_t null_count = 0;
  size_t text_base = 0;  // text: where the batch's first value starts in the column's text
};

// Packs one bit per row, least significant bit first (Arrow's bitmaps), from byte flags.
template <typename Flag>
void PackBits(uint8_t* out, size_t n, Flag flag) {
  for (size_t r = 0; r < n; r += 8) {
    uint8_t byte = 0;
    size_t m = std::min<size_t>(8, n - r);
    for (size_t k = 0; k < m; ++k) byte |= static_cast<uint8_t>(flag(r + k) ? 1u << k : 0u);
    out[r / 8] = byte;
  }
}

size_t TextBytes(const ResultColumn& c, size_t begin, size_t end) {
  if (end == begin) return 0;
  size_t base = begin == 0 ? 0 : c.text_ends()[begin - 1];
  return c.text_ends()[end - 1] - base;
}

}  // namespace

ArrowStreamWriter::ArrowStreamWriter(std::vector<std::string> names, std::vector<Type> types)
    : names_(std::move(names)), types_(std::move(types)) {}

void ArrowStreamWriter::WriteSchema(std::string* out) const {
  flatbuffers::FlatBufferBuilder fbb(1024);
  std::vector<flatbuffers::Offset<void>> fields;
  std::vector<flatbuffers::Offset<void>> no_children;
  for (size_t c = 0; c < names_.size(); ++c) {
    auto name = fbb.CreateString(names_[c]);
    auto type = TypeTableOf(fbb, types_[c]);
    auto children = fbb.CreateVector(no_children);
    auto start = fbb.StartTable();
    fbb.AddOffset(kFieldName, name);
    fbb.AddOffset(kFieldType, type);
    fbb.AddOffset(kFieldChildren, children);
    fbb.AddElement<uint8_t>(kFieldNullable, 1, 0);
    fbb.AddElement<uint8_t>(kFieldTypeType, static_cast<uint8_t>(ArrowTypeOf(types_[c])), 0);
    fields.push_back(FinishTable(fbb, start));
  }
  auto field_vector = fbb.CreateVector(fields);
  auto start = fbb.StartTable();
  fbb.AddOffset(kSchemaFields, field_vector);
  fbb.AddElement<int16_t>(kSchemaEndianness, 0, 0);  // Little
  auto schema = FinishTable(fbb, start);
  fbb.Finish(MessageOf(fbb, kHeaderSchema, schema, 0));
  AppendMessage(fbb, out);
}

void ArrowStreamWriter::WriteBatch(const std::vector<ResultColumn>& columns, size_t begin, size_t end, std::string* out) const {
  size_t n = end - begin;
  std::vector<FieldNode> nodes;
  std::vector<BodyBuffer> buffers;
  std::vector<ColumnPlan> plans(columns.size());
  int64_t body = 0;
  auto place = [&](size_t length) {
    buffers.push_back(BodyBuffer{body, static_cast<int64_t>(length)});
    body += static_cast<int64_t>(Padded(length));
  };
  for (size_t c = 0; c < columns.size(); ++c) {
    const ResultColumn& col = columns[c];
    ColumnPlan& plan = plans[c];
    if (types_[c] == Type::kNull) {  // no buffers at all: every row is NULL
      nodes.push_back(FieldNode{static_cast<int64_t>(n), static_cast<int64_t>(n)});
      continue;
    }
    const uint8_t* valid = col.valid_bytes() + begin;
    for (size_t r = 0; r < n; ++r) plan.null_count += valid[r] == 0;
    nodes.push_back(FieldNode{static_cast<int64_t>(n), plan.null_count});
    // Without NULLs the validity bitmap may be left out (length 0): every row is valid.
    place(plan.null_count > 0 ? (n + 7) / 8 : 0);
    switch (types_[c]) {
      case Type::kBoolean:
        place((n + 7) / 8);
        break;
      case Type::kText:
        plan.text_base = begin == 0 ? 0 : col.text_ends()[begin - 1];
        place((n + 1) * sizeof(int32_t));
        place(TextBytes(col, begin, end));
        break;
      default:  // integer, double, timestamp, interval: 8 bytes a row
        place(n * 8);
    }
  }

  flatbuffers::FlatBufferBuilder fbb(1024);
  auto node_vector = fbb.CreateVectorOfStructs(nodes.data(), nodes.size());
  auto buffer_vector = fbb.CreateVectorOfStructs(buffers.data(), buffers.size());
  auto start = fbb.StartTable();
  fbb.AddElement<int64_t>(kBatchLength, static_cast<int64_t>(n), 0);
  fbb.AddOffset(kBatchNodes, node_vector);
  fbb.AddOffset(kBatchBuffers, buffer_vector);
  auto batch = FinishTable(fbb, start);
  fbb.Finish(MessageOf(fbb, kHeaderRecordBatch, batch, body));
  AppendMessage(fbb, out);

  // The body, zeroed (the padding), then each buffer copied to its place.
  size_t at = out->size();
  out->resize(at + static_cast<size_t>(body));
  auto dest = [&](size_t b) { return reinterpret_cast<uint8_t*>(out->data() + at + buffers[b].offset); };
  size_t b = 0;
  for (size_t c = 0; c < columns.size(); ++c) {
    if (types_[c] == Type::kNull) continue;
    const ResultColumn& col = columns[c];
    const uint8_t* valid = col.valid_bytes() + begin;
    if (plans[c].null_count > 0) PackBits(dest(b), n, [&](size_t r) { return valid[r] != 0; });
    ++b;
    switch (types_[c]) {
      case Type::kBoolean: {
        const int64_t* v = col.ints() + begin;
        PackBits(dest(b++), n, [&](size_t r) { return v[r] != 0; });
        break;
      }
      case Type::kText: {
        uint8_t* offsets = dest(b++);
        const uint64_t* ends = col.text_ends() + begin;
        int32_t zero = 0;
        std::memcpy(offsets, &zero, sizeof zero);
        for (size_t r = 0; r < n; ++r) {
          auto o = static_cast<int32_t>(ends[r] - plans[c].text_base);
          std::memcpy(offsets + (r + 1) * sizeof(int32_t), &o, sizeof o);
        }
        size_t bytes = static_cast<size_t>(buffers[b].length);
        if (bytes > 0) std::memcpy(dest(b), col.text_bytes().data() + plans[c].text_base, bytes);
        ++b;
        break;
      }
      case Type::kDouble:
        if (n > 0) std::memcpy(dest(b), col.doubles() + begin, n * 8);
        ++b;
        break;
      default:
        if (n > 0) std::memcpy(dest(b), col.ints() + begin, n * 8);
        ++b;
    }
  }
}

void ArrowStreamWriter::WriteEnd(std::string* out) {
  AppendU32(out, kContinuation);
  AppendU32(out, 0);
}

size_t ArrowBatchEnd(const std::vector<ResultColumn>& columns, size_t begin, size_t end, size_t max_rows) {
  size_t stop = begin + std::min(max_rows, end - begin);
  constexpr size_t kMaxText = std::numeric_limits<int32_t>::max();
  for (const ResultColumn& c : columns) {
    if (c.type() != Type::kText) continue;
    while (stop - begin > 1 && TextBytes(c, begin, stop) > kMaxText) stop = begin + (stop - begin) / 2;
  }
  return stop;
}

void WriteArrow(const ResultTable& result, std::string* out) {
  std::vector<Type> types;
  for (const auto& c : result.columns) types.push_back(c.type());
  ArrowStreamWriter arrow(result.names, std::move(types));
  arrow.WriteSchema(out);
  for (size_t at = 0; at < result.rows;) {
    size_t end = ArrowBatchEnd(result.columns, at, result.rows, kArrowBatchRows);
    arrow.WriteBatch(result.columns, at, end, out);
    at = end;
  }
  ArrowStreamWriter::WriteEnd(out);
}

}  // namespace mare::query
