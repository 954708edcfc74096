"""deploy/: the Kamailio edge spreads calls over IVR nodes; nginx keeps Twilio signatures valid.

Both run for real here: Kamailio 5.6 with deploy/kamailio/kamailio.cfg in front
of two SIPp callees standing in for IVR nodes, and nginx with
deploy/nginx/hotline-ivr.conf terminating TLS in front of `ivr serve --role web`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from twilio.request_validator import RequestValidator

from harness.sipkit import Kamailio, build_request, free_udp_port, sip_probe, start_sipp
from ivr.store import upgrade

from .conftest import ROOT
from .test_serve import free_port

DEPLOY = ROOT / "deploy"
KAMAILIO_CFG = DEPLOY / "kamailio" / "kamailio.cfg"
NGINX_SITE = DEPLOY / "nginx" / "hotline-ivr.conf"


def test_systemd_units_cover_every_role() -> None:
    units = {p.name: p.read_text() for p in (DEPLOY / "systemd").glob("*.service")}
    execs = " ".join(u for u in units.values())
    for role in ("--role web", "--role sip,worker", "--role worker", "--role scheduler"):
        assert role in execs
    assert "ivr db upgrade" in units["hotline-ivr-migrate.service"]
    assert all("EnvironmentFile=/etc/hotline-ivr/env" in u for u in units.values())


def test_kamailio_config_is_valid() -> None:
    if shutil.which("kamailio") is None:
        pytest.skip("kamailio not installed (scripts/system-deps.sh)")
    out = subprocess.run(
        ["kamailio", "-c", "-f", str(KAMAILIO_CFG), "-A",
         f'DISPATCHER_LIST="{DEPLOY / "kamailio" / "dispatcher.list"}"'],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]


def _invite(proxy: tuple[str, int]) -> int | None:
    local = ("127.0.0.1", free_udp_port("127.0.0.1"))
    req = build_request("INVITE", f"sip:12345@{proxy[0]}:{proxy[1]}", local=local)
    finals = [r.status for r in sip_probe(proxy, req, bind=local, timeout=8) if r.status]
    return max(finals) if finals else None


def test_kamailio_edge_spreads_calls_over_ivr_nodes_and_skips_a_dead_one(tmp_path: Path) -> None:
    if shutil.which("kamailio") is None or shutil.which("sipp") is None:
        pytest.skip("kamailio and sipp needed (scripts/system-deps.sh)")
    ports = [free_udp_port("127.0.0.1") for _ in range(2)]
    nodes = [
        start_sipp("uas_busy", local_port=p, variables={"trying": 1}, calls=10, timeout=60)
        for p in ports
    ]
    dlist = tmp_path / "dispatcher.list"
    dlist.write_text("".join(f"1 sip:127.0.0.1:{p} 0 0\n" for p in ports))
    edge = Kamailio(workdir=tmp_path / "kam", config=KAMAILIO_CFG, auth_password=None)
    edge.argv += ["-A", f"LISTEN=udp:127.0.0.1:{edge.port}", "-A", f'DISPATCHER_LIST="{dlist}"']
    edge.argv += ["-A", 'TRUNK_NET="127.0.0.1/32"', "-A", 'IVR_NET="127.0.0.2/32"']
    edge.start()
    try:
        # Four calls from the trunk (loopback): two to each node, each node says busy.
        assert [_invite(edge.address) for _ in range(4)] == [486] * 4
        # One node dies: a call that would go there times out and goes to the other.
        nodes[0].stop()
        assert [_invite(edge.address) for _ in range(2)] == [486, 486]
    finally:
        edge.stop()
        results = [n.stop() for n in nodes]
    invites = [len(r.received("INVITE")) for r in results]
    assert invites[0] == 2 and invites[1] >= 4, (invites, edge.log()[-3000:])


def _nginx_conf(tmp: Path, listen: int, upstream: int) -> Path:
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=ivr.example.org", "-keyout", str(tmp / "key.pem"),
         "-out", str(tmp / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    site = NGINX_SITE.read_text()
    _, tls_server = site.split("server {", 2)[1:]
    site = "server {" + tls_server
    site = site.replace("listen [::]:443 ssl http2;\n", "")
    site = site.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{listen} ssl http2;")
    site = site.replace("/etc/ssl/hotline-ivr/fullchain.pem", str(tmp / "cert.pem"))
    site = site.replace("/etc/ssl/hotline-ivr/privkey.pem", str(tmp / "key.pem"))
    site = site.replace("server 127.0.0.1:8080", f"server 127.0.0.1:{upstream}")
    upstream_block = NGINX_SITE.read_text().split("server {")[0]
    upstream_block = upstream_block.replace("127.0.0.1:8080", f"127.0.0.1:{upstream}")
    conf = tmp / "nginx.conf"
    conf.write_text(
        f"pid {tmp}/nginx.pid;\nerror_log {tmp}/error.log;\nevents {{}}\n"
        f"http {{\naccess_log off;\nclient_body_temp_path {tmp}/body;\n"
        f"proxy_temp_path {tmp}/proxy;\n{upstream_block}\n{site}\n}}\n"
    )
    return conf


def test_nginx_tls_proxy_keeps_twilio_signatures_valid(tmp_path: Path) -> None:
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        pytest.skip("nginx not installed (scripts/system-deps.sh)")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    url = f"sqlite:///{tmp_path / 'web.sqlite3'}"
    upgrade(url)
    web_port, tls_port = free_port(), free_port()
    cfg = tmp_path / "config.yaml"
    text = (ROOT / "config.yaml").read_text().replace("proxy_hops: 0", "proxy_hops: 1")
    text = text.replace("dir: callflows", f"dir: {ROOT / 'callflows'}")
    cfg.write_text(text.replace("models_dir: asr_models", f"models_dir: {ROOT / 'asr_models'}"))
    token = "0123456789abcdef0123456789abcdef"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": token,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"),
    }
    web = subprocess.Popen(
        [sys.executable, "-m", "ivr.cli", "--config", str(cfg), "serve", "--role", "web",
         "--web-workers", "1", "--port", str(web_port)],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    conf = _nginx_conf(tmp_path, tls_port, web_port)
    proxy = subprocess.Popen(
        [nginx, "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    public = "https://ivr.example.org"
    session = requests.Session()
    session.trust_env = False  # a CA bundle from the environment would override verify=False
    session.verify = False
    try:
        for _ in range(100):
            try:
                r = session.get(f"https://127.0.0.1:{tls_port}/healthz", timeout=2)
                if r.status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert web.poll() is None, web.stdout.read() if web.stdout else ""
            assert proxy.poll() is None, proxy.stdout.read() if proxy.stdout else ""
            time.sleep(0.2)
        params = {
            "CallSid": "CA" + "1" * 32, "AccountSid": "AC" + "0" * 32,
            "From": "+8613800138000", "To": "+8687112345", "CallStatus": "ringing",
            "Direction": "inbound",
        }  # fmt: skip
        signature = RequestValidator(token).compute_signature(f"{public}/twilio/voice", params)
        headers = {"Host": "ivr.example.org", "X-Twilio-Signature": signature}
        r = session.post(
            f"https://127.0.0.1:{tls_port}/twilio/voice", data=params, headers=headers, timeout=10
        )
        assert r.status_code == 200, r.text
        assert f"{public}/twilio/" in r.text  # TwiML links point at the public URL
        # Signed over the URL the app listens on (what a missing header would give): refused.
        wrong = RequestValidator(token).compute_signature(
            f"http://127.0.0.1:{web_port}/twilio/voice", params
        )
        r = session.post(
            f"https://127.0.0.1:{tls_port}/twilio/voice",
            data=params, headers={**headers, "X-Twilio-Signature": wrong}, timeout=10,
        )  # fmt: skip
        assert r.status_code == 403
        # The console over TLS: security headers once each, and a Secure session cookie
        # although only proxy_hops (no https public_base_url) tells the app about TLS.
        r = session.get(
            f"https://127.0.0.1:{tls_port}/console/login",
            headers={"Host": "ivr.example.org"},
            timeout=10,
        )
        assert r.status_code == 200
        for name in ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options"):
            assert len(r.raw.headers.getlist(name)) == 1, name
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["Referrer-Policy"] == "same-origin"
        cookie = r.raw.headers.getlist("Set-Cookie")
        assert cookie and all("Secure" in c and "HttpOnly" in c for c in cookie), cookie
    finally:
        proxy.send_signal(signal.SIGQUIT)
        web.terminate()
        proxy.wait(15)
        web.wait(30)
