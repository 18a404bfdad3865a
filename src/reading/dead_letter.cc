#include "reading/dead_letter.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <string>
#include <vector>

#include "common/time.h"
#include "reading/dead_letter_metrics.h"

namespace mare {
namespace {

// Reads the whole file; returns the byte length of its complete entries and their count.
Status ScanEntries(int fd, uint64_t* entries, uint64_t* valid_bytes) {
  std::string content;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) return Status::FromErrno("read dead-letter file", errno);
    if (n == 0) break;
    content.append(buf, static_cast<size_t>(n));
  }
  size_t pos = 0;
  *entries = 0;
  while (pos < content.size()) {
    size_t eol = content.find('\n', pos);
    if (eol == std::string::npos) break;
    // Header: <time> <source> <reason> <raw length> <detail>
    std::string_view header(content.data() + pos, eol - pos);
    size_t field_start = 0;
    std::string_view fields[4];
    for (auto& f : fields) {
      size_t sp = header.find(' ', field_start);
      if (sp == std::string_view::npos) sp = header.size();
      f = header.substr(field_start, sp - field_start);
      field_start = sp + 1;
    }
    uint64_t raw_len = 0;
    auto [p, ec] = std::from_chars(fields[3].data(), fields[3].data() + fields[3].size(), raw_len);
    if (ec != std::errc() || p != fields[3].data() + fields[3].size()) break;
    size_t end = eol + 1 + raw_len + 1;
    if (end > content.size() || content[end - 1] != '\n') break;
    pos = end;
    ++*entries;
  }
  *valid_bytes = pos;
  return Status::OK();
}

std::string OneLine(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<DeadLetter>> DeadLetter::Open(const std::string& path, uint64_t max_entries,
                                                     metrics::Registry* registry) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno("open " + path, errno);
  uint64_t entries = 0, valid = 0;
  Status s = ScanEntries(fd, &entries, &valid);
  if (s.ok() && ::ftruncate(fd, static_cast<off_t>(valid)) != 0) s = Status::FromErrno("truncate " + path, errno);
  if (s.ok() && ::lseek(fd, 0, SEEK_END) < 0) s = Status::FromErrno("seek " + path, errno);
  if (!s.ok()) {
    ::close(fd);
    return s;
  }
  return std::unique_ptr<DeadLetter>(new DeadLetter(path, fd, entries, max_entries, registry));
}

DeadLetter::DeadLetter(std::string path, int fd, uint64_t kept, uint64_t max_entries, metrics::Registry* registry)
    : path_(std::move(path)),
      fd_(fd),
      kept_(kept),
      max_entries_(max_entries),
      written_(registry->GetCounter(dead_letter_metrics::kReadingsWritten)),
      dropped_(registry->GetCounter(dead_letter_metrics::kReadingsDropped)) {}

DeadLetter::~DeadLetter() { ::close(fd_); }

void DeadLetter::Add(std::string_view source, std::string_view reason, std::string_view detail, std::string_view raw) {
  if (kept_.load(std::memory_order_relaxed) >= max_entries_) {
    dropped_.Add();
    return;
  }
  std::lock_guard lock(mu_);
  if (kept_.load(std::memory_order_relaxed) >= max_entries_) {
    dropped_.Add();
    return;
  }
  scratch_.clear();
  fmt::format_to(std::back_inserter(scratch_), "{} {} {} {} {}\n", FormatTimestamp(NowMicros()), source, reason, raw.size(),
                 OneLine(detail));
  scratch_.append(raw);
  scratch_.push_back('\n');
  // One write per entry: O_APPEND-free but single-writer under the mutex.
  size_t done = 0;
  while (done < scratch_.size()) {
    ssize_t n = ::write(fd_, scratch_.data() + done, scratch_.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      dropped_.Add();
      return;
    }
    done += static_cast<size_t>(n);
  }
  kept_.fetch_add(1, std::memory_order_relaxed);
  written_.Add();
}

}  // namespace mare
