// NDBC "standard meteorological" archives (https://www.ndbc.noaa.gov/measdes.shtml):
// whitespace-separated columns under a header line "YY MM DD hh mm WDIR WSPD ..." (or
// "#YY ...", followed by a "#yr mo dy ..." units line; older files use "YYYY" and lack "mm"),
// LF or CRLF line endings, times in UTC.
//
// Columns become fields: WDIR wind_direction, WSPD wind_speed, GST wind_gust, WVHT
// wave_height, DPD dominant_wave_period, APD average_wave_period, MWD mean_wave_direction,
// PRES pressure, ATMP temperature, WTMP water_temperature, DEWP dew_point, VIS visibility,
// TIDE tide (older names WD and BAR are accepted); other columns keep their name in lower case.
//
// Missing values are absent fields. Each column has its own code, the all-9s value of its
// width: WDIR and MWD 999; WSPD, GST and VIS 99.0; WVHT, DPD, APD and TIDE 99.00; PRES
// 9999.0; ATMP, WTMP and DEWP 999.0. So a WDIR of 99 degrees is a real value. In columns
// without a known code, a token of two or more 9s (optionally ".0...") is missing; "MM" (the
// realtime files' marker) is missing everywhere.
#pragma once

#include <memory>
#include <string>

#include "archive/archive.h"

namespace mare::archive {

Result<std::unique_ptr<ArchiveReader>> OpenNdbcArchive(const std::string& path, const ArchiveOptions& options);

}  // namespace mare::archive
