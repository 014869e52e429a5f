"""A stream's page: live facts, throughput charts and shards; the record browser; and
the forms that put a test record, split, merge and delete.

As on AWS, a new stream is CREATING and a reshard leaves it UPDATING for a moment (the
split or merge takes effect when that ends); meanwhile the page says so and fetches its
parts again each second, so the new shards and the forms over them appear once it is
ACTIVE rather than at the next slow poll or action."""

from __future__ import annotations

from ..history import Series
from ..pages import (
    MAX_HASH,
    Chrome,
    action_form,
    badge,
    badge_or_none,
    chart,
    field,
    fields,
    number,
    path_of,
    select,
    size,
    table,
    text,
    when,
)
from ..records import DECODINGS, ENCODINGS, POSITIONS

#: statuses that end by themselves, soon (DELETING ends in the stream being gone)
SETTLING = ("CREATING", "UPDATING")
SETTLE_TRIGGER = "load delay:1s"  # one fetch a second after each answer, until ACTIVE
CHARTS = (("records_in", "Records in per shard", "rec/s"),
          ("records_out", "Records out per shard", "rec/s"),
          ("bytes_in", "Bytes in per shard", "B/s"),
          ("bytes_out", "Bytes out per shard", "B/s"))


def settling(data: dict, region: str, chrome: Chrome) -> str:
    """While the stream is CREATING or UPDATING: an element that fetches the page's part
    ``region`` again in a second (its answer carries another until the status ends)."""
    s = data["summary"]
    if s["StreamStatus"] not in SETTLING or not chrome.live:
        return ""
    url = f'{path_of("streams", s["StreamName"])}?part={region}'
    return (f'<span hidden hx-get="{text(url)}" hx-trigger="{SETTLE_TRIGGER}" '
            f'hx-target="#{region}" hx-swap="innerHTML"></span>')


def settling_note(summary: dict) -> str:
    """What a CREATING or UPDATING stream does not do yet, and when it will."""
    status, name = summary["StreamStatus"], summary["StreamName"]
    if status == "CREATING":
        return (f'<p class="hint" id="settling">stream {text(name)} is CREATING: it takes '
                "records once it is ACTIVE, in a moment.</p>")
    if status == "UPDATING":
        return (f'<p class="hint" id="settling">stream {text(name)} is UPDATING: a split or '
                "merge takes effect when it turns ACTIVE, in a moment; until then its shards "
                "are the old ones, and it cannot be split or merged again.</p>")
    return ""


def live(data: dict, rates: dict[str, Series], chrome: Chrome) -> str:
    """Facts, charts, shards and consumers (fetched again every few seconds, and each
    second while the stream is CREATING or UPDATING)."""
    s = data["summary"]
    facts = fields([("status", badge(s["StreamStatus"])),
                    ("ARN", f'<code>{text(s["StreamARN"])}</code>'),
                    ("mode", text(s["StreamModeDetails"]["StreamMode"])),
                    ("open shards", s["OpenShardCount"]),
                    ("retention", f'{s["RetentionPeriodHours"]} hours'),
                    ("encryption", badge_or_none(s["EncryptionType"])
                     + (f' key <code>{text(s["KeyId"])}</code>' if s.get("KeyId") else "")),
                    ("max record size", f'{s["MaxRecordSizeInKiB"]} KiB'),
                    ("created", when(s["StreamCreationTimestamp"])),
                    ("tags", text(", ".join(f"{k}={v}" for k, v in data["tags"].items()))
                     or "-")])
    charts = "".join(chart(f"chart-{key}", title, unit, rates[key].times,
                           rates[key].as_chart(),
                           "no traffic counted yet (the server samples every 2 s)")
                     for key, title, unit in CHARTS)
    return "".join([settling(data, "live", chrome), facts, "<h2>Throughput</h2>",
                    f'<div class="charts">{charts}</div>',
                    "<h2>Shards</h2>", shard_table(data["shards"]),
                    "<h2>Registered consumers</h2>", table(
                        ["consumer", "status", "created"],
                        [[text(c["ConsumerName"]), badge(c["ConsumerStatus"]),
                          when(c["ConsumerCreationTimestamp"])] for c in data["consumers"]],
                        "no registered consumers")])


def shard_table(shards: list[dict]) -> str:
    children: dict[str, list[str]] = {}
    for shard in shards:
        for parent in (shard.get("ParentShardId"), shard.get("AdjacentParentShardId")):
            if parent:
                children.setdefault(parent, []).append(shard["ShardId"])
    rows = []
    for shard in shards:
        lo = int(shard["HashKeyRange"]["StartingHashKey"])
        hi = int(shard["HashKeyRange"]["EndingHashKey"])
        sequence = shard["SequenceNumberRange"]
        closed = "EndingSequenceNumber" in sequence
        parents = [p for p in (shard.get("ParentShardId"),
                               shard.get("AdjacentParentShardId")) if p]
        rows.append([text(shard["ShardId"]), badge("CLOSED" if closed else "OPEN"),
                     f'<code>{lo}</code> – <code>{hi}</code>',
                     f"{100 * (hi - lo + 1) / (MAX_HASH + 1):.2f} %",
                     f'<code>{text(sequence["StartingSequenceNumber"])}</code> – '
                     + (f'<code>{text(sequence["EndingSequenceNumber"])}</code>' if closed
                        else "(open)"),
                     text(", ".join(parents) or "-"),
                     text(", ".join(children.get(shard["ShardId"], [])) or "-")])
    return table(["shard", "state", "hash key range", "share", "sequence numbers", "parents",
                  "children"], rows, "no shards")


def forms(data: dict, chrome: Chrome) -> str:
    """Put a test record, split, merge, delete (fetched again after each action: the
    shard lists change; and each second while the stream is CREATING or UPDATING, so
    the lists show the new shards once a reshard has taken effect)."""
    name = data["summary"]["StreamName"]
    base = path_of("streams", name)
    open_shards = [s["ShardId"] for s in data["shards"]
                   if "EndingSequenceNumber" not in s["SequenceNumberRange"]]
    put = action_form(
        f"{base}/records",
        field("partition_key", "partition key", "console", required=True, size_=12)
        + select("encoding", ENCODINGS, "text", "as")
        + '<label>data <textarea name="data" rows="2" cols="40" required>'
          '{"source": "console", "value": 1}</textarea></label>'
        + field("explicit_hash_key", "explicit hash key", placeholder="optional", size_=14),
        "Put record", chrome, klass="wide")
    split = action_form(
        f"{base}/split",
        select("shard", open_shards, label="shard")
        + field("new_starting_hash_key", "new starting hash key",
                placeholder="blank: the middle of its range", size_=30),
        "Split shard", chrome)
    merge = action_form(
        f"{base}/merge",
        select("shard", open_shards, label="shard")
        + select("adjacent", open_shards, open_shards[1] if len(open_shards) > 1 else None,
                 "with adjacent"),
        "Merge shards", chrome)
    delete = action_form(
        f"{base}/delete",
        field("confirm", f"type {name} to delete this stream and its records", size_=20,
              required=True, extra=' autocomplete="off"'),
        "Delete stream", chrome, danger=True)
    return (f'<h2>Actions</h2>{settling_note(data["summary"])}{settling(data, "forms", chrome)}'
            f'<div class="actions">{put}{split}{merge}{delete}</div>')


def browser(data: dict, chrome: Chrome) -> str:
    """The record browser's form; its answers land below it."""
    name = data["summary"]["StreamName"]
    url = f"{path_of('streams', name)}/records"
    shards = [s["ShardId"] for s in data["shards"]]
    hx = (f' hx-get="{text(url)}" hx-target="#records" hx-swap="innerHTML"'
          if chrome.live else "")
    form = (f'<form method="get" action="{text(url)}" class="action wide" id="browse"{hx}>'
            + select("shard", shards, label="shard")
            + select("position", POSITIONS, "TRIM_HORIZON", "from")
            + field("sequence", "sequence number", placeholder="for *_SEQUENCE_NUMBER",
                    size_=24)
            + field("timestamp", "timestamp", placeholder="2026-12-06T13:00:00Z (AT_TIMESTAMP)",
                    size_=24)
            + field("limit", "records", "25", kind="number", extra=' min="1" max="500"')
            + select("decode", DECODINGS, "auto", "show as")
            + '<button type="submit" class="btn">Read</button></form>')
    return (f'<h2>Records</h2>{form}<div id="records"><p class="muted">Choose a shard and a '
            "position, then Read.</p></div>")


def records(stream: str, query, page: dict, chrome: Chrome) -> str:
    """One page of records, with a link to the next (its NextShardIterator)."""
    rows = []
    for r in page["records"]:
        rows.append(f'<div class="record"><span class="muted">#{text(r["sequence"])} · key '
                    f'<code>{text(r["partition_key"])}</code> · {size(r["size"])} · '
                    f'{when(r["arrived"])} · {text(r["kind"])}</span>'
                    f'<pre>{text(r["data"])}</pre></div>')
    head = (f'<p>{len(page["records"])} record(s) of <code>{text(query.shard)}</code> from '
            f'{text(query.position)}; {number(page["behind"])} ms behind the newest.</p>')
    body = "".join(rows) or '<p class="muted">no records at this position (yet)</p>'
    more = ""
    if page["next"]:
        url = f"{path_of('streams', stream)}/records"
        hx = (f' hx-get="{text(url)}" hx-target="#records" hx-swap="innerHTML"'
              if chrome.live else "")
        more = (f'<form method="get" action="{text(url)}" class="inline"{hx}>'
                f'<input type="hidden" name="shard" value="{text(query.shard)}">'
                f'<input type="hidden" name="iterator" value="{text(page["next"])}">'
                f'<input type="hidden" name="limit" value="{query.limit}">'
                f'<input type="hidden" name="decode" value="{text(query.decoding)}">'
                '<button type="submit" class="btn" id="next-page">Next records</button></form>')
    else:
        more = '<p class="muted">the shard is closed and read to its end</p>'
    return head + body + more
