// Everything is in include/DSLEngineC.h (static inline, compiled into the Swift callers).
#include "DSLEngineC.h"
