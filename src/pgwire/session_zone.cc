#include "pgwire/session_zone.h"

#include <dirent.h>
#include <sys/stat.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <vector>

#include <fmt/format.h>

#include "common/time.h"

namespace mare::pgwire {
namespace {

constexpr int kMaxOffsetSeconds = 15 * 3600;  // PostgreSQL's limit on a fixed offset (14:59:59 and less)

bool EqualsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

std::string ZoneDir() {
  const char* dir = std::getenv("TZDIR");  // as abseil itself reads it
  return dir != nullptr && *dir != '\0' ? dir : "/usr/share/zoneinfo";
}

// The database's own spelling of a zone name given in any case ("europe/paris" ->
// "Europe/Paris"), as PostgreSQL finds it; "" when no file of the database has that name. Only
// plain names of letters, digits, '_', '-', '+' and '/' are looked up: never a path out of it.
std::string FindZoneName(std::string_view name) {
  if (name.empty() || name.size() > 100 || name.front() == '/' || name.back() == '/') return "";
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '+' || c == '/')) return "";
  }
  std::string dir = ZoneDir(), found;
  size_t start = 0;
  for (;;) {
    size_t slash = name.find('/', start);
    std::string_view part = name.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (part.empty()) return "";
    std::string match;
    if (DIR* d = ::opendir(dir.c_str())) {
      while (dirent* e = ::readdir(d)) {
        std::string_view entry = e->d_name;
        if (entry == part || (match.empty() && EqualsNoCase(entry, part))) match = entry;
      }
      ::closedir(d);
    }
    if (match.empty()) return "";
    dir += "/" + match;
    found += (found.empty() ? "" : "/") + match;
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return "";
  return found;
}

// "5", "05:30", "5:30:15" (hours first): seconds, or -1.
int ParseHms(std::string_view s) {
  int parts[3] = {0, 0, 0}, n = 0;
  size_t i = 0;
  while (n < 3) {
    size_t digits = 0;
    int v = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])) && digits < 2) {
      v = v * 10 + (s[i] - '0');
      ++i, ++digits;
    }
    if (digits == 0) return -1;
    parts[n++] = v;
    if (i == s.size()) break;
    if (s[i] != ':') return -1;
    ++i;
  }
  if (i != s.size() || parts[1] > 59 || parts[2] > 59) return -1;
  return parts[0] * 3600 + parts[1] * 60 + parts[2];
}

// "<+05:30>-05:30": PostgreSQL's name for a zone of a fixed offset.
std::string FixedName(int east) {
  int a = std::abs(east);
  std::string hms = a % 60 != 0 ? fmt::format("{:02}:{:02}:{:02}", a / 3600, a / 60 % 60, a % 60)
                    : a % 3600 != 0 ? fmt::format("{:02}:{:02}", a / 3600, a / 60 % 60)
                                    : fmt::format("{:02}", a / 3600);
  return fmt::format("<{}{}>{}{}", east >= 0 ? '+' : '-', hms, east >= 0 ? '-' : '+', hms);
}

// POSIX "STD offset" without daylight-saving rules: a name of 3+ letters or <...>, then hours
// WEST of UTC ("UTC+3" is three hours behind), as *east seconds east; false for anything else.
bool ParsePosixFixed(std::string_view s, int* east) {
  size_t i = 0;
  if (!s.empty() && s[0] == '<') {
    i = s.find('>');
    if (i == std::string_view::npos || i < 2) return false;
    ++i;
  } else {
    while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i]))) ++i;
    if (i < 3) return false;
  }
  std::string_view rest = s.substr(i);
  if (rest.empty()) return false;
  int sign = 1;
  if (rest[0] == '+' || rest[0] == '-') {
    sign = rest[0] == '-' ? -1 : 1;
    rest.remove_prefix(1);
  }
  int west = ParseHms(rest);
  if (west < 0 || west > 24 * 3600) return false;
  *east = -sign * west;
  return true;
}

}  // namespace

SessionZone::SessionZone() : zone_(absl::UTCTimeZone()) {}

Result<SessionZone> SessionZone::Parse(std::string_view setting, std::string* shown) {
  auto invalid = [&] {
    return Status::InvalidArgument(fmt::format(
        "invalid value for parameter \"TimeZone\": \"{}\" (a tz database name such as Europe/Paris or UTC, hours east of UTC "
        "such as -7, or a POSIX offset such as UTC+3)",
        setting));
  };
  std::string_view s = setting;
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  auto fixed = [&](int east, std::string name) -> Result<SessionZone> {
    if (std::abs(east) >= kMaxOffsetSeconds) return invalid();
    SessionZone z;
    z.utc_ = east == 0 && (name == "UTC" || name.starts_with("<+00>"));
    z.zone_ = absl::FixedTimeZone(east);
    *shown = std::move(name);
    return z;
  };
  // INTERVAL '+05:30' [HOUR TO MINUTE]: hours east, as the SQL standard writes them.
  if (s.size() > 8 && EqualsNoCase(s.substr(0, 8), "interval")) {
    size_t q1 = s.find('\''), q2 = q1 == std::string_view::npos ? q1 : s.find('\'', q1 + 1);
    if (q2 == std::string_view::npos) return invalid();
    std::string_view v = s.substr(q1 + 1, q2 - q1 - 1);
    int sign = 1;
    if (!v.empty() && (v[0] == '+' || v[0] == '-')) {
      sign = v[0] == '-' ? -1 : 1;
      v.remove_prefix(1);
    }
    int secs = ParseHms(v);
    if (secs < 0) return invalid();
    return fixed(sign * secs, FixedName(sign * secs));
  }
  // A number: hours east of UTC (SET TIME ZONE -7, '5.5').
  if (!s.empty() && (std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '+' || s[0] == '-' || s[0] == '.')) {
    std::string text(s);
    char* end = nullptr;
    double hours = std::strtod(text.c_str(), &end);
    if (end == text.c_str() + text.size() && std::isfinite(hours) && std::abs(hours) < 15) {
      int east = static_cast<int>(std::lround(hours * 3600));
      return fixed(east, FixedName(east));
    }
    return invalid();
  }
  std::string name = FindZoneName(s);
  if (!name.empty()) {
    SessionZone z;
    if (!absl::LoadTimeZone(name, &z.zone_)) return invalid();
    z.utc_ = name == "UTC" || name == "Etc/UTC";
    *shown = name;
    return z;
  }
  int east = 0;
  if (ParsePosixFixed(s, &east)) return fixed(east, std::string(s));
  return invalid();
}

int SessionZone::OffsetSeconds(int64_t unix_micros) const {
  if (utc_) return 0;
  return zone_.At(absl::FromUnixMicros(unix_micros)).offset;
}

int64_t SessionZone::FromLocal(int64_t local_micros) const {
  if (utc_) return local_micros;
  int64_t secs = local_micros / kMicrosPerSecond, frac = local_micros % kMicrosPerSecond;
  if (frac < 0) secs -= 1, frac += kMicrosPerSecond;
  CivilTime c = ToCivil(secs * kMicrosPerSecond);
  absl::TimeZone::TimeInfo info = zone_.At(absl::CivilSecond(c.year, c.month, c.day, c.hour, c.minute, c.second));
  // In a gap or an overlap, the offset in force before the transition (PostgreSQL's choice).
  return absl::ToUnixMicros(info.pre) + frac;
}

void AppendOffsetText(int seconds_east, std::string* out) {
  int a = std::abs(seconds_east);
  char b[10];
  int n = 0;
  b[n++] = seconds_east < 0 ? '-' : '+';
  auto put2 = [&](int v) {
    b[n++] = static_cast<char>('0' + v / 10 % 10);
    b[n++] = static_cast<char>('0' + v % 10);
  };
  put2(a / 3600);
  if (a % 3600 != 0) {
    b[n++] = ':';
    put2(a / 60 % 60);
    if (a % 60 != 0) {
      b[n++] = ':';
      put2(a % 60);
    }
  }
  out->append(b, static_cast<size_t>(n));
}

}  // namespace mare::pgwire
