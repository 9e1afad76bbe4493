// libpq through pkg-config: scripts/libpq-static's static build, or Debian's libpq-dev.
#include <libpq-fe.h>
