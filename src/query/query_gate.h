// QueryGate: how many statements may run at once (query.max_concurrent). One more is refused
// at once, not queued: a queue of slow queries would hold connections and memory while the
// client waits anyway; a refusal (HTTP 503, Retry-After) tells it to come back.
//
//   QueryGate gate(limits.max_concurrent);
//   QueryGate::Permit permit = gate.TryEnter();
//   if (!permit) return Busy();   // else run; the permit is given back when it goes
#pragma once

#include <atomic>

namespace mare::query {

class QueryGate {
 public:
  // max_concurrent <= 0: no limit.
  explicit QueryGate(int max_concurrent) : max_(max_concurrent) {}
  QueryGate(const QueryGate&) = delete;
  QueryGate& operator=(const QueryGate&) = delete;

  // A place among the running statements while it lives; false when there was none.
  class Permit {
   public:
    Permit() = default;
    Permit(Permit&& other) noexcept : gate_(other.gate_) { other.gate_ = nullptr; }
    Permit& operator=(Permit&& other) noexcept {
      if (this != &other) {
        Release();
        gate_ = other.gate_;
        other.gate_ = nullptr;
      }
      return *this;
    }
    ~Permit() { Release(); }
    explicit operator bool() const { return gate_ != nullptr; }

   private:
    friend class QueryGate;
    explicit Permit(QueryGate* gate) : gate_(gate) {}
    void Release() {
      if (gate_ != nullptr) gate_->running_.fetch_sub(1, std::memory_order_acq_rel);
      gate_ = nullptr;
    }
    QueryGate* gate_ = nullptr;
  };

  Permit TryEnter() {
    int now = running_.fetch_add(1, std::memory_order_acq_rel);
    if (max_ > 0 && now >= max_) {
      running_.fetch_sub(1, std::memory_order_acq_rel);
      return Permit();
    }
    return Permit(this);
  }

  int running() const { return running_.load(std::memory_order_acquire); }
  int max_concurrent() const { return max_; }

 private:
  const int max_;
  std::atomic<int> running_{0};
};

}  // namespace mare::query
