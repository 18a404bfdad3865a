#include "query/answer_stream.h"

#include "common/time.h"
#include "query/arrow_writer.h"
#include "query/format.h"

namespace mare::query {

// Formats each batch on the statement's thread and queues it.
class AnswerStream::Sink : public BatchSink {
 public:
  explicit Sink(AnswerStream* stream) : stream_(stream) {}

  bool Begin(const std::vector<std::string>& names, const std::vector<Type>& types) override {
    names_ = names;
    std::string chunk;
    switch (stream_->format_) {
      case AnswerFormat::kCsv:
        WriteCsvHeader(names_, &chunk);
        break;
      case AnswerFormat::kNdjson:
        return true;
      case AnswerFormat::kArrow:
        arrow_.emplace(names, types);
        arrow_->WriteSchema(&chunk);
        break;
    }
    return stream_->Push(std::move(chunk));
  }

  bool Rows(const std::vector<ResultColumn>& columns, size_t begin, size_t end) override {
    std::string chunk;
    switch (stream_->format_) {
      case AnswerFormat::kCsv:
        WriteCsvRows(names_, columns, begin, end, &chunk);
        break;
      case AnswerFormat::kNdjson:
        WriteNdjsonRows(names_, columns, begin, end, &chunk);
        break;
      case AnswerFormat::kArrow:
        for (size_t at = begin; at < end;) {
          size_t stop = ArrowBatchEnd(columns, at, end, kArrowBatchRows);
          arrow_->WriteBatch(columns, at, stop, &chunk);
          at = stop;
        }
        break;
    }
    return stream_->Push(std::move(chunk));
  }

  // What closes a complete answer (the Arrow stream's end marker).
  bool End() {
    if (stream_->format_ != AnswerFormat::kArrow) return true;
    std::string chunk;
    ArrowStreamWriter::WriteEnd(&chunk);
    return stream_->Push(std::move(chunk));
  }

 private:
  AnswerStream* stream_;
  std::vector<std::string> names_;
  std::optional<ArrowStreamWriter> arrow_;
};

AnswerStream::AnswerStream(store::Store& store, std::string sql, QueryOptions options, AnswerFormat format, size_t queue_bytes,
                           StatementThreads* threads)
    : format_(format), queue_bytes_(queue_bytes) {
  options.cancel = &cancel_;
  auto run = [this, &store, sql = std::move(sql), options] { Run(store, sql, options); };
  if (threads != nullptr) {
    ran_ = threads->Run(std::move(run));
  } else {
    thread_ = std::thread(std::move(run));
  }
}

AnswerStream::~AnswerStream() { Finish(); }

void AnswerStream::Finish() {
  Cancel();
  if (thread_.joinable()) thread_.join();
  if (ran_.valid()) ran_.wait();
}

void AnswerStream::Run(store::Store& store, std::string sql, QueryOptions options) {
  int64_t start = MonotonicMicros();
  Sink sink(this);
  SqlError error;
  ResultTable summary;
  bool ok = RunQuery(store, sql, options, &sink, &summary, &error) && sink.End();
  if (ok) {
    summary_ = std::move(summary);
  } else if (error.message.empty()) {  // cancelled while queuing the end marker
    error = SqlError{"the statement was cancelled: its client went away", Position{0, 0}, SqlError::Kind::kStore};
  }
  error_ = std::move(error);
  elapsed_ms_ = static_cast<double>(MonotonicMicros() - start) / 1000.0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    failed_ = !ok;
  }
  // Notified without the lock, so that the woken reader does not wait for it at once. The
  // stream outlives this: it is destroyed only after Finish has seen this run return.
  changed_.notify_all();
}

bool AnswerStream::Push(std::string chunk) {
  std::unique_lock<std::mutex> lock(mu_);
  while (queued_ >= queue_bytes_ && !cancel_.load()) {
    full_ = true;
    changed_.notify_all();
    changed_.wait(lock);
  }
  if (cancel_.load()) return false;
  queued_ += chunk.size();
  queue_.push_back(std::move(chunk));
  if (reader_waits_) changed_.notify_all();
  return true;
}

AnswerStream::State AnswerStream::WaitStarted() {
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait(lock, [&] { return done_ || full_; });
  if (!done_) return State::kStreaming;
  return failed_ ? State::kFailed : State::kComplete;
}

void AnswerStream::TakeAll(std::string* out) {
  std::lock_guard<std::mutex> lock(mu_);
  out->clear();
  if (queue_.size() == 1) {
    *out = std::move(queue_.front());
  } else {
    out->reserve(queued_);
    for (const std::string& piece : queue_) out->append(piece);
  }
  queue_.clear();
  queued_ = 0;
}

bool AnswerStream::Next(std::string* chunk) {
  std::unique_lock<std::mutex> lock(mu_);
  reader_waits_ = true;
  changed_.wait(lock, [&] { return !queue_.empty() || done_ || cancel_.load(); });
  reader_waits_ = false;
  if (queue_.empty() || cancel_.load()) return false;
  *chunk = std::move(queue_.front());
  queue_.pop_front();
  queued_ -= chunk->size();
  changed_.notify_all();
  return true;
}

void AnswerStream::Cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  cancel_.store(true);
  changed_.notify_all();
}

bool AnswerStream::failed() const {
  std::lock_guard<std::mutex> lock(mu_);
  // Cancelled before the reader had all of it: cut short, whether or not the statement itself
  // had ended (a small remainder can finish between the reader's last piece and its Cancel).
  return failed_ || (cancel_.load() && (!done_ || !queue_.empty()));
}

}  // namespace mare::query
