#!/bin/sh
# /opt/hakit/hakit, and /opt/hakit/safekit (the same program, for module scripts that call
# "$SAFE/safekit" printe ...): the hakit command line on the Node runtime installed with it.
exec /opt/hakit/private/bin/node /opt/hakit/private/bin/hakit.cjs "$@"
