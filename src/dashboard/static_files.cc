#include "dashboard/static_files.h"

#include <httplib.h>
#include <zlib.h>

#include <memory>

namespace mare::dashboard {

const Asset* FindAsset(std::span<const Asset> assets, std::string_view path) {
  if (path == "/") path = "/index.html";
  for (const Asset& a : assets) {
    if (path == a.path) return &a;
  }
  return nullptr;
}

std::string Inflate(const Asset& asset) {
  std::string out(asset.size, '\0');
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return {};  // 16: a gzip wrapper
  zs.next_in = const_cast<Bytef*>(asset.gzip);
  zs.avail_in = static_cast<uInt>(asset.gzip_size);
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = inflate(&zs, Z_FINISH);
  bool ok = rc == Z_STREAM_END && zs.total_out == asset.size;
  inflateEnd(&zs);
  return ok ? out : std::string();
}

namespace {

bool AcceptsGzip(const httplib::Request& req) {
  // "gzip", "gzip, deflate, br", but not "gzip;q=0".
  std::string accept = req.get_header_value("Accept-Encoding");
  size_t at = accept.find("gzip");
  if (at == std::string::npos) return false;
  size_t end = accept.find(',', at);
  std::string params = accept.substr(at + 4, end == std::string::npos ? std::string::npos : end - at - 4);
  return params.find("q=0") == std::string::npos || params.find("q=0.") != std::string::npos;
}

void Serve(const Asset& a, const httplib::Request& req, httplib::Response& res) {
  res.set_header("Cache-Control", a.immutable ? "public, max-age=31536000, immutable" : "no-cache");
  res.set_header("Vary", "Accept-Encoding");
  res.set_header("X-Content-Type-Options", "nosniff");
  // A provider of known length: cpp-httplib sends it as it is, without compressing it again.
  if (AcceptsGzip(req)) {
    res.set_header("Content-Encoding", "gzip");
    res.set_content_provider(a.gzip_size, a.content_type, [&a](size_t offset, size_t length, httplib::DataSink& sink) {
      return sink.write(reinterpret_cast<const char*>(a.gzip) + offset, length);
    });
    return;
  }
  auto body = std::make_shared<std::string>(Inflate(a));
  if (body->size() != a.size) {
    res.status = 500;
    res.set_content("dashboard asset damaged: " + std::string(a.path) + "\n", "text/plain");
    return;
  }
  res.set_content_provider(body->size(), a.content_type, [body](size_t offset, size_t length, httplib::DataSink& sink) {
    return sink.write(body->data() + offset, length);
  });
}

}  // namespace

void AddStaticRoutes(HttpServer* server, std::span<const Asset> assets) {
  auto handler = [assets](const httplib::Request& req, httplib::Response& res) {
    const Asset* a = FindAsset(assets, req.path);
    if (a == nullptr) {
      res.status = 404;
      res.set_content("not found\n", "text/plain");
      return;
    }
    Serve(*a, req, res);
  };
  server->routes().Get("/", handler);
  server->routes().Get("/index.html", handler);
  server->routes().Get(R"(/assets/[A-Za-z0-9._-]+)", handler);
}

}  // namespace mare::dashboard
