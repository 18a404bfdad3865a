#include "processors/forecast/model_skill.h"

#include "common/json_out.h"
#include "common/time.h"

namespace mare::forecast {

std::string SkillValue(uint64_t sensor_id, std::string_view field, const SeriesSkill& skill) {
  JsonOut j;
  j.Open('{');
  j.Key("sensor_id").Int(static_cast<int64_t>(sensor_id));
  j.Key("field").Str(field);
  j.Key("as_of").Str(FormatTimestamp(skill.as_of * kMicrosPerHour));
  j.Key("days").Int(skill.days);
  j.Key("in_use").Str(skill.in_use);
  j.Key("leading").Str(skill.leading);
  j.Key("models").Open('[');
  for (const ModelSkill& m : skill.models) {
    j.Open('{');
    j.Key("model").Str(m.model);
    j.Key("hours").Int(m.hours);
    j.Key("mae").Num(m.mae);
    j.Key("skill").Num(m.skill);
    j.Key("weight").Num(m.weight);
    j.Close('}');
  }
  j.Close(']');
  j.Close('}');
  return j.Take();
}

}  // namespace mare::forecast
