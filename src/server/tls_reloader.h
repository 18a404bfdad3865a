// TlsReloader: a listener's TLS certificate, key and client CA (TlsFiles), read again while
// mare runs, so that a renewed certificate is served without a restart. Used by the HTTP server
// and the PostgreSQL wire protocol server alike; TlsFiles holds the options both take.
//
// Every reload_interval the files are stat'ed (inode, size, modification and change times, so
// that a rename over the file and a Kubernetes secret's symlink swap are both seen); Reload()
// does it at once (SIGHUP). A file changed less than a second ago is left for the next check,
// so that a copy in progress, or a certificate whose key is not written yet, is not read half
// done (write new files aside and rename them into place to be safe whatever the timing). A
// changed set is read into a new TlsContext: on success it becomes
// the current one, which the next connection's handshake uses; connections already open keep
// the context they started with (each SSL holds a reference to its SSL_CTX). A set that cannot
// serve (a file unreadable or half-written, a key that is not the certificate's, a CA bundle
// without a certificate) is refused with one error line naming the file and why, counted as
// <listener>_tls_reloads_total{result="failed"}, and the certificate in use stays; it is tried
// again when one of the files changes again.
//
// Why a context per connection rather than an SSL_CTX client-hello callback that switches a
// new SSL to the current context (SSL_set_SSL_CTX): mare's own TlsSession makes every SSL of
// both servers (cpp-httplib's SSLServer is not used), so taking the current context when the
// session is made is simpler and switches everything at once (certificate, key, client CA,
// verify mode), which SSL_set_SSL_CTX does not for the verify settings.
//
//   auto tls = TlsReloader::Start("http", {.cert = c, .key = k}, &registry, metrics);
//   std::shared_ptr<const TlsContext> now = (*tls)->Current();  // per new connection
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/metrics.h"
#include "common/status.h"
#include "server/tls.h"

namespace mare {

// A listener's TLS options: <listener>.tls_cert, tls_key, tls_client_ca, tls_reload_interval.
struct TlsFiles {
  // A PEM certificate chain (the server's certificate first) and its unencrypted PEM key.
  std::string cert;
  std::string key;
  // A PEM bundle of CA certificates: set, every client must present a certificate one of them
  // signed, or the handshake fails (mutual TLS). Empty: no client certificate is asked for.
  std::string client_ca;
  // How often the files are checked for a change (0: only on SIGHUP).
  int64_t reload_interval_us = 5'000'000;

  bool enabled() const { return !cert.empty() || !key.empty() || !client_ca.empty(); }
};

class TlsReloader {
 public:
  // The names of the listener's reload metrics (each component declares its own).
  struct Metrics {
    metrics::Metric reloads;    // counter, {result="ok"|"failed"}
    metrics::Metric not_after;  // gauge: the current certificate's end of validity, Unix seconds
  };

  // Reads the files once (an error here is the listener's start-up error, prefixed with
  // `listener`: "http", "pgwire") and starts checking them every files.reload_interval_us.
  static Result<std::unique_ptr<TlsReloader>> Start(const std::string& listener, const TlsFiles& files,
                                                    metrics::Registry* registry, const Metrics& names);
  ~TlsReloader();
  TlsReloader(const TlsReloader&) = delete;
  TlsReloader& operator=(const TlsReloader&) = delete;

  // The context a new connection's session is made with.
  std::shared_ptr<const TlsContext> Current() const { return current_.load(); }
  // Reads the files now, changed or not (SIGHUP): true when a new context is in use.
  bool Reload() { return Check(/*force=*/true, "SIGHUP"); }

 private:
  // What stat says of the three files: a change in any is a new set to read.
  struct Signature {
    struct File {
      uint64_t dev = 0, ino = 0;
      int64_t size = -1, mtime_ns = 0, ctime_ns = 0;
      bool operator==(const File&) const = default;
    };
    File cert, key, client_ca;
    bool operator==(const Signature&) const = default;
  };

  TlsReloader(std::string listener, TlsFiles files, metrics::Counter& ok, metrics::Counter& failed, metrics::Gauge& not_after);
  Signature Stat() const;
  bool Check(bool force, const char* why);
  void Poll();

  const std::string listener_;
  const TlsFiles files_;
  metrics::Counter& ok_;
  metrics::Counter& failed_;
  metrics::Gauge& not_after_;
  std::atomic<std::shared_ptr<const TlsContext>> current_;
  std::mutex check_mu_;  // one Check at a time (the poller and SIGHUP)
  Signature seen_;       // the set last read, whether it loaded or not
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread poller_;
};

}  // namespace mare
