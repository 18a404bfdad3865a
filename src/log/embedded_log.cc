#include "log/embedded_log.h"
