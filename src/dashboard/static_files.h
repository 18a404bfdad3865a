// Serves the embedded dashboard (assets.h): GET / is index.html, GET /assets/... the built
// files. Each is sent gzip-compressed as embedded when the client accepts gzip (browsers do),
// else inflated. Content-hashed files are cacheable for a year; index.html is revalidated.
#pragma once

#include <span>
#include <string>

#include "dashboard/assets.h"
#include "server/http_server.h"

namespace mare::dashboard {

void AddStaticRoutes(HttpServer* server, std::span<const Asset> assets);

// The asset at a URL path ("/" means "/index.html"), or nullptr.
const Asset* FindAsset(std::span<const Asset> assets, std::string_view path);

// The uncompressed bytes of an asset (empty if its gzip stream is damaged).
std::string Inflate(const Asset& asset);

}  // namespace mare::dashboard
