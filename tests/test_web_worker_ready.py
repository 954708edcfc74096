"""A web worker is made ready before its first request (webhooks.wsgi, `ivr serve`)."""

from __future__ import annotations

import gc

from ivr.app import Hotline
from ivr.calls.simulate import simulate_inbound
from ivr.intake import similarity
from ivr.jobs import open_jobs
from ivr.runtime.warm import ready_worker


def test_first_calls_draft_loads_nothing_and_the_loaded_heap_is_frozen(hotline: Hotline) -> None:
    similarity._content_words.cache_clear()
    jobs = open_jobs(hotline.settings)
    try:
        ready_worker(hotline, jobs)
        # What the first draft would load (jieba, the corpus's word weights) is loaded,
        # left out of the garbage collector's full passes, and the job worker runs.
        assert gc.get_freeze_count() > 100_000
        loaded = similarity._content_words.cache_info()
        assert loaded.currsize == 1
        assert jobs._workers
        for _ in range(2):
            sim = simulate_inbound(
                hotline, line="12345", caller="13900000001", digits="2", text="我们小区停水三天了"
            )
            assert sim.ticket is not None
        # The caller's two drafts were compared, with nothing loaded again.
        after = similarity._content_words.cache_info()
        assert after.hits > loaded.hits and after.misses == loaded.misses
    finally:
        gc.unfreeze()
        jobs.close()
