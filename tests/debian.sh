#!/bin/sh
# Debian packages a test needs, installed where root and apt-get allow:
#   sh tests/debian.sh "browser test" "chromium chromedriver" chromium chromium-driver
# (what it is for, the commands it needs, then the packages). Never fails the build:
# without them that test is skipped and says why.
what=$1 commands=$2
shift 2
missing=0
for command in $commands; do
    command -v "$command" >/dev/null 2>&1 || missing=1
done
[ "$missing" = 0 ] && exit 0
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "$what: $commands not installed and cannot be installed here" \
         "(needs root and apt-get); it will be skipped" >&2
    exit 0
fi
echo "$what: installing Debian's $*..." >&2
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq >/dev/null && \
       apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }; then
    echo "$what: could not install $*; it will be skipped" >&2
fi
exit 0
