#include "server/idempotency.h"

namespace mare {

IdempotencyCache::Claim IdempotencyCache::Begin(const std::string& key, const std::string& fingerprint, int64_t now_us,
                                                Answer* answer) {
  std::lock_guard lock(mu_);
  Expire(now_us);
  auto [it, inserted] = entries_.try_emplace(key);
  Entry& e = it->second;
  if (inserted) {
    e.fingerprint = fingerprint;
    return Claim::kNew;
  }
  if (!e.done) return Claim::kBusy;
  if (e.fingerprint != fingerprint) return Claim::kMismatch;
  *answer = e.answer;
  return Claim::kReplay;
}

void IdempotencyCache::Finish(const std::string& key, Answer answer, int64_t now_us) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.done) return;
  it->second.done = true;
  it->second.at_us = now_us;
  bytes_ += key.size() + answer.body.size();
  it->second.answer = std::move(answer);
  order_.emplace_back(now_us, key);
  Expire(now_us);
}

void IdempotencyCache::Release(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it != entries_.end() && !it->second.done) entries_.erase(it);
}

size_t IdempotencyCache::size() const {
  std::lock_guard lock(mu_);
  return order_.size();
}

void IdempotencyCache::Expire(int64_t now_us) {
  while (!order_.empty() &&
         (order_.front().first <= now_us - horizon_us_ || order_.size() > max_keys_ || bytes_ > kMaxBytes)) {
    auto it = entries_.find(order_.front().second);
    if (it != entries_.end() && it->second.done && it->second.at_us == order_.front().first) {
      bytes_ -= it->first.size() + it->second.answer.body.size();
      entries_.erase(it);
    }
    order_.pop_front();
  }
}

}  // namespace mare
