#!/bin/sh
# Renders a summary.html to a PNG in headless Chromium, offline, to check the page by eye.
#
#   tests/html/screenshot.sh runs/summary.html /tmp/summary.png [width,height]
#
# Needs the `chromium` package (Debian: apt-get install chromium). The page loads nothing
# from elsewhere; the flags keep Chromium itself from calling out as well.
set -eu

if [ "$#" -lt 2 ]; then
    echo "usage: $0 <summary.html> <out.png> [width,height]" >&2
    exit 2
fi
page=$1
out=$2
size=${3:-1200,2600}
if [ ! -f "$page" ]; then
    echo "$0: no such page: $page" >&2
    exit 2
fi

browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
    echo "$0: no chromium found; install it with: apt-get install -y chromium" >&2
    exit 3
fi

rm -f "$out"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT INT TERM
absolute=$(cd "$(dirname "$page")" && pwd)/$(basename "$page")

"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-default-apps --hide-scrollbars --user-data-dir="$profile" \
    --screenshot="$out" --window-size="$size" "file://$absolute" 2>/dev/null || true
if [ ! -s "$out" ]; then
    echo "$0: chromium wrote no screenshot" >&2
    exit 1
fi
echo "wrote $out"
