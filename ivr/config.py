"""Load and validate config.yaml.

Everything a hotline office may change lives in the file; secrets come only from
the environment. A bad file fails at start with the file, the key path and the
reason (`ConfigError`).
"""

from __future__ import annotations

import os
import re
from datetime import date, time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ivr.shipped import shipped, source_root

# The shipped default: the repository's config.yaml, or the copy a wheel installs
# (`ivr init` starts a deployment from it).
DEFAULT_CONFIG = shipped("config.yaml")
CONFIG_ENV = "IVR_CONFIG"
DATABASE_ENV = "DATABASE_URL"
REDIS_ENV = "REDIS_URL"
LOG_FORMAT_ENV = "IVR_LOG_FORMAT"


class ConfigError(Exception):
    """A configuration problem, worded for the person who edits the file."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_NUMBER_RE = re.compile(r"^\d{3,20}$")


class LineConfig(_Model):
    number: str
    name: str
    greeting: str
    default_category: str
    default_department: str

    @field_validator("number")
    @classmethod
    def _digits(cls, v: str) -> str:
        if not _NUMBER_RE.match(v):
            raise ValueError("must be the bare hotline number, digits only (e.g. 12315)")
        return v


class CategoryConfig(_Model):
    name: str
    deadline_workdays: int = Field(ge=0, le=60)
    keywords: list[str] = []


class DepartmentConfig(_Model):
    name: str
    keywords: list[str] = []


class ScopeRule(_Model):
    name: str
    kind: Literal["emergency", "out_of_scope"]
    keywords: list[str] = Field(min_length=1)
    advice: str


class DeadlineConfig(_Model):
    contact_workdays: int = Field(default=2, ge=0, le=30)
    urgent_same_day: bool = True


class UrgencyConfig(_Model):
    keywords: list[str] = Field(min_length=1)


class RoutingOverride(_Model):
    """Office policy that wins over the model: all keywords heard (not negated) -> these values."""

    keywords: list[str] = Field(min_length=1)
    category: str | None = None
    department: str | None = None

    @model_validator(mode="after")
    def _sets_something(self) -> RoutingOverride:
        if self.category is None and self.department is None:
            raise ValueError("a routing override sets a category, a department or both")
        return self


class IntakeConfig(_Model):
    """The learned draft model and the rules on top of it (ivr.intake.model, ivr.intake.rules)."""

    # A category/department below this probability is marked 低置信度 and the
    # keyword hints of categories[]/departments[] may replace it.
    low_confidence: float = Field(default=0.5, gt=0, le=1)
    # Candidates within this much of the model's best are close: the hints choose among them.
    hint_margin: float = Field(default=0.15, ge=0, le=1)
    # Off: drafts come from the keyword lists alone (no model is trained or loaded).
    use_model: bool = True
    # The model's say on urgency and emergencies (0 turns each off): a draft is urgent when
    # P(urgent) + P(emergency) reaches urgent_by_model; an emergency scope rule the
    # keywords missed is flagged at emergency_by_model; a matched emergency keyword is
    # ignored when the model is this sure the statement is normal (上次有乘客晕倒, 表扬).
    urgent_by_model: float = Field(default=0.6, ge=0, le=1)
    emergency_by_model: float = Field(default=0.6, ge=0, le=1)
    emergency_veto: float = Field(default=0.9, ge=0, le=1)
    routing_overrides: list[RoutingOverride] = []
    # Words that cancel a trigger heard after them in the same clause (不是着火).
    negations: list[str] = ["不是", "没有", "不想", "并非", "没"]
    # Words right after a trigger that make it a place, not the subject (法院门口).
    place_words: list[str] = ["门口", "旁边", "对面", "附近", "隔壁", "后面", "前面", "边上"]
    # A trigger only mentioned or asked about (上次你们说的仲裁我不懂): words before / after it.
    mention_before: list[str] = []
    mention_after: list[str] = []
    # An emergency trigger after one of these in its clause is over (上次有乘客晕倒).
    past_words: list[str] = []
    past_after: list[str] = []
    # Longer words that contain a trigger but mean something else (退伍军人 is not 军人).
    shadow_words: list[str] = []
    # Each group: the first word is the canonical one rules and keywords are written
    # with; the others are what callers also say (走失 <- 走丢).
    synonyms: list[list[str]] = []


# Words that carry no request: fillers, pronouns, particles, time and politeness words.
_STOP_WORDS = [
    w
    for line in (
        "那个 这个 就是 嗯 啊 呃 喂 您好 你好 我 我们 我家 你们 他们 它",
        "这 那 这里 那里 这边 那边 了 的 地 得 着 过 吗 呢 吧 呀 啦 嘛",
        "一下 请问 请 麻烦 帮忙 帮 谢谢 想 要 我要 问 问一下 反映 反应",
        "一个 一直 已经 还 还是 就 都 也 又 再 很 太 好像 什么 什么时候",
        "时候 怎么 怎么办 为什么 有没有 没有人 有人 人 能 能不能 可以 是",
        "不是 在 从 到 给 把 被 和 跟 对 让 今天 昨天 前天 现在 开始",
        "一天 两天 三天 几天 好几天 天 晚上 早上 上午 下午 中午 天天 每天",
        "尽快 赶紧 马上 处理 解决 一些 有点 这样 那样 说 打 打电话 电话",
        "热线 没 没有 不 好 大 月 个 号 之前 之后 以后 到现在 投诉 举报",
        "咨询 建议 求助 问题 情况 事情 事 门口 凌晨 半夜 每天晚上",
        "一到 老是 总是",
    )
    for w in line.split()
]
# Ways of saying the same problem or object (topic words); the first word of a group stands for it.
_SYNONYMS = (
    "停电 没电 断电 不来电 跳闸 来电",
    "停水 没水 断水 不来水 来水 没有水",
    "路灯 灯 街灯",
    "坏 坏了 不亮 失灵 不能用 不好用",
    "噪音 噪声 吵 太吵 扰民 睡不着",
    "漏水 渗水 滴水",
    "堵塞 堵 堵了 不通",
    "垃圾 垃圾桶 垃圾站",
    "工资 薪水 工钱",
    "拖欠 欠 欠薪 不发 没发 不给发",
)
# Ways of naming the same kind of place: folded, but not weighted as topic words.
_PLACE_SYNONYMS = ("小区 楼 楼栋 单元 院子 宿舍", "店 摊 摊位 店铺", "公司 单位 老板 厂里")


class DuplicateConfig(_Model):
    """Repeat calls about the same request (ivr.intake.duplicates)."""

    window_days: int = Field(default=7, ge=0, le=90)
    history_days: int = Field(default=90, ge=0, le=3650)
    min_similarity: float = Field(default=0.5, gt=0, le=1)
    department_boost: float = Field(default=0.1, ge=0, le=1)
    topic_weight: float = Field(default=3.0, ge=1, le=20)
    stop_words: list[str] = list(_STOP_WORDS)
    extra_stop_words: list[str] = []
    synonyms: list[list[str]] = [g.split() for g in _SYNONYMS]
    extra_synonyms: list[list[str]] = []
    place_synonyms: list[list[str]] = [g.split() for g in _PLACE_SYNONYMS]


class LifecycleConfig(_Model):
    """The loop after registration: extensions (延期), returns (退回), supervision (督办)."""

    # One extension (max_extensions) of at most this many working days, asked before the deadline.
    extension_max_workdays: int = Field(default=10, ge=1, le=60)
    max_extensions: int = Field(default=1, ge=0, le=10)
    # A department returns a ticket within this many working days of receiving it
    # (return_workdays_onsite when the return needs an on-site check).
    return_workdays: int = Field(default=1, ge=0, le=30)
    return_workdays_onsite: int = Field(default=3, ge=0, le=30)
    # After this many returns the district government of the ticket's address takes it (属地兜底).
    max_returns: int = Field(default=2, ge=1, le=10)
    # District (as the address names it) -> the department that takes it; territorial_default
    # when the address names no district or one not listed.
    territorial: dict[str, str] = {}
    territorial_default: str | None = None
    # 督办 for repeat complaints: this many tickets about one address, or one ticket and
    # its duplicates (重复件), within repeat_window_days.
    repeat_threshold: int = Field(default=3, ge=2, le=100)
    repeat_window_days: int = Field(default=30, ge=1, le=365)
    # How often `ivr serve`'s scheduler looks for tickets to supervise.
    supervision_scan_minutes: int = Field(default=60, ge=1, le=1440)


class CalendarConfig(_Model):
    """Corrections that win over the official and the estimated calendar (ivr.workdays)."""

    extra_holidays: list[date] = []
    extra_workdays: list[date] = []


class CityConfig(_Model):
    province: str
    city: str
    area_code: str = Field(pattern=r"^0\d{2,3}$")


class AsrConfig(_Model):
    model: str = "vosk-model-small-cn-0.22"
    models_dir: Path = Path("asr_models")
    end_of_speech_ms: int = Field(default=1500, ge=200, le=10000)
    low_confidence: float = Field(default=0.6, ge=0, le=1)
    # How long a SIP caller waits after the statement for its live transcript; later
    # than that the draft is made without it and filled in when the transcript is done.
    transcript_wait_s: float = Field(default=8.0, ge=0, le=120)
    # ASR worker processes beside a SIP phone (each loads the model); 0: one per CPU.
    sip_processes: int = Field(default=0, ge=0, le=64)
    vocabulary: list[str] = []


class HttpConfig(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    public_base_url: str | None = None
    # Reverse proxies in front (nginx: 1) whose X-Forwarded-Proto/Host/Port/For are
    # trusted; 0 trusts none. Then the public URL Twilio signs comes from them.
    proxy_hops: int = Field(default=0, ge=0, le=5)


_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")


class SipTrunkConfig(_Model):
    """Where survey callbacks go: the carrier's or the PBX's SIP trunk."""

    host: str
    port: int = Field(default=5060, ge=1, le=65535)
    transport: Literal["udp", "tcp"] = "udp"

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        if ":" in v:
            raise ValueError(f"{v!r}: give the host alone and the port under port")
        if not _HOSTNAME.match(v) or v == "0.0.0.0":
            raise ValueError(f"{v!r} is not a host name or IPv4 address")
        return v

    @property
    def hostport(self) -> str:
        """host:port for a Request-URI, with ;transport=tcp when not UDP (RFC 3261 19.1.1)."""
        return f"{self.host}:{self.port}" + (";transport=tcp" if self.transport == "tcp" else "")


class SipConfig(_Model):
    """The pyVoIP-based SIP phone (see ivr/transports/sip)."""

    enabled: bool = False
    # trunk: INVITEs only from trunk_peers, no registration; register: to a PBX/registrar.
    mode: Literal["trunk", "register"] = "trunk"
    bind_host: str = "127.0.0.1"
    # The address written into Via/Contact/SDP; never 0.0.0.0 (pyVoIP defect 9).
    public_host: str | None = None
    port: int = Field(default=5060, ge=0, le=65535)
    # A dialer in a process of its own (`ivr campaign run --dialer sip`, `ivr serve --role
    # worker` without the sip role) binds this port, 0 for any free one: never `port`,
    # which the serving phone holds (the SIP socket is exclusive).
    dialer_port: int = Field(default=0, ge=0, le=65535)
    # Also listen for SIP over TCP on the same port (RFC 3261 18: carriers send large
    # INVITEs over TCP).
    tcp: bool = True
    rtp_port_min: int = Field(default=20000, ge=1024, le=65534)
    rtp_port_max: int = Field(default=20999, ge=1025, le=65535)
    trunk_peers: list[str] = []
    registrar: str | None = None  # host:port
    username: str | None = None
    # The password comes from this environment variable, never from the file.
    password_env: str = "IVR_SIP_PASSWORD"
    register_expires: int = Field(default=300, ge=30, le=86400)
    # Ring this long before answering; a CANCEL in that time is never answered.
    answer_delay_ms: int = Field(default=300, ge=0, le=10000)
    max_calls: int = Field(default=60, ge=1, le=1000)
    # A full node answers 503 with this Retry-After (s): the edge tries another node.
    full_retry_after_s: int = Field(default=10, ge=1, le=3600)
    # Outbound: give up (CANCEL) after ringing this long.
    ring_timeout_s: int = Field(default=30, ge=5, le=180)
    # Outbound: the trunk survey callbacks are sent to; unset: the registrar, else
    # the first trunk peer on port 5060 over UDP.
    outbound_trunk: SipTrunkConfig | None = None

    @field_validator("public_host")
    @classmethod
    def _not_any(cls, v: str | None) -> str | None:
        if v == "0.0.0.0":
            raise ValueError("must be a real address, not 0.0.0.0")
        return v

    @model_validator(mode="after")
    def _mode(self) -> SipConfig:
        if self.rtp_port_max <= self.rtp_port_min:
            raise ValueError("rtp_port_max must be above rtp_port_min")
        if self.bind_host == "0.0.0.0" and not self.public_host:
            raise ValueError("bind_host 0.0.0.0 needs public_host: the address peers reach")
        if self.mode == "register" and not (self.registrar and self.username):
            raise ValueError("register mode needs registrar and username")
        return self

    @property
    def advertised_host(self) -> str:
        return self.public_host or self.bind_host


_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


class SurveyConfig(_Model):
    """Satisfaction callback campaigns (满意度回访)."""

    # Local calling windows, e.g. "09:00-12:00".
    windows: list[str] = Field(default=["09:00-12:00", "14:00-20:00"], min_length=1)
    # Official working days only (holidays never; 调休 Saturdays yes). True adds
    # ordinary weekends that are not statutory holidays.
    call_on_weekends: bool = False
    # Survey within this many working days after completion (办结); later: expired.
    deadline_workdays: int = Field(default=2, ge=0, le=30)
    max_attempts: int = Field(default=3, ge=1, le=10)
    # Spacing after busy / no answer / machine / failure.
    retry_after_minutes: int = Field(default=120, ge=1, le=1440)
    # Global pace and concurrency (Twilio's defaults: 1 call per second, 10 at once).
    calls_per_second: float = Field(default=1.0, gt=0, le=100)
    max_concurrent: int = Field(default=10, ge=1, le=500)
    ring_timeout_s: int = Field(default=30, ge=5, le=120)
    # Numbers that opted out; `ivr campaign dnc add` keeps more in the database.
    do_not_call: list[str] = []
    # Statements with these words mark the caller as not to be called back.
    no_callback_keywords: list[str] = ["不要回访", "不需要回访", "不用回访", "不要回电", "别回电话"]
    dialer: Literal["sip", "twilio"] = "sip"

    @field_validator("windows")
    @classmethod
    def _windows(cls, v: list[str]) -> list[str]:
        for w in v:
            m = _WINDOW.match(w)
            if not m or (m.group(3), m.group(4)) <= (m.group(1), m.group(2)):
                raise ValueError(f"calling window {w!r} is not HH:MM-HH:MM with start < end")
        return v

    def window_bounds(self) -> list[tuple[time, time]]:
        out = []
        for w in self.windows:
            a, b = w.split("-")
            end = time(23, 59, 59, 999999) if b == "24:00" else time.fromisoformat(b)
            out.append((time.fromisoformat(a), end))
        return sorted(out)


_E164_RE = re.compile(r"^\+[1-9]\d{6,14}$")


class TwilioConfig(_Model):
    """Twilio voice webhooks and the Twilio survey dialer.

    The public URL Twilio calls is http.public_base_url. The account SID and auth
    token come only from the environment (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN).
    """

    # play: the same 8 kHz prompt clips the SIP phone plays; say: Twilio's text-to-speech.
    voice: Literal["play", "say"] = "play"
    say_language: str = "cmn-CN"
    say_voice: str | None = None
    # Ask for call status callbacks (initiated, ringing, answered, completed) on survey calls.
    status_callback: bool = True
    # Answering-machine detection on survey calls; machine-answered calls are not surveyed.
    machine_detection: bool = True
    # Survey calls: ring this long, and give up waiting for the call to end after max_call_s.
    ring_timeout_s: int = Field(default=30, ge=5, le=600)
    max_call_s: int = Field(default=600, ge=30, le=14400)
    # The Twilio number survey calls come from (E.164, e.g. +8687112345).
    caller_id: str | None = None
    # The REST API; point it elsewhere only to test against a local fake.
    api_base_url: str = "https://api.twilio.com"
    # HTTP 429 and 5xx from the REST API are retried this often, backing off exponentially.
    api_retries: int = Field(default=4, ge=0, le=10)
    api_backoff_s: float = Field(default=0.5, gt=0, le=60)
    # Each REST request (calls.create) is given up after this long: a hung API never
    # holds a survey call slot past it (a call it may have created is not dialed again).
    api_timeout_s: float = Field(default=15, gt=0, le=120)
    # <Record timeout>: seconds of silence that end a statement, also before the caller
    # starts speaking; never less than this, whatever the flow's silence_end_s.
    record_timeout_s: int = Field(default=6, ge=1, le=60)
    # The operator transfer's <Dial timeout> (ring time); unanswered, the caller hears
    # the flow's transfer_failed prompt (or sorry) instead of silence.
    transfer_timeout_s: int = Field(default=30, ge=5, le=600)
    # Recordings are fetched in this format and waited for at most fetch_timeout_s.
    recording_format: Literal["wav", "mp3"] = "wav"
    fetch_timeout_s: float = Field(default=10, gt=0, le=60)
    # A fetch that fails (media not ready, host down) is a job tried this often, the
    # first retry after fetch_retry_s and each next one after twice as long (at most 5 min);
    # then the recording is lost: the draft says 录音获取失败 and the job is a dead letter.
    fetch_attempts: int = Field(default=6, ge=1, le=20)
    fetch_retry_s: float = Field(default=5.0, gt=0, le=600)
    # Threads per web worker process for recording fetches that failed and transcription.
    job_workers: int = Field(default=2, ge=1, le=32)

    @field_validator("caller_id")
    @classmethod
    def _e164(cls, v: str | None) -> str | None:
        if v is not None and not _E164_RE.match(v):
            raise ValueError("must be an E.164 number such as +8687112345")
        return v

    @field_validator("api_base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^https?://[^/]+$", v.rstrip("/")):
            raise ValueError("must be a scheme and host, e.g. https://api.twilio.com")
        return v.rstrip("/")


class JobsConfig(_Model):
    """The job queue (transcription, recording fetches, survey calls).

    No broker: an in-process Dramatiq worker (embedded default). With a Redis URL
    (here or REDIS_URL in the environment) jobs go through Redis and run in every
    `ivr serve --role worker` process; the survey call limits are then global.
    """

    broker_url: str | None = None
    # Prefix of every Redis key the queue and the call limits use.
    namespace: str = Field(default="ivr", pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    # Threads per process that run jobs (transcription, survey calls).
    worker_threads: int = Field(default=8, ge=1, le=256)
    # Threads per process that fetch Twilio recordings, apart from the others: media
    # hosts that stall hold these, never the threads transcription and dialing use.
    fetch_threads: int = Field(default=4, ge=1, le=256)
    # A failing job is retried this often, backing off exponentially, then dead-lettered.
    max_retries: int = Field(default=5, ge=0, le=50)
    min_backoff_ms: int = Field(default=1000, ge=10, le=3_600_000)
    max_backoff_ms: int = Field(default=300_000, ge=10, le=86_400_000)
    # A worker silent this long is dead; its unfinished jobs go to other workers.
    heartbeat_timeout_ms: int = Field(default=60_000, ge=1000, le=3_600_000)
    # A concurrent-call slot a crashed worker held frees itself after this long
    # (longer than any survey call can last).
    call_slot_ttl_s: int = Field(default=900, ge=5, le=86_400)
    # Survey calls the scheduler keeps queued per campaign ahead of the dialers.
    dispatch_backlog: int = Field(default=50, ge=1, le=10_000)
    # How often the active scheduler looks for due survey attempts.
    schedule_interval_s: float = Field(default=5.0, gt=0, le=3600)
    # How often the active scheduler closes the calls of SIP nodes that are gone, and
    # the Twilio calls left open that the REST API reports ended (ivr.runtime.open_calls).
    open_call_check_s: float = Field(default=60.0, gt=0, le=86_400)


class LoggingConfig(_Model):
    # text: one readable line; json: one JSON object per line (IVR_LOG_FORMAT overrides).
    format: Literal["text", "json"] = "text"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class ConsoleConfig(_Model):
    """The operator console (webhooks/console)."""

    # A ticket due within this many working days is shown as near its deadline.
    near_deadline_workdays: int = Field(default=1, ge=0, le=30)
    # The work queue shows this many tickets a page.
    queue_page_size: int = Field(default=50, ge=5, le=500)
    # A draft claimed (认领) by an operator is theirs alone this long after the claim.
    claim_minutes: int = Field(default=30, ge=1, le=1440)
    # Live queue (server-sent events): how often the database is checked, how long one
    # stream lasts before the browser reconnects, and how many streams one process
    # holds open at once (each holds a server thread); tabs beyond that poll every
    # overflow_retry_s seconds instead.
    poll_s: float = Field(default=1.0, gt=0, le=60)
    stream_s: float = Field(default=30.0, ge=1, le=600)
    streams_per_process: int = Field(default=4, ge=0, le=1000)
    overflow_retry_s: float = Field(default=5.0, ge=1, le=300)
    # At most this many ticket changes per step when a reconnecting stream catches up
    # (cursor=0 or an old Last-Event-ID); the rest follow page by page.
    stream_page: int = Field(default=200, ge=1, le=5000)
    # Lockouts (counted in the database, so every process and host agrees; attempts
    # refused during a lockout are not counted). After max_failed_logins_per_address
    # failed sign-ins from one client address within lockout_minutes, that address is
    # refused for every username. After max_failed_logins for one username, that
    # username is refused from browsers it has never signed in from; a browser it
    # signed in from within device_days keeps working, so an anonymous attacker cannot
    # lock an operator out of their own desk.
    max_failed_logins: int = Field(default=5, ge=1, le=1000)
    max_failed_logins_per_address: int = Field(default=20, ge=1, le=10000)
    lockout_minutes: int = Field(default=15, ge=1, le=1440)
    device_days: int = Field(default=90, ge=1, le=3650)
    # A console session ends after this long without a request, and this long after
    # sign-in whatever happens; sign-out, a new password, a role change or disabling
    # the account end every session of that user at its next request.
    idle_timeout_minutes: int = Field(default=30, ge=1, le=1440)
    session_hours: float = Field(default=12, gt=0, le=720)


class FlowFiles(_Model):
    dir: Path = Path("callflows")
    inbound: str = "inbound.yaml"
    survey: str = "survey.yaml"


class Settings(_Model):
    timezone: str = "Asia/Shanghai"
    database_url: str = "sqlite:///var/ivr.sqlite3"
    storage_dir: Path = Path("var")
    hotline: str = "12345"
    ticket_prefix: str = "12345"
    operator_transfer: str = "sip:operator@127.0.0.1"
    max_events_per_call: int = Field(default=60, ge=10, le=1000)
    city: CityConfig
    lines: list[LineConfig] = Field(min_length=1)
    categories: list[CategoryConfig] = Field(min_length=1)
    departments: list[DepartmentConfig] = Field(min_length=1)
    scope_rules: list[ScopeRule] = []
    urgency: UrgencyConfig
    intake: IntakeConfig = IntakeConfig()
    deadlines: DeadlineConfig = DeadlineConfig()
    duplicates: DuplicateConfig = DuplicateConfig()
    lifecycle: LifecycleConfig = LifecycleConfig()
    calendar: CalendarConfig = CalendarConfig()
    asr: AsrConfig = AsrConfig()
    http: HttpConfig = HttpConfig()
    sip: SipConfig = SipConfig()
    twilio: TwilioConfig = TwilioConfig()
    surveys: SurveyConfig = SurveyConfig()
    jobs: JobsConfig = JobsConfig()
    logging: LoggingConfig = LoggingConfig()
    console: ConsoleConfig = ConsoleConfig()
    flows: FlowFiles = FlowFiles()
    # Where the file was loaded from; relative paths resolve against its folder.
    base_dir: Path = Path(".")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v

    @model_validator(mode="after")
    def _cross_references(self) -> Settings:
        cats = [c.name for c in self.categories]
        _unique("categories", cats)
        depts = [d.name for d in self.departments]
        _unique("departments", depts)
        _unique("lines", [ln.number for ln in self.lines])
        for i, line in enumerate(self.lines):
            if line.default_category not in cats:
                raise ValueError(
                    f"lines[{i}].default_category: {line.default_category!r} is not one of the "
                    f"configured categories {cats}"
                )
            if line.default_department not in depts:
                raise ValueError(
                    f"lines[{i}].default_department: {line.default_department!r} is not one of "
                    f"the configured departments"
                )
        for i, rule in enumerate(self.intake.routing_overrides):
            if rule.category is not None and rule.category not in cats:
                raise ValueError(
                    f"intake.routing_overrides[{i}].category: {rule.category!r} unknown"
                )
            if rule.department is not None and rule.department not in depts:
                raise ValueError(
                    f"intake.routing_overrides[{i}].department: {rule.department!r} unknown"
                )
        territorial = list(self.lifecycle.territorial.items())
        if self.lifecycle.territorial_default is not None:
            territorial.append(("territorial_default", self.lifecycle.territorial_default))
        for where, dept in territorial:
            if dept not in depts:
                raise ValueError(f"lifecycle.territorial[{where}]: {dept!r} is not a department")
        if self.hotline not in {ln.number for ln in self.lines}:
            raise ValueError(f"hotline: {self.hotline!r} must also be listed under lines")
        return self

    # -- derived helpers -------------------------------------------------
    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def path(self, p: Path) -> Path:
        return p if p.is_absolute() else (self.base_dir / p)

    @property
    def storage_path(self) -> Path:
        return self.path(self.storage_dir)

    @property
    def flows_path(self) -> Path:
        return self.path(self.flows.dir)

    def line(self, number: str) -> LineConfig | None:
        return next((ln for ln in self.lines if ln.number == number), None)

    def category(self, name: str) -> CategoryConfig | None:
        return next((c for c in self.categories if c.name == name), None)

    @property
    def resolved_database_url(self) -> str:
        """The SQLAlchemy URL with a relative SQLite path anchored at the config folder."""
        url = self.database_url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            return prefix + str(self.path(Path(url[len(prefix) :])))
        return url


def _unique(what: str, values: list[str]) -> None:
    seen: set[str] = set()
    for v in values:
        if v in seen:
            raise ValueError(f"{what}: {v!r} is listed twice")
        seen.add(v)


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def find_config(path: str | Path | None = None, env: dict[str, str] | None = None) -> Path:
    """Which config.yaml to read.

    `path`, else $IVR_CONFIG, else config.yaml in the current directory (a deployment
    made by `ivr init`), else, when running from a source tree, the repository's own.
    """
    env = dict(os.environ) if env is None else env
    if path or env.get(CONFIG_ENV):
        return Path(path or env[CONFIG_ENV])
    here = Path.cwd() / "config.yaml"
    if here.is_file():
        return here
    if source_root() is not None:
        return DEFAULT_CONFIG
    raise ConfigError(
        f"no config.yaml in {Path.cwd()}: make a deployment folder with `ivr init DIR` and run "
        "from there, or name the file with --config or IVR_CONFIG"
    )


def load_config(path: str | Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Read, validate and return the settings; raise ConfigError naming file, key and reason."""
    env = dict(os.environ) if env is None else env
    cfg_path = find_config(path, env).resolve()
    try:
        raw_text = cfg_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{cfg_path}: cannot read config file: {exc.strerror or exc}") from exc
    try:
        data: Any = yaml.safe_load(raw_text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{cfg_path}{where}: not valid YAML: {problem}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{cfg_path}: (top level): expected a mapping of settings")
    if "base_dir" in data:
        raise ConfigError(f"{cfg_path}: base_dir: is set by the loader, remove it from the file")
    data["base_dir"] = cfg_path.parent
    if env.get(DATABASE_ENV):
        data["database_url"] = env[DATABASE_ENV]
    if env.get(REDIS_ENV):
        data["jobs"] = {**(data.get("jobs") or {}), "broker_url": env[REDIS_ENV]}
    if env.get(LOG_FORMAT_ENV):
        data["logging"] = {**(data.get("logging") or {}), "format": env[LOG_FORMAT_ENV]}
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            loc = _loc(tuple(err["loc"]))
            # Cross-reference errors already name their key.
            problems.append(msg if loc == "(top level)" and ": " in msg else f"{loc}: {msg}")
        raise ConfigError(f"{cfg_path}: " + "; ".join(problems)) from exc
