#include "processors/forecast/model.h"

namespace mare::forecast {

double LastValue(const HourlySeries& series, int64_t origin) { return series.LastBefore(origin, 168); }

}  // namespace mare::forecast
