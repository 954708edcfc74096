"""Audit rows as an operator reads them: 紧急: 否 → 是, not `urgent: False → True`.

The audit log keeps field names and JSON values (for the API and for tools);
the console names each action, field and value in Chinese, and masks phone
numbers for users who may not see them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ivr.phones import mask_number, mask_text
from ivr.services.campaigns import STATUS_ZH as CAMPAIGN_STATUSES
from ivr.services.contacts import CHANNELS
from ivr.surveys.outcomes import SCORES
from webhooks.console import bp
from webhooks.console.rows import STATUS_LABELS

ACTIONS = {
    "ticket.create": "生成草稿",
    "ticket.transcribed": "转写完成",
    "ticket.view": "查看",
    "ticket.update": "修改",
    "ticket.accept": "受理",
    "ticket.duplicate": "标记重复件",
    "ticket.reject": "不予受理",
    "ticket.complete": "办结",
    "ticket.reopen": "重办",
    "ticket.survey": "回访结果",
    "ticket.claim": "认领",
    "ticket.contact": "联系来电人",
    "ticket.release": "释放认领",
    "tickets.export": "导出工单",
    "tickets.list": "查询工单",
    "report.export": "导出报表",
    "campaign.create": "创建回访活动",
    "campaign.start": "开始回访活动",
    "campaign.pause": "暂停回访活动",
    "campaign.resume": "继续回访活动",
    "dnc.add": "加入免打扰名单",
    "login": "登录",
    "login.failed": "登录失败",
    "logout": "退出",
    "user.create": "新建用户",
    "user.update": "修改用户",
    "token.issue": "签发令牌",
    "token.revoke": "吊销令牌",
}

FIELDS = {
    "status": "状态",
    "category": "类别",
    "department": "承办部门",
    "address": "地址",
    "summary": "摘要",
    "statement": "来电诉求",
    "caller_name": "来电人姓名",
    "callback_number": "回电号码",
    "urgent": "紧急",
    "out_of_scope": "非受理范围",
    "scope_kind": "范围标记",
    "contact_due": "联系时限",
    "first_contact_at": "首次联系",
    "contacts": "联系次数",
    "channel": "联系方式",
    "at": "时间",
    "due_date": "办理时限",
    "duplicate_of": "重复于",
    "result_note": "处理结果",
    "survey_outcome": "回访结果",
    "claimed_by": "认领人",
    "reason": "原因",
    "note": "说明",
    "format": "格式",
    "rows": "行数",
    "filter": "筛选条件",
    "campaign": "回访活动",
    "name": "名称",
    "planned": "计划呼叫",
    "skipped": "跳过",
    "username": "用户名",
    "role": "角色",
    "ip": "IP 地址",
    "line": "热线",
    "ticket": "工单",
    "call": "来电",
    "number": "工单号",
    "query": "查询条件",
    "tickets": "工单",
    "active": "启用",
}

SCOPE_KINDS = {"out_of_scope": "非受理范围", "emergency": "紧急警情", "referral": "转办"}
EMPTY = "（空）"


ROLES = {"operator": "话务员", "supervisor": "班长", "admin": "管理员"}
ACTOR_KINDS = {"system": "系统", "api": "接口", "cli": "命令行"}


@bp.app_template_global()
def role_label(role: str) -> str:
    return ROLES.get(role, role)


@bp.app_template_global()
def actor_label(actor: str) -> str:
    """`user:li` and a sign-in's bare `li` are both li; `system:intake` is 系统（intake）."""
    kind, _, name = actor.partition(":")
    if not name or kind == "user":
        return name or actor
    return f"{ACTOR_KINDS.get(kind, kind)}（{name}）"


@dataclass(frozen=True)
class Shown:
    label: str
    old: str | None  # None: not a change, `new` is the value
    new: str


@bp.app_template_global()
def action_label(action: str) -> str:
    return ACTIONS.get(action, action)


def _value(field: str, value: Any, sees_phone: bool) -> str:
    if value is None or value == "":
        return EMPTY
    if isinstance(value, bool):
        return "是" if value else "否"
    names: dict[str, Callable[[Any], str]] = {
        "status": lambda v: STATUS_LABELS.get(v, CAMPAIGN_STATUSES.get(v, v)),
        "survey_outcome": lambda v: SCORES.get(v, v),
        "scope_kind": lambda v: SCOPE_KINDS.get(v, v),
        "channel": lambda v: CHANNELS.get(v, v),
    }
    if field in names:
        return str(names[field](value))
    if isinstance(value, dict):
        return "，".join(f"{FIELDS.get(k, k)}={_value(k, v, sees_phone)}" for k, v in value.items())
    if isinstance(value, list):
        return "、".join(_value(field, v, sees_phone) for v in value) or EMPTY
    text = str(value)
    if sees_phone:
        return text
    return mask_number(text) if field == "callback_number" else mask_text(text)


@bp.app_template_global()
def shown_detail(detail: dict[str, Any], sees_phone: bool) -> list[Shown]:
    """An audit row's detail, field by field, in Chinese; `changes` are unpacked."""
    items = dict(detail)
    changes = items.pop("changes", {})
    out = []
    for field, value in {**changes, **items}.items():
        label = FIELDS.get(field, field)
        if isinstance(value, dict) and set(value) == {"old", "new"}:
            old = _value(field, value["old"], sees_phone)
            out.append(Shown(label, old, _value(field, value["new"], sees_phone)))
        else:
            out.append(Shown(label, None, _value(field, value, sees_phone)))
    return out
