#include "sinks/http_client.h"

#include <curl/curl.h>
#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <mutex>

namespace mare::sinks {
namespace {

size_t AppendBody(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

}  // namespace

Status GzipCompress(std::string_view in, std::string* out) {
  out->clear();
  z_stream z{};
  // 15 window bits + 16: a gzip header and trailer instead of zlib's.
  if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return Status::IOError("gzip: deflateInit2 failed");
  }
  out->resize(deflateBound(&z, static_cast<uLong>(in.size())) + 32);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out->data());
  z.avail_out = static_cast<uInt>(out->size());
  int rc = deflate(&z, Z_FINISH);
  size_t written = z.total_out;
  deflateEnd(&z);
  if (rc != Z_STREAM_END) return Status::IOError(fmt::format("gzip: deflate returned {}", rc));
  out->resize(written);
  return Status::OK();
}

struct HttpClient::Impl {
  HttpClientOptions options;
  CURL* curl = nullptr;
  std::string url, compressed, auth;
};

HttpClient::HttpClient(HttpClientOptions options) : impl_(std::make_unique<Impl>()) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  impl_->options = std::move(options);
  while (!impl_->options.url.empty() && impl_->options.url.back() == '/') impl_->options.url.pop_back();
  if (!impl_->options.user.empty()) impl_->auth = impl_->options.user + ":" + impl_->options.password;
}

HttpClient::~HttpClient() {
  if (impl_->curl) curl_easy_cleanup(impl_->curl);
}

Result<HttpClient::Response> HttpClient::Send(std::string_view method, std::string_view path,
                                                                std::string_view body, std::string_view content_type) {
  Impl& im = *impl_;
  // One easy handle for the client's life: libcurl keeps its connection open between requests.
  if (!im.curl) {
    im.curl = curl_easy_init();
    if (!im.curl) return Status::IOError("curl_easy_init failed");
  }
  CURL* c = im.curl;
  curl_easy_reset(c);  // keeps the connection cache
  im.url = im.options.url;
  im.url.append(path);
  Response response;
  curl_easy_setopt(c, CURLOPT_URL, im.url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(im.options.timeout_us / 1000));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::min<int64_t>(im.options.timeout_us / 1000, 5000)));
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");  // whatever libcurl can decode
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &response.body);
  if (!im.auth.empty()) {
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(c, CURLOPT_USERPWD, im.auth.c_str());
  }
  std::string method_z(method);
  if (method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (method != "GET" || !body.empty()) {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method_z.c_str());
  }
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, fmt::format("Content-Type: {}", content_type).c_str());
  headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip for large bodies
  std::string_view sent = body;
  if (!body.empty()) {
    if (im.options.gzip) {
      MARE_RETURN_IF_ERROR(GzipCompress(body, &im.compressed));
      sent = im.compressed;
      headers = curl_slist_append(headers, "Content-Encoding: gzip");
    }
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, sent.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(sent.size()));
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    return Status::Unavailable(fmt::format("{} {}{}: {}", method, im.options.url, path, curl_easy_strerror(rc)));
  }
  bytes_sent_ += sent.size();
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

}  // namespace mare::sinks
