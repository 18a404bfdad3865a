#include "server/connection.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "common/time.h"
#include "server/http_metrics.h"
#include "server/socket_address.h"

namespace mare {

namespace {

thread_local Connection* current = nullptr;

constexpr size_t kBufferBytes = 64 * 1024;
// A chunked body (its size unknown) takes budget in steps of this much as it arrives.
constexpr size_t kBudgetStep = 64 * 1024;
// After refusing a body, what of it is still read and dropped before closing, so that the
// client sees the answer rather than a reset.
constexpr int64_t kDrainUs = 1'000'000;
constexpr size_t kDrainBytes = 4 << 20;

int PollMillis(int64_t left_us) { return static_cast<int>(std::min<int64_t>((left_us + 999) / 1000, 60'000)); }

std::string Seconds(int64_t us) { return fmt::format("{:g} s", static_cast<double>(us) / 1e6); }

bool HasToken(const std::string& header, std::string_view token) {
  std::string lower(header);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower.find(token) != std::string::npos;
}

}  // namespace

ConnectionMetrics::ConnectionMetrics(metrics::Registry* registry)
    : open(registry->GetGauge(http_metrics::kOpenConnections)),
      refused(registry->GetCounter(http_metrics::kConnectionsRefused)),
      header_timeouts(registry->GetCounter(http_metrics::kRequestsTimedOut, {{"phase", "headers"}})),
      body_timeouts(registry->GetCounter(http_metrics::kRequestsTimedOut, {{"phase", "body"}})),
      too_large(registry->GetCounter(http_metrics::kBodiesRefused, {{"reason", "too_large"}})),
      over_budget(registry->GetCounter(http_metrics::kBodiesRefused, {{"reason", "in_flight"}})),
      body_bytes_in_flight(registry->GetGauge(http_metrics::kInFlightBodyBytes)),
      tls_plaintext(registry->GetCounter(http_metrics::kTlsHandshakesFailed, {{"reason", "plaintext"}})),
      tls_timeouts(registry->GetCounter(http_metrics::kTlsHandshakesFailed, {{"reason", "timeout"}})),
      tls_failures(registry->GetCounter(http_metrics::kTlsHandshakesFailed, {{"reason", "error"}})),
      tls_client_certs(registry->GetCounter(http_metrics::kTlsHandshakesFailed, {{"reason", "client_certificate"}})) {}

Connection::Connection(int sock, int stop_fd, const HttpServerOptions& options, BodyBudget* budget, ConnectionMetrics* metrics,
                       const TlsContext* tls)
    : sock_(sock),
      stop_fd_(stop_fd),
      options_(options),
      budget_(budget),
      metrics_(metrics),
      tls_context_(tls),
      buffer_(new char[kBufferBytes]) {
  metrics_->open.Add(1);
}

Connection::~Connection() {
  EndRequest();
  metrics_->open.Add(-1);
}

Connection* Connection::Current() { return current; }

void Connection::Serve(const ProcessRequest& process) {
  current = this;
  const int max_requests = std::max(1, options_.keep_alive_max_requests);
  // The first request's first byte is due within header_timeout of the accept.
  int64_t wait_until = MonotonicMicros() + options_.header_timeout_us;
  if (tls_context_ && !Handshake(wait_until)) {
    CloseGracefully(must_close_ && !stopping_);
    current = nullptr;
    return;
  }
  for (int served = 0; served < max_requests; ++served) {
    if (!Buffered() && !WaitReadable(wait_until)) break;  // nothing came: close quietly
    BeginRequest(MonotonicMicros());
    bool last = served + 1 == max_requests;
    bool closed = false;
    bool answered = process(*this, last, closed, [this](httplib::Request& req) { OnHeaders(req); });
    if (timed_out_) {
      (phase_ == Phase::kHead ? metrics_->header_timeouts : metrics_->body_timeouts).Add();
      // cpp-httplib gives up silently when the request line itself is late.
      if (!wrote_ && head_bytes_seen_) {
        std::string text = fmt::format("request headers not received within {} (http.header_timeout)\n", Seconds(options_.header_timeout_us));
        WriteRaw(fmt::format("HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                             text.size(), text));
      }
      must_close_ = true;
    }
    bool again = answered && !closed && !must_close_ && !last && !stopping_;
    EndRequest();
    if (!again) break;
    wait_until = MonotonicMicros() + options_.idle_timeout_us;
  }
  CloseGracefully(must_close_ && !stopping_);
  current = nullptr;
}

bool Connection::Handshake(int64_t deadline_us) {
  if (!WaitReadable(deadline_us)) {
    if (timed_out_) {
      metrics_->tls_timeouts.Add();
      LogRefusedHandshake("no ClientHello within http.header_timeout");
    }
    return false;
  }
  unsigned char first = 0;
  if (::recv(sock_, &first, 1, MSG_PEEK | MSG_DONTWAIT) == 0) return false;  // closed before a byte: nothing to count
  if (!TlsSession::LooksLikeTls(sock_)) {
    // Said in the client's own language, before any session exists: write() is still plain.
    metrics_->tls_plaintext.Add();
    LogRefusedHandshake("plaintext sent to the HTTPS port");
    static constexpr std::string_view kText = "this port speaks HTTPS (http.tls_cert is set): send the request to https://\n";
    WriteRaw(fmt::format("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                         kText.size(), kText));
    must_close_ = true;  // the request is read and dropped, so that the client sees the answer
    return false;
  }
  tls_ = std::make_unique<TlsSession>(*tls_context_, sock_);
  while (true) {
    switch (tls_->Handshake()) {
      case TlsSession::Io::kDone:
        return true;
      case TlsSession::Io::kWantRead:
        if (WaitReadable(deadline_us)) continue;
        break;
      case TlsSession::Io::kWantWrite:
        if (WaitWritable(deadline_us)) continue;
        timed_out_ = true;
        break;
      case TlsSession::Io::kClosed:
      case TlsSession::Io::kFailed:
        (tls_->client_certificate_refused() ? metrics_->tls_client_certs : metrics_->tls_failures).Add();
        LogRefusedHandshake(tls_->error().empty() ? "closed by the client" : tls_->error());
        return false;
    }
    if (timed_out_) {
      metrics_->tls_timeouts.Add();
      LogRefusedHandshake("not completed within http.header_timeout");
    }
    return false;
  }
}

bool Connection::Buffered() const { return begin_ != end_ || (tls_ && tls_->HasBuffered()); }

void Connection::BeginRequest(int64_t now_us) {
  phase_ = Phase::kHead;
  deadline_us_ = now_us + options_.header_timeout_us;
  timed_out_ = false;
  head_bytes_seen_ = false;
  wrote_ = false;
  refusal_ = Refusal::kNone;
  has_length_ = chunked_ = false;
  content_length_ = body_read_ = 0;
  must_close_ = false;
}

void Connection::OnHeaders(httplib::Request& req) {
  phase_ = Phase::kBody;
  deadline_us_ = MonotonicMicros() + options_.body_timeout_us;
  chunked_ = HasToken(req.get_header_value("Transfer-Encoding"), "chunked");
  has_length_ = !chunked_ && req.has_header("Content-Length");
  if (has_length_) {
    const std::string& text = req.get_header_value("Content-Length");
    content_length_ = std::strtoull(text.c_str(), nullptr, 10);  // cpp-httplib reads it the same way
  }
  if (content_length_ > options_.max_body_bytes) {
    refusal_ = Refusal::kTooLarge;
    metrics_->too_large.Add();
  } else if (content_length_ > 0) {
    if (budget_->TryTake(content_length_)) {
      reserved_ = content_length_;
      metrics_->body_bytes_in_flight.Set(static_cast<double>(budget_->used()));
    } else {
      refusal_ = Refusal::kOverBudget;
      metrics_->over_budget.Add();
    }
  }
}

bool Connection::AdmitBody(size_t bytes) {
  if (refusal_ != Refusal::kNone) return false;
  body_read_ += bytes;
  // A chunked body's framing counts too: a few bytes per chunk.
  if (body_read_ > options_.max_body_bytes) {
    refusal_ = Refusal::kTooLarge;
    metrics_->too_large.Add();
    return false;
  }
  if (body_read_ > reserved_) {
    size_t more = std::max<size_t>(kBudgetStep, static_cast<size_t>(body_read_ - reserved_));
    if (!budget_->TryTake(more)) {
      refusal_ = Refusal::kOverBudget;
      metrics_->over_budget.Add();
      return false;
    }
    reserved_ += more;
    metrics_->body_bytes_in_flight.Set(static_cast<double>(budget_->used()));
  }
  return true;
}

void Connection::EndRequest() {
  if (at_end_) {
    auto f = std::move(at_end_);
    at_end_ = nullptr;
    f();
  }
  if (reserved_ > 0) {
    budget_->Give(reserved_);
    reserved_ = 0;
    metrics_->body_bytes_in_flight.Set(static_cast<double>(budget_->used()));
  }
}

int Connection::OnExpectContinue(httplib::Response& res) {
  if (refusal_ == Refusal::kNone) return 100;
  res.status = refusal_ == Refusal::kTooLarge ? 413 : 503;  // OnError writes the message
  return res.status;
}

bool Connection::OnError(httplib::Response& res) {
  std::string text;
  if (refusal_ == Refusal::kTooLarge) {
    res.status = 413;
    text = has_length_ ? fmt::format("request body of {} bytes exceeds http.max_body_bytes ({} bytes): send it in smaller batches\n",
                                     content_length_, options_.max_body_bytes)
                       : fmt::format("request body exceeds http.max_body_bytes ({} bytes): send it in smaller batches\n", options_.max_body_bytes);
  } else if (refusal_ == Refusal::kOverBudget) {
    res.status = 503;
    res.set_header("Retry-After", "1");
    text = fmt::format("too many request bodies in flight (http.max_in_flight_body_bytes = {} bytes): nothing from this request "
                       "was stored; send it again after Retry-After\n", budget_->capacity());
  } else if (timed_out_) {
    res.status = 408;
    text = phase_ == Phase::kHead
               ? fmt::format("request headers not received within {} (http.header_timeout)\n", Seconds(options_.header_timeout_us))
               : fmt::format("request body not received within {} (http.body_timeout): nothing from this request was stored\n",
                             Seconds(options_.body_timeout_us));
  } else if (res.status == 413 && res.body.empty()) {
    // cpp-httplib's own limit on form bodies of routes that take the body whole.
    text = "request body too large for this route: a form-encoded body (application/x-www-form-urlencoded, as curl --data "
           "sends) is limited to 8 KiB here; send it with --data-binary and a JSON or text content type\n";
  } else {
    return false;
  }
  res.set_content(text, "text/plain");
  return true;
}

void Connection::OnAnswer(httplib::Response& res) {
  if (refusal_ != Refusal::kNone || timed_out_) must_close_ = true;
  if (has_length_ && body_read_ < content_length_) must_close_ = true;  // the rest of the body would be read as a request
  if (chunked_ && res.status >= 400) must_close_ = true;                // whether its end was read is unknown
  if (must_close_ && res.get_header_value("Connection") != "close") {
    res.headers.erase("Keep-Alive");
    res.set_header("Connection", "close");
  }
}

Connection::Wake Connection::WaitFor(short events, int64_t deadline_us, bool stoppable) const {
  while (true) {
    int64_t left = deadline_us - MonotonicMicros();
    if (left <= 0) return Wake::kDeadline;
    pollfd fds[2] = {{sock_, events, 0}, {stop_fd_, POLLIN, 0}};
    int r = ::poll(fds, stoppable ? 2 : 1, PollMillis(left));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Wake::kError;
    }
    if (stoppable && fds[1].revents) return Wake::kStop;
    if (fds[0].revents) return Wake::kReady;  // ready, end of stream or an error: the call tells which
  }
}

bool Connection::WaitReadable(int64_t deadline_us) const {
  switch (WaitFor(POLLIN, deadline_us, true)) {
    case Wake::kReady: return true;
    case Wake::kDeadline: timed_out_ = true; return false;
    case Wake::kStop: stopping_ = true; return false;
    case Wake::kError: return false;
  }
  return false;
}

// The server's stop does not cut answers short: an acknowledged request gets its answer.
bool Connection::WaitWritable(int64_t deadline_us) const { return WaitFor(POLLOUT, deadline_us, false) == Wake::kReady; }

bool Connection::WaitWritable() const { return WaitWritable(MonotonicMicros() + options_.write_timeout_us); }

bool Connection::is_readable() const { return Buffered() || WaitReadable(deadline_us_); }

bool Connection::is_writable() const { return WaitWritable(); }

ssize_t Connection::read(char* ptr, size_t size) {
  if (phase_ == Phase::kBody && refusal_ != Refusal::kNone) return -1;
  while (begin_ == end_) {
    if (tls_) {
      size_t got = 0;
      switch (tls_->Read(buffer_.get(), kBufferBytes, &got)) {
        case TlsSession::Io::kDone:
          begin_ = 0;
          end_ = got;
          continue;
        case TlsSession::Io::kWantRead:
          if (!WaitReadable(deadline_us_)) return -1;
          continue;
        case TlsSession::Io::kWantWrite:
          if (!WaitWritable()) return -1;
          continue;
        case TlsSession::Io::kClosed:
          return 0;
        case TlsSession::Io::kFailed:
          return -1;
      }
      return -1;
    }
    if (!WaitReadable(deadline_us_)) return -1;
    ssize_t n = ::recv(sock_, buffer_.get(), kBufferBytes, MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (n <= 0) return n;
    begin_ = 0;
    end_ = static_cast<size_t>(n);
  }
  size_t m = std::min(size, end_ - begin_);
  if (phase_ == Phase::kBody && !AdmitBody(m)) return -1;
  if (phase_ == Phase::kHead) head_bytes_seen_ = true;
  std::memcpy(ptr, buffer_.get() + begin_, m);
  begin_ += m;
  return static_cast<ssize_t>(m);
}

// Writes everything or fails, as cpp-httplib expects of a blocking socket.
ssize_t Connection::write(const char* ptr, size_t size) {
  size_t done = 0;
  while (tls_ && done < size) {
    size_t n = 0;
    switch (tls_->Write(ptr + done, size - done, &n)) {
      case TlsSession::Io::kDone:
        done += n;
        wrote_ = true;
        break;
      case TlsSession::Io::kWantWrite:
        if (!WaitWritable()) return -1;
        break;
      case TlsSession::Io::kWantRead:  // the peer's part of the protocol first, within the same time
        if (WaitFor(POLLIN, MonotonicMicros() + options_.write_timeout_us, false) != Wake::kReady) return -1;
        break;
      case TlsSession::Io::kClosed:
      case TlsSession::Io::kFailed:
        return -1;
    }
  }
  while (done < size) {
    ssize_t n = ::send(sock_, ptr + done, size - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      done += static_cast<size_t>(n);
      wrote_ = true;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!WaitWritable()) return -1;
    } else {
      return -1;
    }
  }
  return static_cast<ssize_t>(size);
}


void Connection::get_remote_ip_and_port(std::string& ip, int& port) const { SocketAddress(sock_, true, &ip, &port); }

void Connection::LogRefusedHandshake(std::string_view why) {
  // A scanner can refuse thousands a second: the counters have them all, the log a sample.
  uint64_t held = 0;
  if (!metrics_->refused_handshakes_log.Allow(&held)) return;
  spdlog::warn("http: TLS handshake from {} refused: {}{}", PeerAddress(sock_), why,
               held > 0 ? fmt::format(" ({} more refused since the last such line)", held) : "");
}

void Connection::get_local_ip_and_port(std::string& ip, int& port) const { SocketAddress(sock_, false, &ip, &port); }

void Connection::WriteRaw(std::string_view text) {
  if (write(text.data(), text.size()) > 0) wrote_ = true;
}

void Connection::CloseGracefully(bool drain) {
  if (tls_) tls_->Close();
  ::shutdown(sock_, SHUT_WR);
  if (drain) {
    int64_t until = MonotonicMicros() + kDrainUs;
    size_t dropped = 0;
    while (dropped < kDrainBytes && WaitReadable(until)) {
      ssize_t n = ::recv(sock_, buffer_.get(), kBufferBytes, MSG_DONTWAIT);
      if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
      if (n <= 0) break;
      dropped += static_cast<size_t>(n);
    }
  }
  ::close(sock_);
}

void Connection::Refuse(int sock, ConnectionMetrics* metrics, bool tls) {
  metrics->refused.Add();
  if (tls) {
    ::close(sock);
    return;
  }
  // What has arrived of the request is read first: closing on unread bytes would reset the
  // connection, and the client could lose the answer.
  char scratch[16 * 1024];
  for (int i = 0; i < 4 && ::recv(sock, scratch, sizeof(scratch), MSG_DONTWAIT) > 0; ++i) {
  }
  static constexpr std::string_view kText = "too many connections (http.max_connections): try again shortly\n";
  std::string answer = fmt::format("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n"
                                   "Retry-After: 1\r\nConnection: close\r\n\r\n{}",
                                   kText.size(), kText);
  (void)::send(sock, answer.data(), answer.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  ::shutdown(sock, SHUT_WR);
  ::close(sock);
}

}  // namespace mare
