#!/usr/bin/env bash
# Debian packages the test suite needs. Installs only what is missing.
set -euo pipefail
pkgs=(ffmpeg sip-tester kamailio kamailio-tls-modules rtpengine-daemon baresip-core sipvicious wireshark-common
  # The operator console: headless browser tests and CJK text in report charts.
  chromium chromium-driver fonts-wqy-microhei
  # Scale-out: deploy/ checks (the nginx TLS proxy in front of gunicorn).
  nginx-light openssl)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: missing Debian packages: ${missing[*]} (run as root or install them)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
# Debian enables a kamailio service on 5060; tests start their own instances.
command -v systemctl >/dev/null && systemctl disable --now kamailio >/dev/null 2>&1 || true
# Nor rtpengine's service (its ng port 2223); the SRTP test starts its own, in userspace.
command -v systemctl >/dev/null && systemctl disable --now rtpengine-daemon >/dev/null 2>&1 || true
# Nor does the test suite want Debian's nginx on port 80; tests start their own.
command -v systemctl >/dev/null && systemctl disable --now nginx >/dev/null 2>&1 || true
