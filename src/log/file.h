// The few POSIX file operations the log needs, with errors as Status: whole-file reads,
// atomic replacement (temp file, fsync, rename, fsync directory), directory listing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace mare::log::file {

// NotFound if the file does not exist.
Result<std::string> ReadAll(const std::string& path);

// Replaces path with contents so that a crash leaves either the old or the new file:
// writes path + ".tmp", fsyncs it, renames it over path, fsyncs the directory.
Status WriteAtomically(const std::string& path, std::string_view contents);

Status SyncDir(const std::string& dir);

// mkdir -p.
Status CreateDirs(const std::string& dir);

// Entry names, without "." and "..". NotFound if the directory does not exist.
Result<std::vector<std::string>> ListDir(const std::string& dir);

bool Exists(const std::string& path);

// pread/pwrite until all bytes are done (or EOF for reads: *done says how many were read).
Status ReadAt(int fd, int64_t position, char* out, size_t n, size_t* done, const std::string& path);
Status WriteAt(int fd, int64_t position, const char* data, size_t n, const std::string& path);

}  // namespace mare::log::file
