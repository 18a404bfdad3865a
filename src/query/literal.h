// The text inside INTERVAL '...' and TIMESTAMP '...' literals (docs/sql.md), also for the
// planner when a function takes an interval as a string: time_bucket('1h', ts).
//
//   int64_t us;
//   std::string why;
//   ParseIntervalText("1h30m", &us, &why);               // us == 5'400'000'000
//   ParseTimestampLiteral("2024-01-21 10:00", &us, &why);  // UTC microseconds
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mare::query {

// One or more "<number> <unit>" pairs, summed, to microseconds: "1 hour", "90 seconds",
// "1 day 2 hours", "1.5h", and compact "1h30m", "7d", "500ms". Units (any case):
// microsecond(s)/us, millisecond(s)/ms, second(s)/sec/s, minute(s)/min/m, hour(s)/h,
// day(s)/d, week(s)/w. Months and years are rejected: they have no fixed length.
// On failure *why is a complete message: "INTERVAL '2 fortnights': unknown unit \"fortnights\"; ...".
[[nodiscard]] bool ParseIntervalText(std::string_view text, int64_t* micros, std::string* why);

// True for the unit words that may follow a quoted number, as in INTERVAL '1' HOUR (the long
// forms, singular or plural, lower case; also month(s) and year(s), so they can be refused).
bool IsIntervalUnitWord(std::string_view lower_word);

// "2024-01-21" (midnight), "2024-01-21 10:06", "2024-01-21 10:06:04", "2024-01-21T10:06:04.095931",
// with an optional "Z" or "+HH:MM" zone; no zone means UTC. To UTC microseconds.
// On failure *why is a complete message: "TIMESTAMP '2024-13-01': month 13 out of range".
[[nodiscard]] bool ParseTimestampLiteral(std::string_view text, int64_t* micros, std::string* why);

}  // namespace mare::query
