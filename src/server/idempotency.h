// IdempotencyCache: the answers of ingest requests sent with an `Idempotency-Key` header, kept
// for http.idempotency_horizon, so that a client retrying after an unknown outcome (a timeout, a
// dropped connection) gets the first answer again instead of appending the batch twice.
//
// A key is claimed when its request starts and recorded only if the request's answer is a
// success (2xx: its batch is in the log); any other end releases it, so a retry runs again. A
// second request with a key still being handled is answered 409 (retry after it). Keys belong
// to the token that sent them (or to everyone when no token is configured), and are remembered
// up to max_keys and kMaxBytes of answers, the oldest forgotten first.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>

namespace mare {

class IdempotencyCache {
 public:
  static constexpr size_t kMaxBytes = 64 << 20;  // answers held at most, all keys together
  static constexpr size_t kMaxKeyBytes = 255;

  struct Answer {
    int status = 0;
    std::string body;
    std::string content_type;
  };
  enum class Claim { kNew, kReplay, kBusy, kMismatch };

  IdempotencyCache(int64_t horizon_us, size_t max_keys) : horizon_us_(horizon_us), max_keys_(max_keys) {}

  bool enabled() const { return horizon_us_ > 0 && max_keys_ > 0; }

  // `fingerprint` tells requests apart that reuse a key for another batch (their length): such
  // a retry is kMismatch. kReplay fills `answer`; kNew claims the key until Finish or Release.
  Claim Begin(const std::string& key, const std::string& fingerprint, int64_t now_us, Answer* answer);
  void Finish(const std::string& key, Answer answer, int64_t now_us);
  void Release(const std::string& key);

  size_t size() const;

 private:
  struct Entry {
    bool done = false;
    std::string fingerprint;
    Answer answer;
    int64_t at_us = 0;
  };
  void Expire(int64_t now_us);  // with mu_ held

  const int64_t horizon_us_;
  const size_t max_keys_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  std::deque<std::pair<int64_t, std::string>> order_;  // finished keys, oldest first
  size_t bytes_ = 0;
};

}  // namespace mare
