#include "reading/dead_letter.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
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

// FNV-1a, 64 bits: names a truncated entry's whole raw bytes, so that two rejects of the same
// big body can be told apart from two that only begin alike.
uint64_t Fnv1a64(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

Status OpenAndScan(const std::string& path, int* fd, uint64_t* entries, uint64_t* bytes) {
  *fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (*fd < 0) return Status::FromErrno("open " + path, errno);
  Status s = ScanEntries(*fd, entries, bytes);
  if (s.ok() && ::ftruncate(*fd, static_cast<off_t>(*bytes)) != 0) s = Status::FromErrno("truncate " + path, errno);
  if (s.ok() && ::lseek(*fd, 0, SEEK_END) < 0) s = Status::FromErrno("seek " + path, errno);
  if (!s.ok()) ::close(*fd);
  return s;
}

}  // namespace

Result<std::unique_ptr<DeadLetter>> DeadLetter::Open(const DeadLetterOptions& options, metrics::Registry* registry) {
  // A file over its share (kept whole by an older mare, say) is rotated unread: reading it
  // whole to count its entries could take more memory than the bound is for.
  struct stat st;
  if (::stat(options.path.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) > options.max_bytes / 2 &&
      ::rename(options.path.c_str(), (options.path + ".1").c_str()) != 0) {
    return Status::FromErrno("rotate " + options.path, errno);
  }
  int fd = -1;
  uint64_t entries = 0, bytes = 0;
  MARE_RETURN_IF_ERROR(OpenAndScan(options.path, &fd, &entries, &bytes));
  return std::unique_ptr<DeadLetter>(new DeadLetter(options, fd, entries, bytes, registry));
}

DeadLetter::DeadLetter(const DeadLetterOptions& options, int fd, uint64_t kept, uint64_t bytes, metrics::Registry* registry)
    : options_(options),
      fd_(fd),
      kept_(kept),
      bytes_(bytes),
      written_(registry->GetCounter(dead_letter_metrics::kReadingsWritten)),
      dropped_(registry->GetCounter(dead_letter_metrics::kReadingsDropped)),
      truncated_(registry->GetCounter(dead_letter_metrics::kReadingsTruncated)),
      rotations_(registry->GetCounter(dead_letter_metrics::kFilesRotated)) {}

DeadLetter::~DeadLetter() {
  if (fd_ >= 0) ::close(fd_);
}

Status DeadLetter::Rotate() {
  if (::rename(options_.path.c_str(), (options_.path + ".1").c_str()) != 0) {
    return Status::FromErrno("rotate " + options_.path, errno);
  }
  int fd = ::open(options_.path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno("open " + options_.path, errno);
  ::close(fd_);
  fd_ = fd;
  kept_.store(0, std::memory_order_relaxed);
  bytes_ = 0;
  rotations_.Add();
  return Status::OK();
}

void DeadLetter::Add(std::string_view source, std::string_view reason, std::string_view detail, std::string_view raw) {
  if (options_.max_entries == 0) {
    dropped_.Add();
    return;
  }
  std::string_view kept_raw = raw.substr(0, std::min<size_t>(raw.size(), options_.max_entry_bytes));
  std::string prefix;
  if (kept_raw.size() < raw.size()) {
    prefix = fmt::format("[first {} of {} bytes kept, fnv1a64 {:016x}] ", kept_raw.size(), raw.size(), Fnv1a64(raw));
    truncated_.Add();
  }
  std::lock_guard lock(mu_);
  scratch_.clear();
  fmt::format_to(std::back_inserter(scratch_), "{} {} {} {} {}{}\n", FormatTimestamp(NowMicros()), source, reason,
                 kept_raw.size(), prefix, OneLine(detail));
  scratch_.append(kept_raw);
  scratch_.push_back('\n');
  // Each file holds half the bound, so the two hold at most the bound and at least the newest half.
  if (kept_.load(std::memory_order_relaxed) > 0 &&
      (bytes_ + scratch_.size() > options_.max_bytes / 2 ||
       kept_.load(std::memory_order_relaxed) + 1 > std::max<uint64_t>(1, options_.max_entries / 2))) {
    if (Status s = Rotate(); !s.ok()) {
      dropped_.Add();
      return;
    }
  }
  // One write per entry: O_APPEND-free but single-writer under the mutex.
  size_t done = 0;
  while (done < scratch_.size()) {
    ssize_t n = ::write(fd_, scratch_.data() + done, scratch_.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      // Take back a partial entry, so the file stays a sequence of whole ones.
      if (done > 0 && ::ftruncate(fd_, static_cast<off_t>(bytes_)) == 0) ::lseek(fd_, static_cast<off_t>(bytes_), SEEK_SET);
      dropped_.Add();
      return;
    }
    done += static_cast<size_t>(n);
  }
  bytes_ += scratch_.size();
  kept_.fetch_add(1, std::memory_order_relaxed);
  written_.Add();
}

}  // namespace mare
