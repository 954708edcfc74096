"""Error pages of the console, in Chinese: a refused form (CSRF, 400), no permission
(403), nothing there (404) and a failure of ours (500), each with a way back.

Other doors (the API, Twilio webhooks) answer their own errors; only console
addresses get these pages.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, render_template, request, url_for
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)
_TICKET_ACTION = re.compile(r"^(/console/tickets/[0-9]{1,10})/[a-z]+$")

# A form sent with a missing or outdated CSRF token (auth.py's refusal).
EXPIRED = (
    "表单已过期",
    "页面已过期或登录状态已更新，表单没有提交。您填写的内容已保存在浏览器中，"
    "返回工单页后会自动填回，请再提交一次。",
)
PAGES = {
    400: ("请求无效", "请求中的参数有误（例如日期格式不对），请检查后重试。"),
    403: ("没有权限", "您的账号没有执行此操作的权限。如需处理，请联系班长或管理员。"),
    404: ("找不到页面", "您要找的工单或页面不存在，可能编号有误或已被删除。"),
    405: ("操作方式不对", "此地址不接受这种请求，请从页面上的按钮操作。"),
    500: ("系统出错", "系统处理时出错，已记录日志。请稍后重试；如仍出错，请联系管理员。"),
}


def _console(path: str) -> bool:
    return path == "/console" or path.startswith("/console/")


def _back() -> str:
    """The ticket a refused action was about, or where the person came from if it was a
    console page, or else the queue."""
    on_ticket = _TICKET_ACTION.match(request.path)
    if on_ticket:
        return on_ticket.group(1)
    ref = urlsplit(request.referrer or "")
    if ref.netloc == request.host and _console(ref.path):
        return ref.path + (f"?{ref.query}" if ref.query else "")
    return url_for("console.queue")


def _page(code: int, description: str = "") -> tuple[str, int]:
    title, text = PAGES.get(code, PAGES[500] if code >= 500 else PAGES[400])
    if code == 400 and "CSRF" in description:
        title, text = EXPIRED
    return render_template(
        "console/error.html", code=code, title=title, text=text, back=_back()
    ), code


def init_errors(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        if not _console(request.path) or exc.code in (None, 401) or exc.code < 400:
            return exc
        log.info("console %s %s: %s %s", request.method, request.path, exc.code, exc.description)
        return _page(exc.code, exc.description or "")

    @app.errorhandler(InternalServerError)
    def _failed(exc: InternalServerError) -> Any:
        if not _console(request.path):
            return exc
        log.error(
            "console %s %s failed", request.method, request.path, exc_info=exc.original_exception
        )
        return _page(500)
