"""The knowledge base (issue 16, item 4): import, full-text search of valid articles on
both databases, suggestions beside a 咨询 draft, and 直接办结 through each door."""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import Workbook
from sqlalchemy import select

from ivr.app import Hotline
from ivr.cli import main
from ivr.kb.importer import ArticleData, ArticleFileError, read_articles
from ivr.queries import kb
from ivr.services import Actor, IllegalTransition, Invalid
from ivr.services import kb as service
from ivr.services import tickets as tickets_service
from ivr.store import upgrade
from ivr.store.models import AuditEntry, KbArticle, KbTerm, Ticket
from ivr.tickets import version

from .apikit import api_rig
from .conftest import ROOT
from .consolekit import browser, console_app, draft

EXAMPLES = ROOT / "ivr" / "kb" / "examples" / "kunming-examples.md"
ADMIN = Actor.system("test-kb")
SOCIAL_CARD = "喂你好我想问一下那个社保卡丢了要怎么补办啊"
# A caller's question and the example article that answers it.
QUESTIONS = {
    SOCIAL_CARD: "社会保障卡补办",
    "我妈在外地住院了医保能不能报销": "医保异地就医备案与报销",
    "孩子明年上小学要怎么报名": "小学入学报名",
    "我想把公积金提出来租房用": "住房公积金提取",
    "我想开个小店营业执照去哪里办": "营业执照办理",
    "身份证丢了怎么补": "身份证补办与换领",
}


def imported(hotline: Hotline) -> dict[str, int]:
    service.import_articles(hotline, ADMIN, read_articles(EXAMPLES), EXAMPLES.name)
    with hotline.db.read() as s:
        return {a.title: a.id for a in s.scalars(select(KbArticle))}


def titles(hotline: Hotline, question: str, day: date | None = None) -> list[str]:
    with hotline.db.read() as s:
        return [h.article.title for h in kb.search(s, question, day or hotline.today())]


def test_example_knowledge_base_answers_common_questions(hotline: Hotline) -> None:
    ids = imported(hotline)
    assert len(ids) >= 50
    for question, title in QUESTIONS.items():
        found = titles(hotline, question)
        assert found and found[0] == title, (question, found)
    assert titles(hotline, "火星上的天气怎么样") == []


def test_expired_and_future_articles_are_never_suggested(hotline: Hotline) -> None:
    imported(hotline)
    today = hotline.today()
    assert "2025年度城乡居民医保集中缴费期（已过期示例）" not in titles(
        hotline, "居民医保集中缴费期", today
    )
    soon = ArticleData(
        "新版社保卡换发通知",
        "第三代社保卡将于明年起换发。",
        "人力资源和社会保障局",
        ("社保卡", "换发"),
        valid_from=today + timedelta(days=30),
    )
    service.save_article(hotline, ADMIN, soon)
    assert "新版社保卡换发通知" not in titles(hotline, "社保卡换发", today)
    assert titles(hotline, "社保卡换发", today + timedelta(days=31))[0] == "新版社保卡换发通知"


def assert_word_counts_match_articles(hotline: Hotline) -> None:
    """Search treats a word as common by these counts: a stale one could hide an article."""
    with hotline.db.read() as s:
        counted = {t.term: t.articles for t in s.scalars(select(KbTerm))}
        held = Counter(w for a in s.scalars(select(KbArticle)) for w in set(a.terms.split()))
    assert counted == dict(held)


def test_edit_and_delete_keep_the_index_in_step(hotline: Hotline) -> None:
    ids = imported(hotline)
    assert_word_counts_match_articles(hotline)
    article_id = ids["停电与电费咨询"]
    changed = ArticleData("停电报修与电费", "突发停电请拨打95598报修。", "供电局", ("停电", "报修"))
    service.save_article(hotline, ADMIN, changed, article_id)
    assert titles(hotline, "我家停电了找谁报修")[0] == "停电报修与电费"
    service.delete_article(hotline, ADMIN, article_id)
    assert "停电报修与电费" not in titles(hotline, "我家停电了找谁报修")
    assert_word_counts_match_articles(hotline)
    with hotline.db.read() as s:
        actions = [e.action for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions[-2:] == ["kb.update", "kb.delete"]


def test_a_rare_word_among_very_common_ones_finds_its_article_first(
    hotline: Hotline, monkeypatch: pytest.MonkeyPatch
) -> None:
    imported(hotline)
    guides = [
        ArticleData(
            f"办事指南第{i}号",
            "申请材料请到部门服务窗口提交，申请材料齐全的当场受理。",
            "政务服务管理局",
            ("申请材料", "服务窗口"),
        )
        for i in range(30)
    ]
    trees = ArticleData(
        "古树名木保护", "发现古树名木受损请向园林部门报告。", "自然资源和规划局", ("古树", "园林")
    )
    service.import_articles(hotline, ADMIN, [*guides, trees], "guides.csv")
    # Words held by more articles than search ranks are "very common": the guides' words.
    monkeypatch.setattr(kb, "CANDIDATES", 20)
    question = "我想问一下申请材料交到部门哪个服务窗口，还有路边的古树被人砍了"
    assert titles(hotline, question)[0] == "古树名木保护"


def test_tables_with_chinese_headers_import_and_bad_ones_change_nothing(
    hotline: Hotline, tmp_path: Path
) -> None:
    header = ["标题", "正文", "部门", "关键词", "生效日期", "失效日期", "来源"]
    row = [
        "燃气表充值",
        "可在燃气公司公众号充值。",
        "燃气公司",
        "燃气表、充值",
        "",
        "",
        "燃气公司通知",
    ]
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(header)
    sheet.append(row)
    xlsx = tmp_path / "kb.xlsx"
    book.save(xlsx)
    (article,) = read_articles(xlsx)
    assert article.keywords == ("燃气表", "充值") and article.valid_to is None
    service.import_articles(hotline, ADMIN, [article], xlsx.name)
    assert titles(hotline, "燃气表怎么充值")[0] == "燃气表充值"

    bad = tmp_path / "bad.csv"
    with bad.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerow(["公交卡", "正文", "交通运输局", "公交卡", "明年", "", ""])
    with pytest.raises(ArticleFileError, match="row 2: not a date"):
        read_articles(bad)
    unknown = ArticleData("某事", "正文", "不存在的局")
    with pytest.raises(Invalid, match="unknown department"):
        service.import_articles(hotline, ADMIN, [article, unknown], "x.csv")
    with hotline.db.read() as s:
        assert len(list(s.scalars(select(KbArticle)))) == 1


def test_a_consultation_is_answered_directly_and_others_are_refused(hotline: Hotline) -> None:
    ids = imported(hotline)
    with console_app(hotline) as app:
        ticket_id = draft(hotline, SOCIAL_CARD, line="12345", digits="1")
        page = browser(app, "operator").get(f"/console/tickets/{ticket_id}").get_data(as_text=True)
        assert 'id="kb"' in page and "社会保障卡补办" in page and "直接办结" in page
        op = browser(app, "operator")
        op.get(f"/console/tickets/{ticket_id}")
        with hotline.db.read() as s:
            seen = version(s.get(Ticket, ticket_id))
        r = op.post(
            f"/console/tickets/{ticket_id}/answer",
            {"article": ids["社会保障卡补办"], "version": seen},
        )
        assert r.status_code == 303
        with hotline.db.read() as s:
            t = s.get(Ticket, ticket_id)
            assert t.status == "completed" and t.kb_article_id == ids["社会保障卡补办"]
            assert "社会保障卡补办" in (t.result_note or "")
            entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "ticket.answer")).one()
            assert entry.actor == "user:operator" and entry.ticket_id == ticket_id

        complaint = draft(hotline)  # 投诉: not answered from the knowledge base
        with pytest.raises(IllegalTransition, match="only a 咨询 ticket"):
            tickets_service.answer_from_article(hotline, ADMIN, complaint, ids["社会保障卡补办"])
        expired = ids["2025年度城乡居民医保集中缴费期（已过期示例）"]
        other = draft(hotline, "我想问一下居民医保什么时候交", line="12345", digits="1")
        with pytest.raises(Invalid, match="not valid on"):
            tickets_service.answer_from_article(hotline, ADMIN, other, expired)


def test_the_api_searches_and_answers(hotline: Hotline) -> None:
    ids = imported(hotline)
    with api_rig(hotline) as rig:
        r = rig.call("GET", "/api/kb?q=" + SOCIAL_CARD)
        assert r.status_code == 200, r.get_json()
        assert r.get_json()["items"][0]["title"] == "社会保障卡补办"
        assert rig.call("GET", "/api/kb").status_code == 400
        assert rig.call("GET", "/api/kb/2147483647").status_code == 404
        number = rig.draft(SOCIAL_CARD, line="12345", digits="1")
        r = rig.call(
            "POST", f"/api/tickets/{number}/answer", json={"article": ids["社会保障卡补办"]}
        )
        assert r.status_code == 200, r.get_json()
        body = r.get_json()
        assert body["status"] == "completed" and body["kb_article"] == ids["社会保障卡补办"]
        refused = rig.call("POST", f"/api/tickets/{rig.draft()}/answer", json={"article": 1})
        assert refused.status_code == 409
        assert (
            rig.call("POST", f"/api/tickets/{number}/answer", json={"article": True}).status_code
            == 422
        )


def test_cli_imports_searches_and_answers(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'kb.sqlite3'}"
    upgrade(url)
    env = {"DATABASE_URL": url}
    runner = CliRunner()
    out = runner.invoke(main, ["kb", "import", str(EXAMPLES)], env=env)
    assert out.exit_code == 0 and "57 added" in out.output, out.output
    again = runner.invoke(main, ["kb", "import", str(EXAMPLES)], env=env)
    assert "0 added, 57 updated" in again.output
    found = runner.invoke(main, ["kb", "search", SOCIAL_CARD], env=env)
    assert found.exit_code == 0 and found.output.splitlines()[0].split()[1] == "社会保障卡补办"
    sim = runner.invoke(
        main,
        [
            "simulate",
            "--line",
            "12345",
            "--from",
            "13800138000",
            "--digits",
            "1",
            "--text",
            SOCIAL_CARD,
            "--json",
        ],
        env=env,
    )
    assert sim.exit_code == 0, sim.output
    number = json.loads(sim.stdout)["number"]
    article = found.output.splitlines()[0].split()[0].lstrip("#")
    done = runner.invoke(main, ["tickets", "answer", number, "--article", article], env=env)
    assert done.exit_code == 0, done.output
    bad = runner.invoke(main, ["kb", "import", str(tmp_path / "missing.md")], env=env)
    assert bad.exit_code == 2 and "no such file" in bad.output
