#!/bin/sh
# Chromium + ChromeDriver for tests/test_browser.py, from Debian's packages.
# Never fails the build: without them the browser test is skipped with the reason.
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "browser test: chromium/chromedriver not installed and cannot install them here" \
         "(needs root and apt-get); tests/test_browser.py will be skipped" >&2
    exit 0
fi
echo "browser test: installing Debian's chromium and chromium-driver..." >&2
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq >/dev/null && \
       apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; }; then
    echo "browser test: could not install chromium; tests/test_browser.py will be skipped" >&2
fi
exit 0
