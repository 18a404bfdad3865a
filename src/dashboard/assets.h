// The dashboard's files (web/, built by vite), embedded in the mare binary at build time by
// embed_assets.cmake: each with its URL path, content type and gzip-compressed bytes, so that
// `mare run` alone serves the dashboard, with nothing installed beside it.
#pragma once

#include <cstddef>
#include <span>

namespace mare::dashboard {

struct Asset {
  const char* path;          // "/index.html", "/assets/index-Dv3InHsb.js"
  const char* content_type;  // "text/javascript; charset=utf-8"
  const unsigned char* gzip;
  size_t gzip_size;
  size_t size;     // uncompressed
  bool immutable;  // content-hashed name (under /assets/): cacheable forever
};

// Every embedded file, sorted by path.
std::span<const Asset> Assets();

}  // namespace mare::dashboard
