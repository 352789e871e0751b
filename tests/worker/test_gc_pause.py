"""The worker's imports run with the collector paused; it comes back as it was, failure or not."""

import gc
from collections.abc import Iterator

import pytest
from forgestack_worker.gc_pause import collection_paused


@pytest.fixture(autouse=True)
def restore_collector() -> Iterator[None]:
    was = gc.isenabled()
    yield
    gc.unfreeze()  # what the test froze goes back to the collector
    if was:
        gc.enable()
    else:
        gc.disable()


def test_paused_inside_then_enabled_with_what_existed_frozen() -> None:
    gc.enable()
    frozen_before = gc.get_freeze_count()
    with collection_paused():
        assert not gc.isenabled()
        made = [[] for _ in range(1000)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= frozen_before + len(made)


def test_a_failed_import_still_re_enables_it() -> None:
    gc.enable()
    with pytest.raises(ImportError), collection_paused():
        raise ImportError("no such module")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with collection_paused():
        pass
    assert not gc.isenabled()
