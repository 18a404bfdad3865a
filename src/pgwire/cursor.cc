#include "pgwire/cursor.h"

namespace mare::pgwire {

class Cursor::Sink : public query::BatchSink {
 public:
  explicit Sink(Cursor* c) : c_(c) {}

  bool Begin(const std::vector<std::string>& names, const std::vector<query::Type>& types) override {
    std::lock_guard lock(c_->mu_);
    c_->names_ = names;
    c_->types_ = types;
    c_->began_ = true;
    c_->changed_.notify_all();
    return !c_->describe_only_;
  }

  bool Rows(const std::vector<query::ResultColumn>& columns, size_t begin, size_t end) override {
    std::unique_lock lock(c_->mu_);
    c_->batch_ = {&columns, begin, end};
    c_->has_batch_ = true;
    c_->changed_.notify_all();
    // The columns stay valid while this call waits: the connection reads them in place, so
    // even a cancel waits for it to be done with them (it checks the cancel after each batch).
    c_->changed_.wait(lock, [&] { return !c_->has_batch_; });
    return !c_->cancel_.load();
  }

 private:
  Cursor* c_;
};

Cursor::Cursor(store::Store& store, std::string sql, query::QueryOptions options, bool describe_only)
    : describe_only_(describe_only) {
  options.cancel = &cancel_;
  thread_ = std::thread([this, &store, sql = std::move(sql), options]() mutable { Run(store, std::move(sql), options); });
}

Cursor::~Cursor() {
  {
    // The owner is done reading: the statement may let go of its batch and stop.
    std::lock_guard lock(mu_);
    cancel_.store(true);
    has_batch_ = false;
    changed_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void Cursor::Run(store::Store& store, std::string sql, query::QueryOptions options) {
  Sink sink(this);
  query::ResultTable summary;
  query::SqlError error;
  bool ok = query::RunQuery(store, sql, options, &sink, &summary, &error);
  std::lock_guard lock(mu_);
  if (!ok && !(describe_only_ && began_)) {
    failed_ = true;
    error_ = std::move(error);
  }
  summary_ = std::move(summary);
  done_ = true;
  changed_.notify_all();
}

bool Cursor::WaitColumns() {
  std::unique_lock lock(mu_);
  changed_.wait(lock, [&] { return began_ || done_; });
  return began_ && !failed_;
}

bool Cursor::Next(Batch* batch) {
  std::unique_lock lock(mu_);
  changed_.wait(lock, [&] { return has_batch_ || done_; });
  if (!has_batch_) return false;
  *batch = batch_;
  return true;
}

void Cursor::Done() {
  std::lock_guard lock(mu_);
  has_batch_ = false;
  changed_.notify_all();
}

void Cursor::Cancel() { cancel_.store(true); }

bool Cursor::cancelled() const { return cancel_.load(); }

bool Cursor::failed() const {
  std::lock_guard lock(mu_);
  return failed_;
}

}  // namespace mare::pgwire
