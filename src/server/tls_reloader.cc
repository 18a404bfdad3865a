#include "server/tls_reloader.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <ctime>

namespace mare {

namespace {

constexpr int64_t kSettleNs = 1'000'000'000;

// "2027-03-01" for the log: when the certificate ends.
std::string Day(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char out[32];
  std::strftime(out, sizeof(out), "%Y-%m-%d %H:%M UTC", &tm);
  return out;
}

std::string Describe(const TlsContext& c) {
  return fmt::format("subject {}, serial {}, valid until {}{}", c.subject(), c.serial(), Day(c.not_after()),
                     c.verifies_clients() ? ", client certificates required" : "");
}

}  // namespace

TlsReloader::TlsReloader(std::string listener, TlsFiles files, metrics::Counter& ok, metrics::Counter& failed,
                         metrics::Gauge& not_after)
    : listener_(std::move(listener)), files_(std::move(files)), ok_(ok), failed_(failed), not_after_(not_after) {}

Result<std::unique_ptr<TlsReloader>> TlsReloader::Start(const std::string& listener, const TlsFiles& files,
                                                        metrics::Registry* registry, const Metrics& names) {
  if (files.cert.empty() || files.key.empty()) {
    return Status::InvalidArgument(fmt::format("{}: TLS needs both {}.tls_cert and {}.tls_key{}", listener, listener, listener,
                                               files.client_ca.empty() ? "" : fmt::format(" ({}.tls_client_ca is set)", listener)));
  }
  std::unique_ptr<TlsReloader> r(new TlsReloader(listener, files, registry->GetCounter(names.reloads, {{"result", "ok"}}),
                                                 registry->GetCounter(names.reloads, {{"result", "failed"}}),
                                                 registry->GetGauge(names.not_after)));
  r->seen_ = r->Stat();
  auto loaded = TlsContext::Load(files.cert, files.key, files.client_ca);
  if (!loaded.ok()) return Status::InvalidArgument(listener + ": " + loaded.status().message());
  r->not_after_.Set(static_cast<double>((*loaded)->not_after()));
  spdlog::info("{}: TLS certificate {}", listener, Describe(**loaded));
  r->current_.store(std::move(*loaded));
  if (files.reload_interval_us > 0) r->poller_ = std::thread([p = r.get()] { p->Poll(); });
  return r;
}

TlsReloader::~TlsReloader() {
  {
    std::lock_guard lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (poller_.joinable()) poller_.join();
}

TlsReloader::Signature TlsReloader::Stat() const {
  auto one = [](const std::string& path) {
    Signature::File f;
    struct stat st {};
    if (path.empty() || ::stat(path.c_str(), &st) != 0) return f;  // missing: size -1
    f.dev = st.st_dev;
    f.ino = st.st_ino;
    f.size = st.st_size;
    f.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
    f.ctime_ns = int64_t{st.st_ctim.tv_sec} * 1'000'000'000 + st.st_ctim.tv_nsec;
    return f;
  };
  return {one(files_.cert), one(files_.key), one(files_.client_ca)};
}

bool TlsReloader::Check(bool force, const char* why) {
  std::lock_guard lock(check_mu_);
  Signature now = Stat();
  if (!force && now == seen_) return false;
  if (!force) {
    // A file written in the last second may be half-written, or its partner not yet: looked at
    // again at the next check, once the writes have settled.
    timespec real{};
    ::clock_gettime(CLOCK_REALTIME, &real);
    int64_t now_ns = int64_t{real.tv_sec} * 1'000'000'000 + real.tv_nsec;
    for (const Signature::File* f : {&now.cert, &now.key, &now.client_ca}) {
      if (now_ns - std::max(f->mtime_ns, f->ctime_ns) < kSettleNs) return false;
    }
  }
  seen_ = now;
  auto loaded = TlsContext::Load(files_.cert, files_.key, files_.client_ca);
  if (!loaded.ok()) {
    failed_.Add();
    std::shared_ptr<const TlsContext> old = current_.load();
    spdlog::error("{}: TLS reload ({}) refused, the certificate in use stays ({}): {}", listener_, why, Describe(*old),
                  loaded.status().message());
    return false;
  }
  ok_.Add();
  not_after_.Set(static_cast<double>((*loaded)->not_after()));
  spdlog::info("{}: TLS reloaded ({}): new connections get {}", listener_, why, Describe(**loaded));
  current_.store(std::move(*loaded));
  return true;
}

void TlsReloader::Poll() {
  std::unique_lock lock(stop_mu_);
  while (!stop_cv_.wait_for(lock, std::chrono::microseconds(files_.reload_interval_us), [this] { return stopping_; })) {
    lock.unlock();
    Check(/*force=*/false, "a file changed");
    lock.lock();
  }
}

}  // namespace mare
