// SessionZone: a connection's TimeZone setting (startup parameter, SET TIME ZONE, SET TimeZone)
// read as PostgreSQL reads it, with the rules of the system's tz database (/usr/share/zoneinfo,
// or $TZDIR) through abseil's time-zone library: timestamptz text is written in it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <absl/time/time.h>

#include "common/status.h"

namespace mare::pgwire {

class SessionZone {
 public:
  SessionZone();  // UTC

  // What PostgreSQL's TimeZone takes (docs/formats/pgwire.md, "Time zones"): a tz database name,
  // found case-insensitively ("Europe/Paris", "europe/paris", "UTC", "EST5EDT"); a number of hours
  // east of UTC ("-7", "5.5"); INTERVAL '+05:30' [HOUR TO MINUTE]; or a POSIX fixed offset
  // "<name><hours west>" ("UTC+3", "GMT-02:00", "<+03>-3": JDBC sends its JVM's GMT+hh:mm zones
  // so). Anything else is an error naming the value. *shown is what SHOW and ParameterStatus
  // then say (the database's spelling of a name, "<+05:30>-05:30" for hours).
  static Result<SessionZone> Parse(std::string_view setting, std::string* shown);

  bool is_utc() const { return utc_; }
  // Seconds east of UTC at this instant (microseconds since 1970).
  int OffsetSeconds(int64_t unix_micros) const;
  // The instant whose wall-clock time here is `local_micros` (a civil time written as
  // microseconds since 1970 as if it were UTC): in a gap, the time after it, and of two, the
  // earlier, as PostgreSQL resolves them.
  int64_t FromLocal(int64_t local_micros) const;

 private:
  bool utc_ = true;
  absl::TimeZone zone_;
};

// PostgreSQL's ISO form of an offset: "+00", "+05:30", "-00:09:21".
void AppendOffsetText(int seconds_east, std::string* out);

}  // namespace mare::pgwire
