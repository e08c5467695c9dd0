#!/usr/bin/env bash
# Headless Chromium and its WebDriver for the playground's browser test (tests/tests/playground.rs):
# Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver), and a CJK font
# (fonts-wqy-microhei) so that the screenshot shows Chinese. Installs them with apt-get when missing
# (as root, or through sudo); prints nothing when they are there.
set -euo pipefail
if [ "${CARDBOT_SKIP_BROWSER:-}" = 1 ]; then
  echo "CARDBOT_SKIP_BROWSER=1: the playground's browser tests are skipped; Chromium is not installed" >&2
  exit 0
fi
if command -v "${CARDBOT_CHROMIUM:-chromium}" >/dev/null 2>&1 &&
  command -v "${CARDBOT_CHROMEDRIVER:-chromedriver}" >/dev/null 2>&1 &&
  [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo="sudo -n"
  else
    echo "error: chromium, chromium-driver or fonts-wqy-microhei is missing and this user cannot install them: apt-get install chromium chromium-driver fonts-wqy-microhei, or run with CARDBOT_SKIP_BROWSER=1 to skip the browser tests" >&2
    exit 1
  fi
fi
echo "installing chromium and chromium-driver (Debian packages) ..." >&2
install() { DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends chromium chromium-driver fonts-wqy-microhei >&2; }
if ! install && ! { DEBIAN_FRONTEND=noninteractive $sudo apt-get update -q >&2 && install; }; then
  # sudo -n fails at once where sudo wants a password: say what to do instead of failing make test.
  echo "error: could not install chromium, chromium-driver and fonts-wqy-microhei: install them (apt-get install chromium chromium-driver fonts-wqy-microhei), or run with CARDBOT_SKIP_BROWSER=1 to skip the browser tests" >&2
  exit 1
fi
