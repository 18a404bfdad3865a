// ReturnFreeMemory: gives the heap's free pages back to the kernel after a step that allocated
// much and freed it (a store merge holds a day's block index), which malloc otherwise keeps.
#pragma once

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace mare {

// glibc keeps freed memory in its arenas (each thread's, with no top to shrink while anything
// lives above): without this the RSS keeps the highest peak any merge reached. A few ms.
inline void ReturnFreeMemory() {
#if defined(__GLIBC__)
  ::malloc_trim(0);
#endif
}

}  // namespace mare
