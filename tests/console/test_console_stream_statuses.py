"""A stream's passing statuses on its console page, on a real stream store whose status
delay outlasts a loaded machine's steps: while CREATING or UPDATING the page says what
waits for ACTIVE and fetches its parts again each second (so a split's new shards appear
once it takes effect); the forms' refusals say why and when to send again, after the
API's own words; DELETING takes nothing more."""

from __future__ import annotations

import re
import time

import pytest

from forestream.server.console.actions import StreamActions
from forestream.server.console.pages import Chrome
from forestream.server.console.views import streams as stream_view
from forestream.server.metrics import Metrics
from forestream.streams.errors import ResourceInUseError, ResourceNotFoundError
from forestream.streams.store import StreamStore

DELAY = 2.0  # seconds a passing status lasts here
LIVE = Chrome("token", ("/console/static/htmx.min.js",), (), None)  # scripts there
PLAIN = Chrome("token", (), (), "no assets")  # a page without scripts
PUT = {"data": "{}", "encoding": "text", "partition_key": "k"}


@pytest.fixture
def store(tmp_path):
    with StreamStore(tmp_path, fsync=False, status_delay=DELAY) as opened:
        yield opened


def page_data(store: StreamStore, name: str) -> dict:
    """What the stream's page is drawn from (as the console's reader reads it)."""
    return {"summary": store.describe_stream_summary(stream_name=name)[
        "StreamDescriptionSummary"], "shards": store.list_shards(stream_name=name)["Shards"]}


def wait_active(store: StreamStore, name: str) -> None:
    deadline = time.monotonic() + 60
    while page_data(store, name)["summary"]["StreamStatus"] != "ACTIVE":
        assert time.monotonic() < deadline, f"stream {name} never turned ACTIVE"
        time.sleep(0.05)


def shard_choices(forms: str, action: str) -> list[str]:
    """The shards the form posting to ``.../{action}`` offers first."""
    form = forms.split(f'action="/console/streams/s/{action}"')[1].split("</select>")[0]
    return re.findall(r"<option(?: selected)?>([^<]+)</option>", form)


def poller(region: str) -> str:
    return (f'<span hidden hx-get="/console/streams/s?part={region}" '
            f'hx-trigger="load delay:1s" hx-target="#{region}" hx-swap="innerHTML"></span>')


def test_a_creating_stream_says_it_takes_no_records_yet_and_refreshes_itself(store):
    actions = StreamActions(store, Metrics())
    actions.create({"name": "s", "shards": "1"})
    data = page_data(store, "s")
    assert data["summary"]["StreamStatus"] == "CREATING"
    forms = stream_view.forms(data, LIVE)
    assert "stream s is CREATING: it takes records once it is ACTIVE" in forms
    assert poller("forms") in forms
    assert stream_view.settling(data, "live", LIVE) == poller("live")
    assert stream_view.settling(data, "live", PLAIN) == ""  # no htmx: nothing polls
    with pytest.raises(ResourceNotFoundError) as refused:
        actions.put("s", PUT)
    assert refused.value.message == (
        "Stream s under account 000000000000 not found. (stream s is CREATING: send this "
        "again once it is ACTIVE, in a moment; its status is on this page)")

    wait_active(store, "s")
    data = page_data(store, "s")
    forms = stream_view.forms(data, LIVE)
    assert "is CREATING" not in forms and "hx-trigger=\"load" not in forms
    assert stream_view.settling(data, "live", LIVE) == ""
    assert "put on shardId-000000000000" in actions.put("s", PUT).message


def test_a_split_shows_the_old_shards_while_updating_then_the_new_ones(store):
    actions = StreamActions(store, Metrics())
    actions.create({"name": "s", "shards": "1"})
    wait_active(store, "s")
    actions.split("s", {"shard": "shardId-000000000000", "new_starting_hash_key": ""})
    data = page_data(store, "s")
    assert data["summary"]["StreamStatus"] == "UPDATING"
    forms = stream_view.forms(data, LIVE)
    assert "stream s is UPDATING: a split or merge takes effect when it turns ACTIVE" in forms
    assert poller("forms") in forms
    assert shard_choices(forms, "split") == shard_choices(forms, "merge") == [
        "shardId-000000000000"]  # the old shard, still open
    with pytest.raises(ResourceInUseError) as refused:
        actions.split("s", {"shard": "shardId-000000000000", "new_starting_hash_key": "9"})
    assert refused.value.message == (
        "Stream s under account 000000000000 not ACTIVE, instead in state UPDATING (stream "
        "s is UPDATING: send this again once it is ACTIVE, in a moment; its status is on "
        "this page)")
    assert "put on shardId-000000000000" in actions.put("s", PUT).message  # still open

    wait_active(store, "s")
    forms = stream_view.forms(page_data(store, "s"), LIVE)
    assert "is UPDATING" not in forms and "hx-trigger=\"load" not in forms
    assert shard_choices(forms, "split") == ["shardId-000000000001", "shardId-000000000002"]


def test_a_deleting_stream_takes_nothing_more(store):
    actions = StreamActions(store, Metrics())
    actions.create({"name": "s", "shards": "1"})
    wait_active(store, "s")
    actions.delete("s", {"confirm": "s"})
    with pytest.raises(ResourceNotFoundError) as refused:
        actions.put("s", PUT)
    assert refused.value.message == ("Stream s under account 000000000000 not found. "
                                     "(stream s is DELETING: it takes nothing more)")
    assert stream_view.settling(page_data(store, "s"), "forms", LIVE) == ""  # it ends gone
