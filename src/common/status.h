// Status and Result<T>: errors as values, checked at every boundary (after LevelDB's Status).
//
//   Status s = log->Append(...);
//   if (!s.ok()) return s;
//   Result<int64_t> r = ParseDuration("7d");
//   if (!r) return r.status();   // else use *r
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace mare {

// [[nodiscard]]: a Status dropped on the floor is an error lost; the compiler refuses it. Where
// ignoring one is right, say why beside an explicit `(void)`.
class [[nodiscard]] Status {
 public:
  enum class Code { kOk, kInvalidArgument, kNotFound, kCorruption, kIOError, kUnavailable };

  Status() = default;
  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string m) { return Status(Code::kInvalidArgument, std::move(m)); }
  static Status NotFound(std::string m) { return Status(Code::kNotFound, std::move(m)); }
  static Status Corruption(std::string m) { return Status(Code::kCorruption, std::move(m)); }
  static Status IOError(std::string m) { return Status(Code::kIOError, std::move(m)); }
  // IOError with strerror(errno_value) appended: "open /x: No such file or directory".
  static Status FromErrno(std::string context, int errno_value);
  static Status Unavailable(std::string m) { return Status(Code::kUnavailable, std::move(m)); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  Status(Code c, std::string m) : code_(c), message_(std::move(m)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

// A value or the Status explaining why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT: must not be OK
  bool ok() const { return value_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Status& status() const { return status_; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T value_or(T other) const { return ok() ? *value_ : std::move(other); }

 private:
  std::optional<T> value_;
  Status status_;
};

#define MARE_RETURN_IF_ERROR(expr)          \
  do {                                      \
    ::mare::Status _s = (expr);             \
    if (!_s.ok()) return _s;                \
  } while (0)

}  // namespace mare
