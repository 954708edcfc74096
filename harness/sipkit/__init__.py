"""sipkit: drive real SIP peers (SIPp, Kamailio, baresip, sipvicious) on loopback from tests.

Every peer binds 127.0.0.1 (or another 127/8 address) on ports picked at run
time, runs in its own process group with a timeout, and is killed on stop(),
on leaving its `with` block, and at interpreter exit. Debian packages:
sip-tester, kamailio, baresip, sipvicious, tshark (dumpcap, optional).
"""

from .attacks import (
    MALFORMED,
    ProbeResult,
    ScanResult,
    probe_all,
    probe_malformed,
    send_raw,
    svmap,
    svwar,
    unknown_peer_ip,
)
from .baresip import Baresip
from .capture import UdpCapture
from .kamailio import Kamailio, options_ping, sip_probe
from .pcap import (
    PcapInfo,
    RtpPacket,
    RtpStream,
    caller_media_pcap,
    dtmf_pcap,
    read_rtp_pcap,
    shipped_dtmf_pcap,
    wav_to_rtp_pcap,
    wav_to_ulaw,
)
from .ports import free_port_block, free_sip_port, free_tcp_port, free_udp_port
from .procs import ManagedProcess, ProcessResult, live_processes
from .sipmsg import SipMessage, build_request
from .sipp import (
    SCENARIOS,
    SippProcess,
    SippResult,
    can_play_pcap,
    extra_headers,
    run_sipp,
    scenario_path,
    start_sipp,
)

__all__ = [
    "MALFORMED",
    "SCENARIOS",
    "Baresip",
    "Kamailio",
    "ManagedProcess",
    "PcapInfo",
    "ProbeResult",
    "ProcessResult",
    "RtpPacket",
    "RtpStream",
    "ScanResult",
    "SipMessage",
    "SippProcess",
    "SippResult",
    "UdpCapture",
    "build_request",
    "caller_media_pcap",
    "can_play_pcap",
    "dtmf_pcap",
    "extra_headers",
    "free_port_block",
    "free_sip_port",
    "free_tcp_port",
    "free_udp_port",
    "live_processes",
    "options_ping",
    "probe_all",
    "probe_malformed",
    "read_rtp_pcap",
    "run_sipp",
    "scenario_path",
    "send_raw",
    "shipped_dtmf_pcap",
    "sip_probe",
    "start_sipp",
    "svmap",
    "svwar",
    "unknown_peer_ip",
    "wav_to_rtp_pcap",
    "wav_to_ulaw",
]
