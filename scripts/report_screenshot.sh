#!/usr/bin/env bash
# The documented headless check of `ctgrad report`: renders a report.html in
# Debian's chromium (headless, no GPU, no network) and saves a PNG of it,
# to look at the figures the way a reader's browser draws them.
#
#   scripts/report_screenshot.sh OUT/report.html [SHOT.png] [HEIGHT]
#
# SHOT defaults to report.png beside the page, HEIGHT (the window height in
# pixels; the page is cut there) to 4000. The width is 1400, the page's
# design width. chromium is not a build or test dependency: install it only
# for this check (apt-get install -y chromium).
set -euo pipefail

if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
page=$1
shot=${2:-$(dirname "$page")/report.png}
height=${3:-4000}
[ -f "$page" ] || { echo "report_screenshot: $page: no such file (make it with: ctgrad report RUN... --out DIR)" >&2; exit 1; }

browser=""
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null 2>&1; then browser=$b; break; fi
done
if [ -z "$browser" ]; then
  echo "report_screenshot: chromium is not installed; install it for this check: apt-get install -y chromium" >&2
  exit 3
fi

url="file://$(cd "$(dirname "$page")" && pwd)/$(basename "$page")"
# A throwaway profile, so the check never touches (or waits on) a user's.
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$profile" \
  --screenshot="$shot" --window-size=1400,"$height" "$url" 2>/dev/null
[ -s "$shot" ] || { echo "report_screenshot: $browser wrote no screenshot" >&2; exit 1; }
echo "$shot"
