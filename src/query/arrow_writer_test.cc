// The Arrow IPC stream byte by byte, read back here by hand along the specification (and
// docs/formats/arrow.md): the framing of each message, the flatbuffers metadata by field id,
// and the body buffers' places, alignment and contents. pyarrow reads real answers in
// tests/e2e/test_arrow.py.
#include "query/arrow_writer.h"

#include <cstring>

#include <flatbuffers/flatbuffers.h>
#include <gtest/gtest.h>

namespace mare::query {
namespace {

using flatbuffers::Table;

constexpr flatbuffers::voffset_t Slot(int id) { return static_cast<flatbuffers::voffset_t>(4 + 2 * id); }

struct FieldNode {
  int64_t length;
  int64_t null_count;
};
struct BodyBuffer {
  int64_t offset;
  int64_t length;
};

uint32_t U32(const std::string& s, size_t at) {
  uint32_t v;
  std::memcpy(&v, s.data() + at, 4);
  return v;
}

// One encapsulated message as a reader finds it.
struct Message {
  size_t start = 0;          // of the continuation marker in the stream
  uint32_t meta_length = 0;  // as the prefix says
  const Table* meta = nullptr;
  std::string_view body;
};

// Every message of the stream up to its end-of-stream marker, which must close it.
std::vector<Message> ReadStream(const std::string& s) {
  std::vector<Message> out;
  size_t at = 0;
  while (true) {
    EXPECT_LE(at + 8, s.size());
    if (at + 8 > s.size()) return out;
    EXPECT_EQ(U32(s, at), 0xFFFFFFFFu) << "at " << at;
    uint32_t length = U32(s, at + 4);
    if (length == 0) {
      EXPECT_EQ(at + 8, s.size()) << "bytes after the end-of-stream marker";
      return out;
    }
    EXPECT_EQ((8 + length) % 8, 0u) << "the body must start 8-byte aligned";
    Message m;
    m.start = at;
    m.meta_length = length;
    m.meta = flatbuffers::GetRoot<Table>(s.data() + at + 8);
    auto body_length = static_cast<size_t>(m.meta->GetField<int64_t>(Slot(3), 0));
    EXPECT_EQ(body_length % 8, 0u);
    m.body = std::string_view(s).substr(at + 8 + length, body_length);
    EXPECT_EQ(m.body.size(), body_length) << "the body runs past the stream";
    out.push_back(m);
    at += 8 + length + body_length;
  }
}

const Table* Header(const Message& m) { return m.meta->GetPointer<const Table*>(Slot(2)); }
uint8_t HeaderType(const Message& m) { return m.meta->GetField<uint8_t>(Slot(1), 0); }

std::vector<const Table*> Fields(const Message& schema) {
  auto* fields = Header(schema)->GetPointer<const flatbuffers::Vector<flatbuffers::Offset<Table>>*>(Slot(1));
  std::vector<const Table*> out;
  if (fields == nullptr) return out;
  for (flatbuffers::uoffset_t i = 0; i < fields->size(); ++i) out.push_back(fields->Get(i));
  return out;
}

std::string FieldName(const Table* f) { return f->GetPointer<const flatbuffers::String*>(Slot(0))->str(); }
uint8_t FieldTypeId(const Table* f) { return f->GetField<uint8_t>(Slot(2), 0); }
const Table* FieldType(const Table* f) { return f->GetPointer<const Table*>(Slot(3)); }

std::vector<FieldNode> Nodes(const Message& batch) {
  auto* v = Header(batch)->GetPointer<const flatbuffers::Vector<const FieldNode*>*>(Slot(1));
  std::vector<FieldNode> out;
  for (flatbuffers::uoffset_t i = 0; i < v->size(); ++i) out.push_back(*v->Get(i));
  return out;
}

std::vector<BodyBuffer> Buffers(const Message& batch) {
  auto* v = Header(batch)->GetPointer<const flatbuffers::Vector<const BodyBuffer*>*>(Slot(2));
  std::vector<BodyBuffer> out;
  for (flatbuffers::uoffset_t i = 0; i < v->size(); ++i) out.push_back(*v->Get(i));
  return out;
}

template <typename T>
T At(const Message& m, const BodyBuffer& b, size_t i) {
  T v;
  EXPECT_LE(static_cast<size_t>(b.offset) + (i + 1) * sizeof(T), static_cast<size_t>(b.offset + b.length));
  std::memcpy(&v, m.body.data() + b.offset + i * sizeof(T), sizeof(T));
  return v;
}

bool Bit(const Message& m, const BodyBuffer& b, size_t i) {
  EXPECT_LT(i / 8, static_cast<size_t>(b.length));
  return (static_cast<uint8_t>(m.body[static_cast<size_t>(b.offset) + i / 8]) >> (i % 8)) & 1;
}

// ts, sensor_id, temperature, status, ok, age, nothing: every type, with a NULL in row 1.
ResultTable EveryType() {
  ResultTable t;
  t.names = {"ts", "sensor_id", "temperature", "status", "ok", "age", "nothing"};
  t.columns = {ResultColumn(Type::kTimestamp), ResultColumn(Type::kInteger), ResultColumn(Type::kDouble), ResultColumn(Type::kText),
               ResultColumn(Type::kBoolean),   ResultColumn(Type::kInterval), ResultColumn(Type::kNull)};
  auto row = [&](std::vector<Value> values) {
    for (size_t c = 0; c < values.size(); ++c) t.columns[c].Append(values[c]);
    ++t.rows;
  };
  row({Value::Int(Type::kTimestamp, 1'705'831'200'000'000), Value::Int(Type::kInteger, 7), Value::Double(20.5), Value::Text("ok"),
       Value::Int(Type::kBoolean, 1), Value::Int(Type::kInterval, 90'000'000), Value::Null(Type::kNull)});
  row({Value::Null(Type::kTimestamp), Value::Null(Type::kInteger), Value::Null(Type::kDouble), Value::Null(Type::kText),
       Value::Null(Type::kBoolean), Value::Null(Type::kInterval), Value::Null(Type::kNull)});
  row({Value::Int(Type::kTimestamp, 1'705'831'200'000'001), Value::Int(Type::kInteger, -3), Value::Double(-1.25),
       Value::Text("drifting buoy"), Value::Int(Type::kBoolean, 0), Value::Int(Type::kInterval, -1), Value::Null(Type::kNull)});
  return t;
}

TEST(ArrowWriter, SchemaNamesEveryColumnWithItsArrowType) {
  std::string s;
  WriteArrow(EveryType(), &s);
  auto messages = ReadStream(s);
  ASSERT_EQ(messages.size(), 2u);  // the schema, one batch
  const Message& schema = messages[0];
  EXPECT_EQ(schema.start, 0u);
  EXPECT_EQ(schema.meta->GetField<int16_t>(Slot(0), 0), 4) << "MetadataVersion V5";
  EXPECT_EQ(HeaderType(schema), 1) << "MessageHeader Schema";
  EXPECT_TRUE(schema.body.empty());
  EXPECT_EQ(Header(schema)->GetField<int16_t>(Slot(0), 0), 0) << "little-endian";

  auto fields = Fields(schema);
  ASSERT_EQ(fields.size(), 7u);
  std::vector<std::string> names;
  std::vector<int> types;
  for (const Table* f : fields) {
    names.push_back(FieldName(f));
    types.push_back(FieldTypeId(f));
    EXPECT_EQ(f->GetField<uint8_t>(Slot(1), 0), 1) << FieldName(f) << " is nullable";
    ASSERT_NE(FieldType(f), nullptr) << "readers want the type table even when it is empty";
    auto* children = f->GetPointer<const flatbuffers::Vector<flatbuffers::Offset<Table>>*>(Slot(5));
    ASSERT_NE(children, nullptr);
    EXPECT_EQ(children->size(), 0u);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"ts", "sensor_id", "temperature", "status", "ok", "age", "nothing"}));
  // Timestamp, Int, FloatingPoint, Utf8, Bool, Duration, Null.
  EXPECT_EQ(types, (std::vector<int>{10, 2, 3, 5, 6, 18, 1}));
  const Table* ts = FieldType(fields[0]);
  EXPECT_EQ(ts->GetField<int16_t>(Slot(0), 0), 2) << "MICROSECOND";
  EXPECT_EQ(ts->GetPointer<const flatbuffers::String*>(Slot(1))->str(), "UTC");
  const Table* integer = FieldType(fields[1]);
  EXPECT_EQ(integer->GetField<int32_t>(Slot(0), 0), 64);
  EXPECT_EQ(integer->GetField<uint8_t>(Slot(1), 0), 1) << "signed";
  EXPECT_EQ(FieldType(fields[2])->GetField<int16_t>(Slot(0), 0), 2) << "DOUBLE";
  EXPECT_EQ(FieldType(fields[5])->GetField<int16_t>(Slot(0), 1), 2) << "Duration in MICROSECOND, not the default MILLISECOND";
}

TEST(ArrowWriter, BatchLaysOutEveryBufferAlignedWithNullsAsValidityBits) {
  std::string s;
  WriteArrow(EveryType(), &s);
  auto messages = ReadStream(s);
  ASSERT_EQ(messages.size(), 2u);
  const Message& batch = messages[1];
  EXPECT_EQ(HeaderType(batch), 3) << "MessageHeader RecordBatch";
  EXPECT_EQ(Header(batch)->GetField<int64_t>(Slot(0), 0), 3) << "rows";

  auto nodes = Nodes(batch);
  ASSERT_EQ(nodes.size(), 7u);
  for (size_t c = 0; c < 6; ++c) {
    EXPECT_EQ(nodes[c].length, 3);
    EXPECT_EQ(nodes[c].null_count, 1) << "column " << c;
  }
  EXPECT_EQ(nodes[6].length, 3);
  EXPECT_EQ(nodes[6].null_count, 3) << "a Null column is all NULLs";

  // validity + values for ts, sensor_id, temperature, ok, age; validity + offsets + data for
  // status; none for the Null column.
  auto b = Buffers(batch);
  ASSERT_EQ(b.size(), 2u + 2 + 2 + 3 + 2 + 2);
  int64_t end = 0;
  for (const BodyBuffer& buf : b) {
    EXPECT_EQ(buf.offset % 8, 0) << "8-byte aligned";
    EXPECT_GE(buf.offset, end) << "in order, not overlapping";
    end = buf.offset + buf.length;
  }
  EXPECT_LE(end, static_cast<int64_t>(batch.body.size()));

  for (size_t c : {0, 2, 4, 6, 9, 11}) {  // every validity bitmap: rows 0 and 2 valid
    ASSERT_EQ(b[c].length, 1);
    EXPECT_TRUE(Bit(batch, b[c], 0));
    EXPECT_FALSE(Bit(batch, b[c], 1));
    EXPECT_TRUE(Bit(batch, b[c], 2));
  }
  EXPECT_EQ(b[1].length, 24);
  EXPECT_EQ(At<int64_t>(batch, b[1], 0), 1'705'831'200'000'000);
  EXPECT_EQ(At<int64_t>(batch, b[1], 2), 1'705'831'200'000'001);
  EXPECT_EQ(At<int64_t>(batch, b[3], 0), 7);
  EXPECT_EQ(At<int64_t>(batch, b[3], 2), -3);
  EXPECT_EQ(At<double>(batch, b[5], 0), 20.5);
  EXPECT_EQ(At<double>(batch, b[5], 2), -1.25);
  // status: offsets 0, 2, 2 (the NULL is empty), 15, then the bytes back to back.
  ASSERT_EQ(b[7].length, 16);
  EXPECT_EQ(At<int32_t>(batch, b[7], 0), 0);
  EXPECT_EQ(At<int32_t>(batch, b[7], 1), 2);
  EXPECT_EQ(At<int32_t>(batch, b[7], 2), 2);
  EXPECT_EQ(At<int32_t>(batch, b[7], 3), 15);
  EXPECT_EQ(batch.body.substr(static_cast<size_t>(b[8].offset), static_cast<size_t>(b[8].length)), "okdrifting buoy");
  ASSERT_EQ(b[10].length, 1);  // ok: true, (NULL), false
  EXPECT_TRUE(Bit(batch, b[10], 0));
  EXPECT_FALSE(Bit(batch, b[10], 2));
  EXPECT_EQ(At<int64_t>(batch, b[12], 0), 90'000'000);
  EXPECT_EQ(At<int64_t>(batch, b[12], 2), -1);
  // Padding is zeros: the body is exactly the buffers, each rounded up to 8 bytes.
  EXPECT_EQ(static_cast<int64_t>(batch.body.size()), (end + 7) / 8 * 8);
  EXPECT_EQ(batch.body[static_cast<size_t>(b[0].offset) + 1], '\0');
}

TEST(ArrowWriter, ColumnWithoutNullsLeavesOutItsValidityBitmap) {
  ResultTable t;
  t.names = {"x"};
  t.columns = {ResultColumn(Type::kInteger)};
  for (int i = 0; i < 10; ++i) t.columns[0].Append(Value::Int(Type::kInteger, i));
  t.rows = 10;
  std::string s;
  WriteArrow(t, &s);
  auto messages = ReadStream(s);
  ASSERT_EQ(messages.size(), 2u);
  auto b = Buffers(messages[1]);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0].length, 0);
  EXPECT_EQ(Nodes(messages[1])[0].null_count, 0);
  EXPECT_EQ(b[1].length, 80);
  for (size_t i = 0; i < 10; ++i) EXPECT_EQ(At<int64_t>(messages[1], b[1], i), static_cast<int64_t>(i));
  EXPECT_EQ(messages[1].body.size(), 80u);
}

TEST(ArrowWriter, BatchesFromTheMiddleOfAColumnStartTheirTextOffsetsAtZero) {
  ResultTable t;
  t.names = {"station"};
  t.columns = {ResultColumn(Type::kText)};
  for (const char* v : {"banyuls", "leucate", "sete", "agde"}) t.columns[0].Append(Value::Text(v));
  t.rows = 4;
  ArrowStreamWriter arrow(t.names, {Type::kText});
  std::string s;
  arrow.WriteSchema(&s);
  arrow.WriteBatch(t.columns, 0, 2, &s);
  arrow.WriteBatch(t.columns, 2, 4, &s);
  ArrowStreamWriter::WriteEnd(&s);
  auto messages = ReadStream(s);
  ASSERT_EQ(messages.size(), 3u);
  const Message& second = messages[2];
  auto b = Buffers(second);
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(At<int32_t>(second, b[1], 0), 0);
  EXPECT_EQ(At<int32_t>(second, b[1], 1), 4);
  EXPECT_EQ(At<int32_t>(second, b[1], 2), 8);
  EXPECT_EQ(second.body.substr(static_cast<size_t>(b[2].offset), static_cast<size_t>(b[2].length)), "seteagde");
}

TEST(ArrowWriter, AnswerIsCutIntoBatchesAndEndsWithTheEndOfStreamMarker) {
  ResultTable t;
  t.names = {"v"};
  t.columns = {ResultColumn(Type::kDouble)};
  size_t rows = 2 * kArrowBatchRows + 100;
  for (size_t i = 0; i < rows; ++i) t.columns[0].Append(Value::Double(static_cast<double>(i) / 4));
  t.rows = rows;
  std::string s;
  WriteArrow(t, &s);
  ASSERT_GE(s.size(), 8u);
  EXPECT_EQ(s.substr(s.size() - 8), std::string("\xff\xff\xff\xff\0\0\0\0", 8));
  auto messages = ReadStream(s);
  ASSERT_EQ(messages.size(), 4u);
  std::vector<int64_t> lengths;
  for (size_t m = 1; m < messages.size(); ++m) lengths.push_back(Header(messages[m])->GetField<int64_t>(Slot(0), 0));
  EXPECT_EQ(lengths, (std::vector<int64_t>{65'536, 65'536, 100}));
  EXPECT_EQ(At<double>(messages[3], Buffers(messages[3])[1], 99), static_cast<double>(rows - 1) / 4);
}

TEST(ArrowWriter, EmptyAnswerIsTheSchemaAndTheEnd) {
  ResultTable t;
  t.names = {"ts"};
  t.columns = {ResultColumn(Type::kTimestamp)};
  std::string s;
  WriteArrow(t, &s);
  auto messages = ReadStream(s);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(HeaderType(messages[0]), 1);
}

TEST(ArrowWriter, BatchEndStopsAtMaxRowsAndAtTheEnd) {
  std::vector<ResultColumn> columns = {ResultColumn(Type::kText)};
  for (int i = 0; i < 10; ++i) columns[0].Append(Value::Text("x"));
  EXPECT_EQ(ArrowBatchEnd(columns, 0, 10, 4), 4u);
  EXPECT_EQ(ArrowBatchEnd(columns, 8, 10, 4), 10u);
  EXPECT_EQ(ArrowBatchEnd(columns, 3, 10, 100), 10u);
}

}  // namespace
}  // namespace mare::query
