"""deploy/: the Kamailio edge spreads calls over IVR nodes; nginx keeps Twilio signatures valid.

Both run for real here: Kamailio 5.6 with deploy/kamailio/kamailio.cfg in front
of two SIPp callees standing in for IVR nodes, and in front of real IVR nodes (a
full one; a TLS caller; a TLS caller offering SRTP, with rtpengine), and nginx with
deploy/nginx/hotline-ivr.conf terminating TLS in front of `ivr serve --role web`
(gunicorn) and of the all-in-one `ivr serve` (waitress).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from twilio.request_validator import RequestValidator

from harness.sipfix import MissingPeer, need_peers, running_ivr, sip_settings
from harness.sipkit import (
    Kamailio,
    UdpCapture,
    build_request,
    free_tcp_port,
    free_udp_port,
    run_sipp,
    sip_probe,
    start_sipp,
)
from harness.sipkit.kamailio import module_dir
from harness.sipkit.procs import wait_until
from harness.sipkit.rtpengine import RtpEngine, SrtpEndpoint, savp_sdp, sdp_crypto_key
from harness.sipkit.sipmsg import SipMessage, StreamReader, pcmu_sdp
from ivr.asr.audio import lin2ulaw, rms, ulaw2lin
from ivr.config import Settings
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


@pytest.mark.parametrize(
    "defines",
    [[], ["-A", "WITH_TLS"], ["-A", "WITH_TLS", "-A", "WITH_RTPENGINE"]],
    ids=["udp", "tls", "tls-srtp"],
)
def test_kamailio_config_is_valid(defines: list[str]) -> None:
    if shutil.which("kamailio") is None:
        pytest.skip("kamailio not installed (scripts/system-deps.sh)")
    out = subprocess.run(
        ["kamailio", "-c", "-f", str(KAMAILIO_CFG), "-A",
         f'DISPATCHER_LIST="{DEPLOY / "kamailio" / "dispatcher.list"}"', *defines],
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


def _edge(tmp: Path, nodes: list[tuple[str, int]]) -> Kamailio:
    dlist = tmp / "dispatcher.list"
    dlist.write_text("".join(f"1 sip:{h}:{p} 0 0\n" for h, p in nodes))
    edge = Kamailio(workdir=tmp / "kam", config=KAMAILIO_CFG, auth_password=None)
    edge.argv += ["-A", f"LISTEN=udp:127.0.0.1:{edge.port}", "-A", f'DISPATCHER_LIST="{dlist}"']
    edge.argv += ["-A", 'TRUNK_NET="127.0.0.1/32"', "-A", 'IVR_NET="127.0.0.2/32"']
    return edge


def test_a_full_ivr_node_answers_503_and_the_edge_sends_its_calls_to_another(
    base_settings: Settings, tmp_path: Path
) -> None:
    """Two real IVR nodes behind the Kamailio edge; node A (max_calls 1) is busy with a
    call. A full node says 503 with Retry-After, so the callers the edge would send to
    A are answered by B instead of hearing busy."""
    need_peers("sipp", "kamailio")
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    settings = [
        sip_settings(base_settings, tmp_path / name, max_calls=n, full_retry_after_s=7)
        for name, n in (("a", 1), ("b", 10))
    ]
    with running_ivr(settings[0], asr=False) as a, running_ivr(settings[1], asr=False) as b:
        # A call straight to node A fills it (the IVR talks, the caller stays on the line).
        with start_sipp("uac_call", a.hostport, timeout=120, recv_timeout=110):
            assert wait_until(lambda: a.phone.active_calls == 1, 20)
            local = ("127.0.0.1", free_udp_port("127.0.0.1"))
            req = build_request("INVITE", f"sip:12345@127.0.0.1:{a.phone.port}", local=local)
            (full,) = [r for r in sip_probe(a.hostport, req, bind=local, timeout=8) if r.status]
            assert (full.status, full.header("Retry-After")) == (503, "7")
            edge = _edge(tmp_path, [a.hostport, b.hostport])
            edge.start()
            try:
                results = [
                    run_sipp(
                        "uac_hangup_mid",
                        edge.address,
                        variables={"hangup_after_ms": 500},
                        timeout=30,
                    )
                    for _ in range(4)
                ]
            finally:
                edge.stop()
        for r in results:
            assert r.ok, r.describe()
            assert 200 in r.received_statuses("INVITE") and 503 not in r.received_statuses()
        assert wait_until(lambda: b.phone.active_calls == 0, 20)
        # Round robin sent two of the four to A, which refused them; B took all four.
        assert [status for _, status in a.phone.rejected] == [503, 503, 503]
        assert len(b.phone.finished) == 4
        assert all(s.remote_bye.is_set() for s in b.phone.finished)


def _self_signed(tmp: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for `name` and its key: (cert.pem, key.pem) in `tmp`."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
         "-keyout", str(tmp / "key.pem"), "-out", str(tmp / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    return tmp / "cert.pem", tmp / "key.pem"


class TlsCaller:
    """A caller on a TLS connection to the edge, speaking SIP by hand (SIPp here has no TLS)."""

    def __init__(self, edge: tuple[str, int], cert: Path, name: str) -> None:
        ctx = ssl.create_default_context(cafile=str(cert))  # the edge's certificate verifies
        raw = socket.create_connection(edge, timeout=10)
        self.sock = ctx.wrap_socket(raw, server_hostname=name)
        self.edge = edge
        self.local = self.sock.getsockname()[:2]
        self.tag, self.call_id = "tlscaller", f"tls-{time.monotonic_ns()}@127.0.0.1"
        self.route = self.target = self.to_tag = ""
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind(("127.0.0.1", 0))
        self.reader = StreamReader(self.sock)

    def close(self) -> None:
        self.sock.close()
        self.rtp.close()

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode())

    def read(self, timeout: float) -> SipMessage:
        return self.reader.read(timeout)

    def request(self, method: str, uri: str, cseq: int, *, to_tag: str = "", extra: str = "",
                body: str = "") -> None:  # fmt: skip
        host, port = self.local
        sdp = "Content-Type: application/sdp\r\n" if body else ""
        branch = f"z9hG4bK{method.lower()}{cseq}{self.tag}"
        self.send(
            f"{method} {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/TLS {host}:{port};branch={branch};rport\r\n"
            f"{extra}Max-Forwards: 70\r\n"
            f"From: <sip:13800138000@{host}>;tag={self.tag}\r\n"
            f"To: <sip:12345@{self.edge[0]}>{';tag=' + to_tag if to_tag else ''}\r\n"
            f"Call-ID: {self.call_id}\r\nCSeq: {cseq} {method}\r\n"
            f"Contact: <sip:13800138000@{host}:{port};transport=tls>\r\n"
            f"{sdp}Content-Length: {len(body)}\r\n\r\n{body}"
        )

    def invite(self, body: str) -> SipMessage:
        """INVITE the service number through the edge; the final response. A 2xx sets up
        the dialog (route set, remote target, tag) for ack() and bye()."""
        host, port = self.edge
        self.request("INVITE", f"sip:12345@{host}:{port};transport=tls", 1, body=body)
        while (final := self.read(20)).status is not None and final.status < 200:
            pass
        if final.status is not None and final.status < 300:
            routes = list(reversed(final.header_values("Record-Route")))
            self.route = "".join(f"Route: {r}\r\n" for r in routes)
            self.target = (final.header("Contact") or "").strip("<>").split(">")[0]
            self.to_tag = (final.header("To") or "").split("tag=")[1].split(";")[0]
        return final

    def ack(self) -> None:
        self.request("ACK", self.target, 1, to_tag=self.to_tag, extra=self.route)

    def bye(self) -> SipMessage:
        """Hang up; the final response to the BYE."""
        self.request("BYE", self.target, 2, to_tag=self.to_tag, extra=self.route)
        while (final := self.read(20)).status is None or final.status < 200:
            pass
        return final


def _tls_edge(tmp: Path, node: tuple[str, int], *defines: str) -> tuple[Kamailio, TlsCaller]:
    """The edge with TLS (deploy/kamailio/tls.cfg, a self-signed certificate) in front of
    `node`, started, and a caller connected to it over TLS."""
    if not (module_dir() / "tls.so").exists():
        raise MissingPeer("Kamailio's tls module is not installed (kamailio-tls-modules)")
    name = "edge.example.org"
    cert, key = _self_signed(tmp, name)
    tls_cfg = tmp / "tls.cfg"
    text = (DEPLOY / "kamailio" / "tls.cfg").read_text()
    text = text.replace("/etc/kamailio/tls/fullchain.pem", str(cert))
    tls_cfg.write_text(text.replace("/etc/kamailio/tls/privkey.pem", str(key)))
    edge = _edge(tmp, [node])
    tls_port = free_tcp_port("127.0.0.1")
    edge.argv += ["-l", f"tls:127.0.0.1:{tls_port}", "-A", "WITH_TLS", *defines]
    edge.argv += ["-A", f"LISTEN_TLS=tls:127.0.0.1:{tls_port}", "-A", f'TLS_CONFIG="{tls_cfg}"']
    edge.start()
    try:
        return edge, TlsCaller(("127.0.0.1", tls_port), cert, name)
    except BaseException:
        edge.stop()
        raise


def test_the_tls_edge_carries_a_call_to_an_ivr_node_and_back(
    base_settings: Settings, tmp_path: Path
) -> None:
    """The carrier calls over TLS (deploy/kamailio/tls.cfg, kamailio-tls-modules); the
    edge relays to a real IVR node over UDP; the IVR's BYE at the end of the call comes
    back over the caller's TLS connection."""
    need_peers("kamailio")
    (tmp_path / "node").mkdir()
    with running_ivr(sip_settings(base_settings, tmp_path / "node"), asr=False) as node:
        edge, caller = _tls_edge(tmp_path, node.hostport)
        try:
            ok = caller.invite(pcmu_sdp("127.0.0.1", caller.rtp.getsockname()[1]))
            assert ok.status == 200, ok.raw
            caller.ack()
            # The caller says nothing; the IVR ends the call itself and its BYE comes
            # through the edge on this TLS connection.
            bye = caller.read(180)
            while bye.method != "BYE":
                bye = caller.read(180)
            via = "".join(f"Via: {v}\r\n" for v in bye.header_values("Via"))
            caller.send(
                f"SIP/2.0 200 OK\r\n{via}From: {bye.header('From')}\r\n"
                f"To: {bye.header('To')}\r\nCall-ID: {caller.call_id}\r\n"
                f"CSeq: {bye.header('CSeq')}\r\nContent-Length: 0\r\n\r\n"
            )
            node.wait_idle(60)
        finally:
            caller.close()
            edge.stop()
        (call_row,) = node.rows()["calls"]
        # The TLS caller sends no key and no speech: a silent call, stored without a draft.
        assert call_row.status == "silent" and call_row.from_number == "13800138000"
        (session,) = node.phone.finished
        assert not session.remote_bye.is_set()  # the IVR hung up, the caller answered


# A 1 kHz tone, 20 ms of PCMU: the same bytes in every packet the SRTP caller sends.
TONE = lin2ulaw(struct.pack("<160h", *(int(8000 * math.sin(i * math.pi / 4)) for i in range(160))))


def test_the_edge_turns_a_callers_srtp_into_plain_rtp_for_the_ivr_and_back(
    base_settings: Settings, tmp_path: Path
) -> None:
    """A TLS caller offers SRTP only (RTP/SAVP with an SDES key), which an IVR node
    refuses with 488. With -A WITH_RTPENGINE the edge has rtpengine (userspace, as a
    child here) carry the media: the node is offered plain RTP/AVP and answers; its
    greeting reaches the caller encrypted and authenticated with rtpengine's key; the
    caller's encrypted audio reaches the node as plain PCMU, byte for byte."""
    need_peers("kamailio", "rtpengine", "dumpcap")
    (tmp_path / "node").mkdir()
    srtp = SrtpEndpoint()
    with (
        RtpEngine(tmp_path / "rtpengine") as engine,
        running_ivr(sip_settings(base_settings, tmp_path / "node"), asr=False) as node,
    ):
        edge, caller = _tls_edge(
            tmp_path, node.hostport, "-A", "WITH_RTPENGINE",
            "-A", f'RTPENGINE_SOCK="{engine.ng_socket}"',
        )  # fmt: skip
        capture: UdpCapture | None = None
        try:
            ok = caller.invite(savp_sdp("127.0.0.1", caller.rtp.getsockname()[1], srtp.key))
            assert ok.status == 200, (ok.raw, edge.log()[-2000:], engine.log()[-2000:])
            # The caller's answer is SRTP again, with rtpengine's key and media address.
            media = re.search(r"^m=audio (\d+) RTP/SAVP 0\b", ok.body, re.M)
            assert media is not None, ok.body
            srtp.answered(sdp_crypto_key(ok.body))
            caller.ack()
            assert wait_until(lambda: caller.call_id in node.phone.sessions, 10)
            session = node.phone.sessions[caller.call_id]
            capture = UdpCapture(tmp_path / "node-rtp.pcap", [session.rtp_port]).start()
            # Each packet the IVR sends paces one the caller sends, until the caller has
            # heard 3 s of it and the IVR has heard the caller.
            heard: list[bytes] = []
            caller.rtp.settimeout(5)
            for _ in range(1500):
                caller.rtp.sendto(srtp.protect(TONE), ("127.0.0.1", int(media.group(1))))
                pt, payload = srtp.unprotect(caller.rtp.recv(2048))
                if pt == 0:
                    heard.append(payload)
                if len(heard) >= 150 and session.media.last_loud:
                    break
            caller.bye()
            node.wait_idle(60)
        finally:
            if capture is not None:
                capture.stop()
            caller.close()
            edge.stop()
        assert len(heard) >= 150 and session.media.last_loud, (len(heard), engine.log()[-2000:])
        # The greeting, decrypted: speech, not silence.
        assert max(rms(ulaw2lin(p)) for p in heard) > 1000
        # What reached the node was plain RTP: PCMU payloads equal to the caller's
        # audio before encryption (SRTP would be ciphertext plus a 10-byte tag).
        to_node = capture.rtp(session.rtp_port)
        assert to_node and {(p.payload_type, p.payload) for p in to_node} == {(0, TONE)}
        (call_row,) = node.rows()["calls"]
        assert call_row.from_number == "13800138000" and session.remote_bye.is_set()


def _nginx_conf(tmp: Path, listen: int, upstream: int) -> Path:
    _self_signed(tmp, "ivr.example.org")
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


@pytest.mark.parametrize("role", ["web", "all"], ids=["gunicorn-role-web", "waitress-all-in-one"])
def test_nginx_tls_proxy_keeps_twilio_signatures_valid(tmp_path: Path, role: str) -> None:
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
    }
    if role == "web":
        env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "prom")
    web = subprocess.Popen(
        [sys.executable, "-m", "ivr.cli", "--config", str(cfg), "serve", "--role", role,
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
